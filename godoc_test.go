package tether

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExamplesShownByGoDoc: the examples attach to the symbols they are
// written for, which is what `go doc -http` (and pkg.go.dev) shows: an
// example named after nothing, or after a renamed symbol, is silently
// dropped from the documentation.
func TestExamplesShownByGoDoc(t *testing.T) {
	want := map[string][]string{
		".":          {"Accept", "Dial", "Conn.Serve", "Conn.Go", "WriteJSON", "NetConn", "Helper", "Reconnect", "Registry.Shutdown"},
		"hub":        {"Hub.Join"},
		"tethertest": {"Clock", "Pair", "NewServer"},
	}
	for dir, symbols := range want {
		shown := examplesByDoc(t, dir)
		for _, s := range symbols {
			if !shown[s] {
				t.Errorf("package %s: no example shown for %s (shown: %v)", dir, s, shown)
			}
		}
	}
}

// examplesByDoc returns the symbols of the package in dir that go/doc
// attaches at least one example to.
func examplesByDoc(t *testing.T, dir string) map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	pkg, err := doc.NewFromFiles(fset, files, "github.com/tetherws/tether/"+dir)
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]bool{}
	for _, f := range pkg.Funcs {
		shown[f.Name] = len(f.Examples) > 0
	}
	for _, ty := range pkg.Types {
		shown[ty.Name] = len(ty.Examples) > 0
		for _, f := range ty.Funcs {
			shown[f.Name] = len(f.Examples) > 0
		}
		for _, m := range ty.Methods {
			shown[ty.Name+"."+m.Name] = len(m.Examples) > 0
		}
	}
	return shown
}
