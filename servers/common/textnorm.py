"""Unicode hygiene shared by the ticket reader and the secret scanner.

Attacker-written text hides things in characters that render as nothing: zero-width spaces and
joiners, bidirectional overrides, variation selectors, Hangul fillers, the combining grapheme
joiner, tag characters that spell a whole sentence invisibly. Rather than a hand list, the set is
Unicode's own `Default_Ignorable_Code_Point` property (which covers the tag block, U+E0000–E0FFF),
plus the general categories that never belong in prose (format Cf, controls Cc other than newline
and tab, private use Co, surrogates Cs) and U+2800 BRAILLE PATTERN BLANK, a symbol (So) that renders
empty. Line and paragraph separators (Zl, Zp) become newlines, so what they separate stays visible.

`for_scanning` goes further, for the credential scanner only: NFKC (fullwidth and compatibility forms
fold to ASCII, so `－－－－－BEGIN` is `-----BEGIN`), every dash punctuation (Pd) becomes `-`.
"""

from __future__ import annotations

import unicodedata

import regex

# V1 for set subtraction: every ignorable/format/control/private/surrogate character but \n and \t.
_INVISIBLE = regex.compile(
    r"(?V1)[[\p{Default_Ignorable_Code_Point}\p{Cf}\p{Cc}\p{Co}\p{Cs}\U000E0000-\U000E007F\u2800]--[\n\t]]+"
)
_SEPARATORS = regex.compile(r"[\p{Zl}\p{Zp}]")
_DASHES = regex.compile(r"\p{Pd}")


def strip_invisible(text: str) -> str:
    """`text` without invisible characters (see the module docstring); Zl/Zp become newlines."""
    return _INVISIBLE.sub("", _SEPARATORS.sub("\n", text))


def for_scanning(text: str) -> str:
    """NFKC, invisible characters removed, dashes folded to `-`: the form credential shapes are matched on."""
    return _DASHES.sub("-", strip_invisible(unicodedata.normalize("NFKC", text)))
