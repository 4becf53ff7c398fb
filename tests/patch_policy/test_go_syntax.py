"""go_syntax reads what the patch policy needs of Go source from tree-sitter-go's tree: imports, the
top-level functions and var specs that run at package initialisation, and the names their code uses."""

from __future__ import annotations

from servers.common.go_syntax import Call, Lit, Ref, fragment, fragment_refs, read_file

SOURCE = """package calc

import (
	"os"
	xflag "flag"
	. "syscall"
	_ "embed"
)

var (
	ready, code = true, bail()
	name string
)

func
init() { xflag.Parse() }

func (r *runner) init() { r.m.Run() }

func bail() int {
	Exit(0)
	return f().Lookup("x")
}
"""


def test_imports_and_declarations() -> None:
    file = read_file(SOURCE)
    assert file.package == "calc"
    assert file.imports == {"os": "os", "xflag": "flag"}
    assert file.dots == frozenset({"syscall"})
    assert [(d.label, d.names, d.root, d.line) for d in file.decls] == [
        ("var ready,code", ("ready", "code"), True, 11),
        ("var name", ("name",), False, 12),
        ("init", (), True, 15),
        ("method init", (), False, 18),
        ("func bail", ("bail",), False, 20),
    ]


def test_the_names_code_uses() -> None:
    decls = {d.label: d for d in read_file(SOURCE).decls}
    assert decls["init"].refs == (Ref("Parse", 16, True, "xflag", True), Ref("xflag", 16, False, None, False))
    assert Ref("Run", 18, True, None, True) in decls["method init"].refs  # selected from an expression
    assert decls["func bail"].refs[:2] == (Ref("Exit", 21, False, None, True), Ref("Lookup", 22, True, None, True))
    assert decls["var ready,code"].refs == (Ref("bail", 11, False, None, True),)


def test_a_fragment_that_does_not_parse_still_gives_its_names() -> None:
    assert Ref("Testing", 1, True, "testing", True) in fragment_refs("\tif testing.Testing() {")
    assert Ref("Exit", 1, True, "os", True) in fragment_refs("}, os.Exit(2)")
    assert fragment_refs('\t_ = "os.Exit(1)" // os.Exit(1)') == ()


def test_literals_calls_and_cgo() -> None:
    source = (
        'package calc\n\n// #include <stdlib.h>\nimport "C"\n\nconst frame = "\\026" + `raw`\n\n'
        'func f() {\n\t_ = flag.CommandLine.Lookup("test.v")\n\t_ = byte(0x16) + \'\\x16\' + (pkg.F)("a\\\\x16")\n}\n'
    )
    file = read_file(source)
    assert file.cgo and not read_file('package calc\n\nimport c "cgo"\n').cgo
    decls = {d.label: d for d in file.decls}
    assert decls["const frame"].lits == (Lit("\x16", 6, False), Lit("raw", 6, False))
    assert decls["func f"].lits == (Lit("test.v", 9, False), Lit("\x16", 10, True), Lit("a\\x16", 10, False))
    assert decls["func f"].calls == (
        Call(("flag", "CommandLine", "Lookup"), 9, ('"test.v"',), "test.v"),
        Call(("byte",), 10, ("0x16",), None),
        Call(("pkg", "F"), 10, ('"a\\\\x16"',), "a\\x16"),
    )
    assert fragment("\t_ = '\\u0016'").lits == (Lit("\x16", 1, True),)
