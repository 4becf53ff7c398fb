// Command goast prints the top-level functions and methods of the Go files named on the command
// line, one per line: "<pkg>.<Recv>.<Name> <start> <end>" (Recv omitted for functions), using
// go/parser as the ground truth for the chunker tests.
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
)

func recvName(expr ast.Expr) string {
	switch t := expr.(type) {
	case *ast.StarExpr:
		return recvName(t.X)
	case *ast.IndexExpr:
		return recvName(t.X)
	case *ast.IndexListExpr:
		return recvName(t.X)
	case *ast.ParenExpr:
		return recvName(t.X)
	case *ast.Ident:
		return t.Name
	}
	return ""
}

func main() {
	fset := token.NewFileSet()
	for _, path := range os.Args[1:] {
		file, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, decl := range file.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok {
				continue
			}
			name := file.Name.Name + "."
			if fn.Recv != nil && len(fn.Recv.List) > 0 {
				name += recvName(fn.Recv.List[0].Type) + "."
			}
			start := fset.Position(fn.Pos()).Line
			end := fset.Position(fn.End()).Line
			fmt.Printf("%s %s%s %d %d\n", path, name, fn.Name.Name, start, end)
		}
	}
}
