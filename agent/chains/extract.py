"""What a ticket names, read without a model: error messages, Go stack frames, identifiers, paths,
test names and the sentences that describe the symptom.

Every rule is a regular expression over the ticket's text; `extract_facts` never raises and is
total on any string (a hypothesis test holds it to that).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field


class TicketText(BaseModel):
    """A ticket as the chains see it."""

    key: str = ""
    title: str = ""
    body: str = ""
    components: list[str] = Field(default_factory=list[str])

    @property
    def text(self) -> str:
        return f"{self.title}\n\n{self.body}".strip()


class Frame(BaseModel):
    """One frame of a Go traceback: `pkg/path.(*Type).Method(...)` then `\t/path/file.go:123 +0x1f`."""

    package: str
    receiver: str | None
    function: str
    file: str | None = None
    line: int | None = None

    @property
    def symbol(self) -> str:
        """code-search's qualified symbol: pkg.Type.Method or pkg.Func (pkg = the import path's last element)."""
        pkg = self.package.rsplit("/", 1)[-1]
        return ".".join(p for p in (pkg, self.receiver, self.function) if p)


class TicketFacts(BaseModel):
    symptoms: list[str] = Field(default_factory=list[str], description="Sentences that describe what goes wrong.")
    errors: list[str] = Field(default_factory=list[str], description="Error and panic messages, verbatim.")
    frames: list[Frame] = Field(default_factory=list[Frame], description="Go stack frames, innermost first.")
    identifiers: list[str] = Field(default_factory=list[str], description="Go identifiers the ticket names.")
    paths: list[str] = Field(default_factory=list[str], description="File paths the ticket names.")
    tests: list[str] = Field(default_factory=list[str], description="Test function names.")


# the last element of an import path has no dot in a traceback (Go escapes it as %2e)
_FRAME = re.compile(
    r"^\s*(?P<pkg>(?:[\w.\-%]+/)*[\w\-%]+)\.(?:\(\*?(?P<recv>\w+)\)\.|(?P<vrecv>\w+)\.)?"
    r"(?P<func>(?!func\d)\w+)(?:\.func\d+)*(?:\[[^\]]*\])?\(.*\)\s*$"
)
_FRAME_FILE = re.compile(r"^\s+(?P<file>\S+\.go):(?P<line>\d+)(?:\s+\+0x[0-9a-f]+)?\s*$")
_ERROR_LINE = re.compile(
    r"^\s*(?:panic|fatal error|error|err|Error|ERROR|FAIL|WARNING|level=error)\b[:=]?\s*(?P<msg>.+)$", re.MULTILINE
)
_QUOTED = re.compile(r"[\"“]([^\"”\n]{8,200})[\"”]|`([^`\n]{3,200})`")
_PATH = re.compile(r"(?<![\w/.@])((?:[\w.\-]+/)*[\w.\-]+\.(?:go|proto|md|mod))(?::\d+)?\b")
_DIR = re.compile(r"(?<![\w/.:])((?:internal|pkg|cmd|api)/[\w.\-]+(?:/[\w.\-]+)*)/?")
_QUALIFIED = re.compile(r"\b([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?:\(\))?")
_CALL = re.compile(r"\b([A-Za-z_]\w*)\(")
_MIXED = re.compile(r"\b([a-z]+[A-Z]\w*|[A-Z][a-z0-9]+[A-Z]\w*|[A-Z]{2,}[a-z]\w*)\b")
_TEST = re.compile(r"\b((?:Test|Benchmark|Fuzz|Example)[A-Z0-9_]\w*)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_SYMPTOM = re.compile(
    r"\b(panic\w*|fail\w*|wrong|incorrect|instead|expected|unexpected|crash\w*|leak\w*|race|deadlock\w*|hang\w*|"
    r"nil|error\w*|broken|regression|timeout|timed out|never|always|drops?|ignores?|loses?|returns?)\b",
    re.IGNORECASE,
)
_STD = frozenset(
    {"runtime", "testing", "net", "sync", "reflect", "internal", "os", "io", "fmt", "encoding", "syscall", "context"}
    | {"time", "crypto", "bufio", "strings", "bytes", "sort", "errors", "strconv", "math", "log", "main"}
)
# words that look like identifiers in prose but name nothing in the code
_PROSE = frozenset(
    {"e.g", "i.e", "etc", "vs", "GitHub", "JavaScript", "TypeScript", "YouTube", "macOS", "iOS", "OAuth", "gRPC"}
)
# Issue templates: HTML comments (hidden instructions) and checklists ("- [x] I have read `man fzf`") are the
# template's words, not the reporter's: no error message or symptom is read from them.
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
_CHECKBOX = re.compile(r"^\s*[-*+]\s*\[[ xX]\].*$", re.MULTILINE)
_FILE_EXT = (".go", ".md", ".proto", ".mod", ".com", ".org", ".io", ".net", ".yaml", ".json", ".txt", ".html")


def _keep(seen: list[str], value: str, limit: int) -> None:
    if value and value not in seen and len(seen) < limit:
        seen.append(value)


def _frames(text: str) -> list[Frame]:
    lines = text.splitlines()
    out: list[Frame] = []
    for i, line in enumerate(lines):
        m = _FRAME.match(line)
        if m is None:
            continue
        follow = _FRAME_FILE.match(lines[i + 1]) if i + 1 < len(lines) else None
        if follow is None:
            continue  # a traceback frame is always followed by its file line; anything else is prose
        frame = Frame(
            package=m.group("pkg"),
            receiver=m.group("recv") or m.group("vrecv"),
            function=m.group("func"),
            file=_relative(follow.group("file")),
            line=int(follow.group("line")),
        )
        if frame not in out:
            out.append(frame)
    return out[:12]


def _relative(path: str) -> str:
    """A traceback's absolute file path made repo-relative where the module cache shows the root."""
    if "@" in path:
        return path.split("@", 1)[1].split("/", 1)[-1]
    return "/".join(path.split("/")[-2:]) if path.startswith("/") else path


def in_std(frame: Frame) -> bool:
    return frame.package.split("/", 1)[0] in _STD


def _identifiers(text: str, frames: list[Frame]) -> list[str]:
    found: list[str] = []
    for frame in frames:
        if not in_std(frame):
            _keep(found, frame.symbol, 24)
    for m in _QUALIFIED.finditer(text):
        name = m.group(1).rstrip(".")
        if name in _PROSE or name.lower().endswith(_FILE_EXT) or name[0].isdigit() or "/" in name:
            continue
        parts = name.split(".")
        if all(p.islower() for p in parts) and not m.group(0).endswith("()"):
            continue  # "file.txt", "e.g": dotted words, not Go selectors
        _keep(found, name, 24)
    for m in _CALL.finditer(text):
        if m.group(1)[0].isalpha() and len(m.group(1)) > 2:
            _keep(found, m.group(1), 24)
    for m in _MIXED.finditer(text):
        if m.group(1) not in _PROSE:
            _keep(found, m.group(1), 24)
    return found


def extract_facts(ticket: TicketText) -> TicketFacts:
    """Deterministic extraction from the ticket's title and body (bounded lists, first mention first)."""
    text = ticket.text
    frames = _frames(text)
    frame_lines = {i for i, line in enumerate(text.splitlines()) if _FRAME_FILE.match(line) or _FRAME.match(line)}
    prose = "\n".join(line for i, line in enumerate(text.splitlines()) if i not in frame_lines)
    own = _CHECKBOX.sub("", _COMMENT.sub("", text))  # the reporter's words, without the template's
    errors: list[str] = []
    for m in _ERROR_LINE.finditer(own):
        _keep(errors, m.group("msg").strip().strip("\"'`“”").strip()[:300], 6)
    for m in _QUOTED.finditer(own):
        quoted = (m.group(1) or m.group(2) or "").strip()
        if " " in quoted and not _QUALIFIED.fullmatch(quoted):
            _keep(errors, quoted, 6)
    paths: list[str] = []
    for frame in frames:
        if frame.file and not in_std(frame):
            _keep(paths, frame.file, 12)
    for m in _PATH.finditer(prose):
        if not m.group(1).startswith(("http", "www.")) and not re.search(r"\.(com|org|io|net)/", m.group(1)):
            _keep(paths, m.group(1).lstrip("./"), 12)
    for m in _DIR.finditer(prose):
        _keep(paths, m.group(1), 12)
    symptoms: list[str] = []
    if ticket.title.strip():
        _keep(symptoms, ticket.title.strip()[:300], 4)
    for piece in _SENTENCE_END.split(_CHECKBOX.sub("", _COMMENT.sub("", ticket.body))):
        sentence = piece.strip()
        if 12 <= len(sentence) <= 300 and _SYMPTOM.search(sentence) and not _FRAME.match(sentence):
            _keep(symptoms, sentence, 4)
    tests: list[str] = []
    for m in _TEST.finditer(text):
        _keep(tests, m.group(1), 12)
    identifiers = [i for i in _identifiers(prose, frames) if i not in tests]
    return TicketFacts(
        symptoms=symptoms, errors=errors, frames=frames, identifiers=identifiers, paths=paths, tests=tests
    )
