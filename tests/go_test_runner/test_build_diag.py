"""go build / go vet output -> diagnostics: real lines, and never a crash on anything else."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from servers.go_test_runner.build_diag import Diagnostic, merge, parse_diagnostics, summarize

BUILD = """# example.com/buildfail/broken
broken/broken.go:6:13: undefined: two
broken/broken.go:10:26: cannot use "name" (untyped string constant) as int value in return statement
hasher/hasher.go:5:2: package crypto/sha3x is not in std (/usr/local/go/src/crypto/sha3x)
/tmp/wt/thirdparty/thirdparty.go:4:8: no required module provides package github.com/nonexistent/zzz; to add it:
\tgo get github.com/nonexistent/zzz
pattern ./nope/...: lstat ./nope/: no such file or directory
"""
VET = """# example.com/buildfail/broken
# [example.com/buildfail/broken]
vet: broken/broken.go:6:13: undefined: two
vetbad/vetbad.go:7:51: fmt.Sprintf format %s has arg n of wrong type int
"""


def test_real_build_and_vet_output() -> None:
    build = parse_diagnostics(BUILD, phase="build", root="/tmp/wt")
    vet = parse_diagnostics(VET, phase="vet", root="/tmp/wt")
    merged = merge(build, vet)
    assert [(d.file, d.line, d.column, d.kind) for d in merged] == [
        ("broken/broken.go", 6, 13, "compile"),
        ("broken/broken.go", 10, 26, "compile"),
        ("hasher/hasher.go", 5, 2, "unknown_import"),
        ("thirdparty/thirdparty.go", 4, 8, "unknown_import"),
        (None, None, None, "setup"),
        ("vetbad/vetbad.go", 7, 51, "vet"),
    ]
    assert summarize(merged).startswith("6 problem(s): 2 compile, 2 unknown import, 1 setup, 1 vet. ")
    assert summarize([]) == "go build and go vet found no problems."


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=120), st.sampled_from(BUILD.splitlines() + VET.splitlines())), max_size=40))
def test_any_output_parses(lines: list[str]) -> None:
    text = "\n".join(lines)
    for phase in ("build", "vet"):
        for d in parse_diagnostics(text, phase=phase, root="/tmp/wt"):  # type: ignore[arg-type]
            assert isinstance(d, Diagnostic)
            assert (d.file is None) == (d.line is None)
            assert d.file is None or not d.file.startswith("/tmp/wt/")
    assert len(merge(parse_diagnostics(text, phase="build"), parse_diagnostics(text, phase="vet"))) <= 50
