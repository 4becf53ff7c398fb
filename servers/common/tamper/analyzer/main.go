// Command tamper lists the facts of a Go module that the patch policy compares between the base
// and the patched tree. It reports objects, not spellings: an aliased, dot-imported or stored
// os.Exit is the same *types.Func as a plain one.
//
// Usage: tamper [-dir DIR] [PATTERN ...]   (patterns default to ./...)
//
// It prints one JSON document on stdout (see Facts) and exits 0, or exits 2 with a message on
// stderr when the packages cannot be loaded at all. Type errors in single packages are reported
// in Facts.Errors and the rest of the facts are still computed.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/constant"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"golang.org/x/tools/go/packages"
)

// Finding is one use of a guarded object; Key identifies it without line numbers, so the base and
// the patched tree can be compared as multisets.
type Finding struct {
	Rule   string `json:"rule"`
	Key    string `json:"key"`
	File   string `json:"file"`
	Line   int    `json:"line"`
	Detail string `json:"detail"`
}

// VarUse is a read or write of a package-level variable from a test file.
type VarUse struct {
	Var  string `json:"var"`
	File string `json:"file"`
	Line int    `json:"line"`
	// Restored: the write is in a test function that saves the old value and puts it back in a
	// defer or t.Cleanup (the usual swap of a package variable), not in package initialization.
	Restored bool `json:"restored,omitempty"`
}

// Helper is a non-test function only tests reach, with a hash of its source.
type Helper struct {
	Key  string `json:"key"`
	File string `json:"file"`
	Line int    `json:"line"`
	Hash string `json:"hash"`
}

// Test is a test function of a test package (import path with `_test` for external tests).
type Test struct {
	Package string `json:"package"`
	Dir     string `json:"dir"`
	Name    string `json:"name"`
	File    string `json:"file"`
	Line    int    `json:"line"`
}

// Facts is the whole output.
type Facts struct {
	Findings      []Finding `json:"findings"`
	Writes        []VarUse  `json:"writes"`
	Reads         []VarUse  `json:"reads"`
	Helpers       []Helper  `json:"helpers"`
	HelperFiles   []string  `json:"helper_files"`
	Tests         []Test    `json:"tests"`
	TestLiterals  []string  `json:"test_literals"`
	Errors        []string  `json:"errors"`
	PackagesTotal int       `json:"packages"`
}

var (
	// exitFuncs and flagFuncs come from the policy (-rules): object full name -> what it does.
	exitFuncs  = map[string]string{}
	flagFuncs  = map[string]string{}
	testPrefix = regexp.MustCompile(`^(Test|Benchmark|Fuzz|Example)([^a-z]|$)`)
)

func objName(obj types.Object) string {
	switch o := obj.(type) {
	case *types.Func:
		return o.FullName()
	case *types.Var:
		if o.Pkg() != nil && o.Parent() == o.Pkg().Scope() {
			return o.Pkg().Path() + "." + o.Name()
		}
	}
	return ""
}

type node struct {
	pkg   *packages.Package
	file  string
	line  int
	body  ast.Node
	label string
}

type analysis struct {
	root    string
	fset    *token.FileSet
	facts   Facts
	nodes   map[string][]node
	roots   []string
	seenLit map[string]bool
}

func (a *analysis) rel(pos token.Pos) (string, int) {
	p := a.fset.Position(pos)
	r, err := filepath.Rel(a.root, p.Filename)
	if err != nil {
		r = p.Filename
	}
	return filepath.ToSlash(r), p.Line
}

func isTestFile(name string) bool { return strings.HasSuffix(name, "_test.go") }

// refs calls f for each object an identifier in n refers to.
func refs(info *types.Info, n ast.Node, f func(*ast.Ident, types.Object)) {
	ast.Inspect(n, func(x ast.Node) bool {
		if id, ok := x.(*ast.Ident); ok {
			if obj := info.Uses[id]; obj != nil {
				f(id, obj)
			}
		}
		return true
	})
}

func main() {
	dir := flag.String("dir", ".", "module directory")
	relTo := flag.String("rel", "", "directory the reported paths are relative to (default: -dir)")
	outFile := flag.String("out", "", "write the JSON here instead of stdout")
	rules := flag.String("rules", "{}", `JSON {"exit": {object: why}, "flag": {object: why}}`)
	flag.Parse()
	var r struct {
		Exit map[string]string `json:"exit"`
		Flag map[string]string `json:"flag"`
	}
	if err := json.Unmarshal([]byte(*rules), &r); err != nil {
		fail(fmt.Errorf("-rules: %w", err))
	}
	if r.Exit != nil {
		exitFuncs = r.Exit
	}
	if r.Flag != nil {
		flagFuncs = r.Flag
	}
	patterns := flag.Args()
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	root, err := filepath.Abs(*dir)
	if err != nil {
		fail(err)
	}
	base := root
	if *relTo != "" {
		if base, err = filepath.Abs(*relTo); err != nil {
			fail(err)
		}
	}
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedSyntax | packages.NeedTypes |
			packages.NeedTypesInfo | packages.NeedImports | packages.NeedModule,
		Dir:   root,
		Tests: true,
		Fset:  token.NewFileSet(),
	}
	pkgs, err := packages.Load(cfg, patterns...)
	if err != nil {
		fail(err)
	}
	a := &analysis{root: base, fset: cfg.Fset, nodes: map[string][]node{}, seenLit: map[string]bool{}}
	a.run(pkgs)
	data, err := json.Marshal(a.facts)
	if err != nil {
		fail(err)
	}
	if *outFile == "" {
		_, err = os.Stdout.Write(append(data, '\n'))
	} else {
		err = os.WriteFile(*outFile, data, 0o600)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tamper:", err)
	os.Exit(2)
}

func (a *analysis) run(pkgs []*packages.Package) {
	// One copy of each file: a package and its test variant share the non-test files.
	type unit struct {
		pkg  *packages.Package
		file *ast.File
	}
	var units []unit
	seenFile := map[string]bool{}
	for _, p := range pkgs {
		if strings.HasSuffix(p.ID, ".test") {
			continue // the generated test main
		}
		a.facts.PackagesTotal++
		for _, e := range p.Errors {
			a.facts.Errors = append(a.facts.Errors, e.Error())
		}
		if p.TypesInfo == nil {
			continue
		}
		for _, f := range p.Syntax {
			name := a.fset.Position(f.Pos()).Filename
			if seenFile[name] {
				continue
			}
			seenFile[name] = true
			units = append(units, unit{p, f})
		}
	}
	// Nodes: every function and every package-level var (its initializer); roots: init funcs and
	// var initializers, which run before any test.
	for _, u := range units {
		info := u.pkg.TypesInfo
		file, _ := a.rel(u.file.Pos())
		for _, d := range u.file.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				obj, _ := info.Defs[d.Name].(*types.Func)
				if obj == nil || d.Body == nil {
					continue
				}
				_, line := a.rel(d.Pos())
				key := obj.FullName()
				if d.Recv == nil && d.Name.Name == "init" {
					key = fmt.Sprintf("%s.init@%s", u.pkg.PkgPath, file)
					a.roots = append(a.roots, key)
				}
				a.nodes[key] = append(a.nodes[key], node{u.pkg, file, line, d.Body, key})
			case *ast.GenDecl:
				if d.Tok != token.VAR {
					continue
				}
				for _, spec := range d.Specs {
					vs := spec.(*ast.ValueSpec)
					if len(vs.Values) == 0 {
						continue
					}
					names := []string{}
					for _, n := range vs.Names {
						names = append(names, n.Name)
					}
					_, line := a.rel(vs.Pos())
					label := fmt.Sprintf("%s.var %s@%s", u.pkg.PkgPath, strings.Join(names, ","), file)
					a.roots = append(a.roots, label)
					n := node{u.pkg, file, line, vs, label}
					a.nodes[label] = append(a.nodes[label], n)
					for _, id := range vs.Names {
						if obj := info.Defs[id]; obj != nil && id.Name != "_" {
							k := objName(obj)
							a.nodes[k] = append(a.nodes[k], n)
						}
					}
				}
			}
		}
	}
	a.initReach()
	for _, u := range units {
		a.perFile(u.pkg, u.file)
	}
	a.helpers(pkgs)
	sort.Strings(a.facts.TestLiterals)
}

// initReach reports guarded objects reachable from package initialization.
func (a *analysis) initReach() {
	for _, rootKey := range a.roots {
		seen := map[string]bool{rootKey: true}
		queue := []string{rootKey}
		for len(queue) > 0 {
			k := queue[0]
			queue = queue[1:]
			for _, n := range a.nodes[k] {
				info := n.pkg.TypesInfo
				refs(info, n.body, func(id *ast.Ident, obj types.Object) {
					name := objName(obj)
					if name == "" {
						return
					}
					if why, ok := exitFuncs[name]; ok {
						a.initFinding("exit_at_init", rootKey, n, id, name, why, info)
					} else if why, ok := flagFuncs[name]; ok {
						a.initFinding("flag_at_init", rootKey, n, id, name, why, info)
					}
					if _, known := a.nodes[name]; known && !seen[name] {
						seen[name] = true
						queue = append(queue, name)
					}
				})
			}
		}
	}
}

func (a *analysis) initFinding(rule, root string, n node, id *ast.Ident, name, why string, info *types.Info) {
	_ = info
	file, line := a.rel(id.Pos())
	detail := fmt.Sprintf("%s (%s) is reachable from package initialization (%s)", name, why, root)
	if n.label != root {
		detail += " through " + n.label
	}
	key := fmt.Sprintf("%s|%s|%s|%s", rule, root, n.label, name)
	a.facts.Findings = append(a.facts.Findings, Finding{rule, key, file, line, detail})
}

func (a *analysis) perFile(p *packages.Package, f *ast.File) {
	info := p.TypesInfo
	file, _ := a.rel(f.Pos())
	test := isTestFile(file)
	for _, cg := range f.Comments {
		for _, c := range cg.List {
			if strings.HasPrefix(c.Text, "//go:linkname") {
				_, line := a.rel(c.Pos())
				key := fmt.Sprintf("linkname|%s|%s", file, strings.Join(strings.Fields(c.Text), " "))
				a.facts.Findings = append(a.facts.Findings, Finding{"linkname", key, file, line, "go:linkname reaches unexported runtime or package code: " + c.Text})
			}
			if test && strings.HasPrefix(c.Text, "//go:embed") {
				a.literal(strings.TrimSpace(strings.TrimPrefix(c.Text, "//go:embed")))
			}
		}
	}
	for _, d := range f.Decls {
		fd, isFunc := d.(*ast.FuncDecl)
		enclosing := "package level"
		restored := map[string]bool{}
		if isFunc && test && !(fd.Recv == nil && fd.Name.Name == "init") {
			restored = restoredVars(info, fd)
		}
		if isFunc {
			if obj, ok := info.Defs[fd.Name].(*types.Func); ok {
				enclosing = obj.FullName()
			}
			if test && fd.Recv == nil && testPrefix.MatchString(fd.Name.Name) {
				_, line := a.rel(fd.Pos())
				a.facts.Tests = append(a.facts.Tests, Test{p.PkgPath, filepath.ToSlash(filepath.Dir(file)), fd.Name.Name, file, line})
			}
			if test && fd.Recv == nil && fd.Name.Name == "TestMain" {
				_, line := a.rel(fd.Pos())
				key := "test_main|" + p.PkgPath
				a.facts.Findings = append(a.facts.Findings, Finding{"test_main", key, file, line, "TestMain in " + p.PkgPath + " controls whether and how the tests run"})
			}
		}
		probe := argvProbe{}
		// Test code and every function it calls run in the test binary: the rules on what may not run
		// there (exit_in_test, rewrites_code, framing_byte) read non-test code too.
		who := "test code"
		if !test {
			who = "non-test code (a test that calls it runs it in the test binary)"
		}
		data := map[ast.Expr]bool{}     // bytes of binary data in a composite literal (a TLS record's 0x16, 0x03)
		called := map[*ast.Ident]bool{} // the names of called functions (seen at their call, before the name)
		ast.Inspect(d, func(x ast.Node) bool {
			if e, ok := x.(ast.Expr); ok && !test {
				probe.see(info, e)
			}
			if cl, ok := x.(*ast.CompositeLit); ok {
				binaryData(info, cl, data)
			}
			if call, ok := x.(*ast.CallExpr); ok {
				comparedData(info, call, data)
			}
			if lit, ok := x.(*ast.BasicLit); ok && test && lit.Kind == token.STRING {
				if tv, ok := info.Types[lit]; ok && tv.Value != nil && tv.Value.Kind() == constant.String {
					a.literal(constant.StringVal(tv.Value))
				}
			}
			if e, ok := x.(ast.Expr); ok {
				if tv, ok := info.Types[e]; ok && !tv.IsType() && !data[e] && framingConst(tv) {
					a.codeFinding("framing_byte", enclosing, "0x16", e.Pos(), who+" in "+enclosing+" holds "+framingWhy+": "+short(types.ExprString(e)))
					return false // once per constant expression, not again for its operands
				}
			}
			switch x := x.(type) {
			case *ast.CallExpr:
				if id := calleeIdent(x); id != nil {
					called[id] = true
				}
				a.call(info, x, test, enclosing, who)
			case *ast.Ident:
				obj := info.Uses[x]
				if obj == nil {
					return true
				}
				name := objName(obj)
				_, line := a.rel(x.Pos())
				if fn, ok := obj.(*types.Func); ok && !called[x] && rawSyscallFunc(fn) {
					a.codeFinding("exit_in_test", enclosing, name+"(value)", x.Pos(), who+" takes "+name+" as a value in "+enclosing+": a raw system call no rule can read the number of (it could be exit or execve)")
				}
				if why, ok := testOnlyObjects[name]; ok {
					a.codeFinding(why[0], enclosing, name, x.Pos(), who+" uses "+name+", which "+why[1])
				}
				if !test && name == "testing.Testing" {
					key := "testing_testing|" + enclosing
					a.facts.Findings = append(a.facts.Findings, Finding{"testing_testing", key, file, line, "non-test code asks testing.Testing() in " + enclosing})
				}
				if fn, ok := obj.(*types.Func); ok && !test && fn.Pkg() != nil && fn.Pkg().Path() == "testing" &&
					fn.Type().(*types.Signature).Recv() == nil && name != "testing.Testing" {
					key := "testing_in_code|" + enclosing + "|" + obj.Name()
					a.facts.Findings = append(a.facts.Findings, Finding{"testing_in_code", key, file, line, "non-test code uses testing." + obj.Name() + " in " + enclosing})
				}
				if test && name != "" {
					if v, ok := obj.(*types.Var); ok && v.Pkg() != nil && inModule(p, v.Pkg()) {
						a.facts.Reads = append(a.facts.Reads, VarUse{name, file, line, false})
					}
				}
			case *ast.AssignStmt:
				if test {
					for _, lhs := range x.Lhs {
						a.write(p, file, lhs, restored)
					}
				}
			case *ast.IncDecStmt:
				if test {
					a.write(p, file, x.X, restored)
				}
			case *ast.UnaryExpr:
				if test && x.Op == token.AND {
					a.write(p, file, x.X, restored)
				}
			}
			return true
		})
		if probe.args != "" && probe.literal != "" {
			a.codeFinding("test_mode_probe", enclosing, probe.args, d.Pos(), fmt.Sprintf("non-test code compares %s with %q in %s: it asks whether tests run", probe.args, probe.literal, enclosing))
		}
		if probe.stack != "" && probe.stackLiteral != "" {
			a.codeFinding("test_mode_probe", enclosing, probe.stack, d.Pos(), fmt.Sprintf("non-test code reads its callers with %s and compares them with %q in %s: it asks whether tests run", probe.stack, probe.stackLiteral, enclosing))
		}
	}
}

// framing is the byte test2json reads go test's report by (a line starting with it is a report line).
const (
	framing    = "\x16"
	framingWhy = "byte 0x16, the byte test2json frames go test's report lines with: printing it can forge test results"
)

// framingConst: a constant expression that is or holds the framing byte: a string holding 0x16, or the
// value 22 as a byte or rune (`'\x16'`, `byte(22)`, an element of `[]byte{22}`, `rune(11*2)`), whatever the
// spelling, as the type checker computed it.
func framingConst(tv types.TypeAndValue) bool {
	if tv.Value == nil || tv.Type == nil {
		return false
	}
	switch tv.Value.Kind() {
	case constant.String:
		return strings.Contains(constant.StringVal(tv.Value), framing)
	case constant.Int:
		b, ok := tv.Type.Underlying().(*types.Basic)
		if !ok || (b.Kind() != types.Uint8 && b.Kind() != types.Int32 && b.Kind() != types.UntypedRune) {
			return false
		}
		n, exact := constant.Int64Val(tv.Value)
		return exact && n == 0x16
	}
	return false
}

// binaryData marks in `data` the elements 22 of a byte or rune composite literal that read as binary data,
// not as the framing byte: followed by a constant that is neither printable ASCII nor a newline (a TLS
// handshake record starts 0x16, 0x03). A 22 alone, last, or before text (`[]byte{22}`, `{22, '-', ...}`) is
// left to framingConst.
func binaryData(info *types.Info, cl *ast.CompositeLit, data map[ast.Expr]bool) {
	values := make([]ast.Expr, len(cl.Elts))
	for i, e := range cl.Elts {
		if kv, ok := e.(*ast.KeyValueExpr); ok {
			e = kv.Value
		}
		values[i] = e
	}
	for i := 0; i+1 < len(values); i++ {
		if tv, ok := info.Types[values[i]]; !ok || tv.Value == nil || tv.Value.Kind() != constant.Int || !framingConst(tv) {
			continue
		}
		next, ok := info.Types[values[i+1]]
		if !ok || next.Value == nil || next.Value.Kind() != constant.Int {
			continue
		}
		if n, exact := constant.Int64Val(next.Value); exact && n != '\n' && (n < 0x20 || n > 0x7e) {
			data[values[i]] = true
		}
	}
}

// compared: the functions of package bytes that only compare or search their arguments: a byte literal
// passed to one is data, never printed (`bytes.HasPrefix(record, []byte{22})`).
var compared = map[string]bool{
	"Equal": true, "EqualFold": true, "Compare": true, "HasPrefix": true, "HasSuffix": true,
	"Contains": true, "Index": true, "LastIndex": true, "Count": true,
}

// comparedData marks in `data` the integer elements of byte composite literals passed straight to a
// function of `compared`.
func comparedData(info *types.Info, call *ast.CallExpr, data map[ast.Expr]bool) {
	var id *ast.Ident
	if sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr); ok {
		id = sel.Sel
	}
	if id == nil {
		return
	}
	fn, ok := info.Uses[id].(*types.Func)
	if !ok || fn.Pkg() == nil || fn.Pkg().Path() != "bytes" || !compared[fn.Name()] {
		return
	}
	for _, arg := range call.Args {
		cl, ok := ast.Unparen(arg).(*ast.CompositeLit)
		if !ok {
			continue
		}
		for _, e := range cl.Elts {
			if kv, ok := e.(*ast.KeyValueExpr); ok {
				e = kv.Value
			}
			if tv, ok := info.Types[e]; ok && tv.Value != nil && tv.Value.Kind() == constant.Int {
				data[e] = true
			}
		}
	}
}

// short: a literal as it is written, cut to 40 characters.
func short(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

// testOnlyObjects: objects code in a test binary may not use, with the rule and what they do.
var testOnlyObjects = map[string][2]string{
	"syscall.Exit":                       {"exit_in_test", "ends the test binary without the testing package noticing (os.Exit(0) in a test panics; this does not)"},
	"golang.org/x/sys/unix.Exit":         {"exit_in_test", "ends the test binary without the testing package noticing (os.Exit(0) in a test panics; this does not)"},
	"syscall.Exec":                       {"exit_in_test", "replaces the test binary with another program, which can end it with any status"},
	"golang.org/x/sys/unix.Exec":         {"exit_in_test", "replaces the test binary with another program, which can end it with any status"},
	"golang.org/x/sys/unix.Execveat":     {"exit_in_test", "replaces the test binary with another program, which can end it with any status"},
	"syscall.Mprotect":                   {"rewrites_code", "changes memory protection, so a test can make code writable and rewrite the functions under test"},
	"golang.org/x/sys/unix.Mprotect":     {"rewrites_code", "changes memory protection, so a test can make code writable and rewrite the functions under test"},
	"golang.org/x/sys/unix.PkeyMprotect": {"rewrites_code", "changes memory protection, so a test can make code writable and rewrite the functions under test"},
}

// rawSyscalls: the raw system call numbers test code may not pass to syscall.Syscall and its kin.
var rawSyscalls = map[string]string{
	"SYS_EXIT":          "exit_in_test",
	"SYS_EXIT_GROUP":    "exit_in_test",
	"SYS_EXECVE":        "exit_in_test",
	"SYS_EXECVEAT":      "exit_in_test",
	"SYS_MPROTECT":      "rewrites_code",
	"SYS_PKEY_MPROTECT": "rewrites_code",
}

func (a *analysis) codeFinding(rule, enclosing, what string, pos token.Pos, detail string) {
	file, line := a.rel(pos)
	key := fmt.Sprintf("%s|%s|%s", rule, enclosing, what)
	a.facts.Findings = append(a.facts.Findings, Finding{rule, key, file, line, detail})
}

// isInt: e is the integer constant v.
func isInt(info *types.Info, e ast.Expr, v int64) bool {
	tv, ok := info.Types[e]
	if !ok || tv.Value == nil || tv.Value.Kind() != constant.Int {
		return false
	}
	n, exact := constant.Int64Val(tv.Value)
	return exact && n == v
}

// rawSyscallFunc: syscall.Syscall and its kin (RawSyscall, Syscall6, ...) in syscall or x/sys/unix.
func rawSyscallFunc(fn *types.Func) bool {
	if fn.Pkg() == nil || (fn.Pkg().Path() != "syscall" && fn.Pkg().Path() != "golang.org/x/sys/unix") {
		return false
	}
	return strings.Contains(fn.Name(), "Syscall") && fn.Type().(*types.Signature).Recv() == nil
}

// calleeIdent: the name a call calls (`f` of `f(x)`, `Sel` of `pkg.f(x)`), or nil.
func calleeIdent(call *ast.CallExpr) *ast.Ident {
	switch f := ast.Unparen(call.Fun).(type) {
	case *ast.Ident:
		return f
	case *ast.SelectorExpr:
		return f.Sel
	}
	return nil
}

// call checks one call: a test-flag lookup in non-test code; in any code (`who` says which), raw exit,
// exec or mprotect system calls and an executable mmap. Conversions of 22 to a byte or rune are constants
// (framingConst).
func (a *analysis) call(info *types.Info, call *ast.CallExpr, test bool, enclosing, who string) {
	if tv, ok := info.Types[call.Fun]; ok && tv.IsType() {
		return
	}
	id := calleeIdent(call)
	if id == nil {
		return
	}
	fn, ok := info.Uses[id].(*types.Func)
	if !ok || fn.Pkg() == nil {
		return
	}
	name, pkg := fn.FullName(), fn.Pkg().Path()
	if !test && (name == "flag.Lookup" || name == "(*flag.FlagSet).Lookup") && len(call.Args) > 0 {
		if tv := info.Types[call.Args[0]]; tv.Value != nil && tv.Value.Kind() == constant.String {
			if flagName := constant.StringVal(tv.Value); strings.HasPrefix(flagName, "test.") {
				a.codeFinding("test_mode_probe", enclosing, "flag:"+flagName, call.Pos(), fmt.Sprintf("non-test code looks up the test binary's flag %q in %s: it asks whether tests run", flagName, enclosing))
			}
		}
	}
	if pkg != "syscall" && pkg != "golang.org/x/sys/unix" {
		return
	}
	scope := fn.Pkg().Scope()
	if rawSyscallFunc(fn) && len(call.Args) > 0 && info.Types[call.Args[0]].Value == nil {
		a.codeFinding("exit_in_test", enclosing, name+"(computed)", call.Pos(), fmt.Sprintf("%s makes a raw system call through %s with a number computed at run time: it could be exit or execve", who, name))
	} else if rawSyscallFunc(fn) && len(call.Args) > 0 {
		for sys, rule := range rawSyscalls {
			if c, ok := scope.Lookup(sys).(*types.Const); ok {
				if n, exact := constant.Int64Val(c.Val()); exact && isInt(info, call.Args[0], n) {
					a.codeFinding(rule, enclosing, pkg+"."+sys, call.Pos(), fmt.Sprintf("%s makes the raw system call %s through %s", who, sys, name))
				}
			}
		}
	}
	if fn.Name() == "Mmap" || fn.Name() == "MmapPtr" {
		sig := fn.Type().(*types.Signature)
		exec, _ := scope.Lookup("PROT_EXEC").(*types.Const)
		for i := 0; i < sig.Params().Len() && i < len(call.Args) && exec != nil; i++ {
			if sig.Params().At(i).Name() != "prot" {
				continue
			}
			bit, _ := constant.Int64Val(exec.Val())
			tv := info.Types[call.Args[i]]
			mentions := false
			refs(info, call.Args[i], func(_ *ast.Ident, obj types.Object) { mentions = mentions || obj == exec })
			if v, exact := constant.Int64Val(constant.ToInt(tv.Value)); mentions || (tv.Value != nil && exact && v&bit != 0) {
				a.codeFinding("rewrites_code", enclosing, name, call.Pos(), who+" maps executable memory with "+name+", so it can run or patch machine code")
			}
		}
	}
}

// argvProbe collects, in one declaration of non-test code, a use of os.Args or os.Executable and a
// string constant that names a test binary (`x.test`, `x.test.exe`) or one of its flags (`-test.v`);
// and a walk of the call stack (runtime.Callers and its kin) and a string constant naming a test file or
// the testing package's frames (`_test.go`, `testing.`, `tRunner`). Best effort: it reads one
// declaration, as a person reviewing the patch would.
type argvProbe struct {
	args         string
	literal      string
	stack        string
	stackLiteral string
}

// stackWalks: what tells code which functions called it.
var stackWalks = map[string]bool{
	"runtime.Caller": true, "runtime.Callers": true, "runtime.CallersFrames": true, "runtime.FuncForPC": true,
	"runtime.Stack": true, "runtime/debug.Stack": true,
}

func (p *argvProbe) see(info *types.Info, e ast.Expr) {
	if id, ok := e.(*ast.Ident); ok {
		name := objName(info.Uses[id])
		if name == "os.Args" || name == "os.Executable" {
			p.args = name
		}
		if stackWalks[name] {
			p.stack = name
		}
	}
	if _, isLit := e.(*ast.BasicLit); !isLit {
		if _, isIdent := e.(*ast.Ident); !isIdent {
			return
		}
	}
	if tv, ok := info.Types[e]; ok && tv.Value != nil && tv.Value.Kind() == constant.String {
		s := constant.StringVal(tv.Value)
		if p.literal == "" && testBinaryString(s) {
			p.literal = s
		}
		if p.stackLiteral == "" && testFrameString(s) {
			p.stackLiteral = s
		}
	}
}

// testFrameString: a string that names a test file or a frame of the testing package in a stack.
func testFrameString(s string) bool {
	return strings.Contains(s, "_test.go") ||
		strings.HasPrefix(s, "testing.") || strings.Contains(s, "tRunner")
}

func testBinaryString(s string) bool {
	return strings.HasSuffix(s, ".test") || strings.HasSuffix(s, ".test.exe") ||
		strings.HasPrefix(s, "-test.") || strings.HasPrefix(s, "--test.")
}

// restoredVars: package variables V that fd saves (`old := V`) and puts back (`V = old`) in a
// deferred function or a t.Cleanup callback.
func restoredVars(info *types.Info, fd *ast.FuncDecl) map[string]bool {
	saved := map[types.Object]string{} // local -> the package variable it holds
	ast.Inspect(fd, func(x ast.Node) bool {
		if as, ok := x.(*ast.AssignStmt); ok && as.Tok == token.DEFINE && len(as.Lhs) == len(as.Rhs) {
			for i, lhs := range as.Lhs {
				id, ok1 := lhs.(*ast.Ident)
				src, ok2 := as.Rhs[i].(*ast.Ident)
				if ok1 && ok2 && info.Defs[id] != nil {
					if name := objName(info.Uses[src]); name != "" {
						saved[info.Defs[id]] = name
					}
				}
			}
		}
		return true
	})
	out := map[string]bool{}
	restore := func(body ast.Node) {
		ast.Inspect(body, func(x ast.Node) bool {
			if as, ok := x.(*ast.AssignStmt); ok && as.Tok == token.ASSIGN && len(as.Lhs) == len(as.Rhs) {
				for i, lhs := range as.Lhs {
					id, ok1 := lhs.(*ast.Ident)
					src, ok2 := as.Rhs[i].(*ast.Ident)
					if ok1 && ok2 {
						if name := objName(info.Uses[id]); name != "" && saved[info.Uses[src]] == name {
							out[name] = true
						}
					}
				}
			}
			return true
		})
	}
	ast.Inspect(fd, func(x ast.Node) bool {
		switch x := x.(type) {
		case *ast.DeferStmt:
			restore(x.Call)
		case *ast.CallExpr:
			if sel, ok := x.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Cleanup" {
				for _, arg := range x.Args {
					restore(arg)
				}
			}
		}
		return true
	})
	return out
}

func inModule(p *packages.Package, other *types.Package) bool {
	if p.Module == nil {
		return other.Path() == p.PkgPath || other.Path() == strings.TrimSuffix(p.PkgPath, "_test")
	}
	mod := p.Module.Path
	return other.Path() == mod || strings.HasPrefix(other.Path(), mod+"/")
}

func (a *analysis) literal(s string) {
	if s == "" || len(s) > 200 || a.seenLit[s] {
		return
	}
	a.seenLit[s] = true
	a.facts.TestLiterals = append(a.facts.TestLiterals, s)
}

// write records an assignment to a package-level variable of the module (x, x.f, x[i], *x).
func (a *analysis) write(p *packages.Package, file string, e ast.Expr, restored map[string]bool) {
	for {
		switch x := e.(type) {
		case *ast.SelectorExpr:
			if id, ok := x.X.(*ast.Ident); ok {
				if _, isPkg := p.TypesInfo.Uses[id].(*types.PkgName); isPkg {
					e = x.Sel
					continue
				}
			}
			e = x.X
			continue
		case *ast.IndexExpr:
			e = x.X
			continue
		case *ast.StarExpr:
			e = x.X
			continue
		case *ast.ParenExpr:
			e = x.X
			continue
		case *ast.Ident:
			obj := p.TypesInfo.Uses[x]
			if obj == nil {
				obj = p.TypesInfo.Defs[x]
			}
			if v, ok := obj.(*types.Var); ok && v.Pkg() != nil && inModule(p, v.Pkg()) {
				if name := objName(v); name != "" {
					_, line := a.rel(x.Pos())
					a.facts.Writes = append(a.facts.Writes, VarUse{name, file, line, restored[name]})
				}
			}
		}
		return
	}
}

// helpers finds non-test code only tests reach: packages only test variants import (test helper
// and testutil packages, per `go list -test -deps`; a package's own tests do not count), and
// unexported functions only test files use.
func (a *analysis) helpers(pkgs []*packages.Package) {
	byID := map[string]*packages.Package{}
	for _, p := range pkgs {
		byID[p.ID] = p
	}
	var walk func(p *packages.Package, mark map[string]bool, seen map[string]bool)
	walk = func(p *packages.Package, mark map[string]bool, seen map[string]bool) {
		for _, imp := range p.Imports {
			if seen[imp.ID] {
				continue
			}
			seen[imp.ID] = true
			mark[imp.PkgPath] = true
			walk(imp, mark, seen)
		}
	}
	isTestVariant := func(p *packages.Package) bool {
		return strings.Contains(p.ID, " [") || strings.HasSuffix(p.PkgPath, "_test")
	}
	importedByTests := map[string]bool{}
	candidates := map[string]*packages.Package{}
	for _, p := range pkgs {
		if strings.HasSuffix(p.ID, ".test") {
			continue
		}
		if isTestVariant(p) {
			// The package under test is not a helper of its own tests: an external test package
			// (p_test) imports it, and a package nothing else imports (code other modules copy, as
			// x/text's internal/export/...) would otherwise look like one.
			reached := map[string]bool{}
			walk(p, reached, map[string]bool{})
			under := strings.TrimSuffix(p.PkgPath, "_test")
			for path := range reached {
				if path != under {
					importedByTests[path] = true
				}
			}
			continue
		}
		last := p.PkgPath[strings.LastIndex(p.PkgPath, "/")+1:]
		testish := strings.Contains(p.PkgPath, "/internal/") || strings.Contains(strings.ToLower(last), "test")
		if testish && p.Name != "main" {
			candidates[p.PkgPath] = p
		}
	}
	// A helper package is one only tests and other helper packages import: drop candidates that
	// the rest of the code imports until nothing changes.
	for changed := true; changed; {
		changed = false
		importedByCode := map[string]bool{}
		for _, p := range pkgs {
			if !strings.HasSuffix(p.ID, ".test") && !isTestVariant(p) && candidates[p.PkgPath] == nil {
				walk(p, importedByCode, map[string]bool{})
			}
		}
		for path := range candidates {
			if importedByCode[path] || !importedByTests[path] {
				delete(candidates, path)
				changed = true
			}
		}
	}
	for _, p := range candidates {
		for _, f := range p.GoFiles {
			r, err := filepath.Rel(a.root, f)
			if err == nil && !isTestFile(f) {
				a.facts.HelperFiles = append(a.facts.HelperFiles, filepath.ToSlash(r))
			}
		}
	}
	sort.Strings(a.facts.HelperFiles)
	// Unexported functions of non-test files: who refers to them?
	usedByCode := map[string]bool{}
	usedByTests := map[string]bool{}
	type decl struct {
		fd   *ast.FuncDecl
		p    *packages.Package
		file string
	}
	decls := map[string]decl{}
	seenFile := map[string]bool{}
	for _, p := range pkgs {
		if p.TypesInfo == nil || strings.HasSuffix(p.ID, ".test") {
			continue
		}
		for _, f := range p.Syntax {
			file, _ := a.rel(f.Pos())
			if seenFile[file] {
				continue
			}
			seenFile[file] = true
			test := isTestFile(file)
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				var self string
				if ok {
					if obj, ok2 := p.TypesInfo.Defs[fd.Name].(*types.Func); ok2 {
						self = obj.FullName()
						if !test && !obj.Exported() && fd.Body != nil && fd.Name.Name != "init" && fd.Name.Name != "main" {
							decls[self] = decl{fd, p, file}
						}
					}
				}
				refs(p.TypesInfo, d, func(_ *ast.Ident, obj types.Object) {
					fn, ok := obj.(*types.Func)
					if !ok || fn.FullName() == self {
						return
					}
					if test {
						usedByTests[fn.FullName()] = true
					} else {
						usedByCode[fn.FullName()] = true
					}
				})
			}
		}
	}
	for key, d := range decls {
		if !usedByTests[key] || usedByCode[key] {
			continue
		}
		if fn, ok := d.p.TypesInfo.Defs[d.fd.Name].(*types.Func); ok {
			if sig, ok := fn.Type().(*types.Signature); ok && sig.Recv() != nil {
				continue // a method may satisfy an interface the code uses
			}
		}
		start, end := a.fset.Position(d.fd.Pos()).Offset, a.fset.Position(d.fd.End()).Offset
		src, err := os.ReadFile(a.fset.Position(d.fd.Pos()).Filename)
		if err != nil || end > len(src) {
			continue
		}
		sum := sha256.Sum256(src[start:end])
		_, line := a.rel(d.fd.Pos())
		a.facts.Helpers = append(a.facts.Helpers, Helper{key, d.file, line, hex.EncodeToString(sum[:8])})
	}
	sort.Slice(a.facts.Helpers, func(i, j int) bool { return a.facts.Helpers[i].Key < a.facts.Helpers[j].Key })
}
