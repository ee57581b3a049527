package framework

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/guestcatalog/guestcatalog"

// goPackage is what the rules need from `go list -json`.
type goPackage struct {
	ImportPath string
	Dir        string
	GoFiles    []string
}

// listPackages lists the module's packages with their non-test files.
func listPackages(t *testing.T) []goPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	require.NoError(t, err)
	var pkgs []goPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p goPackage
		require.NoError(t, dec.Decode(&p))
		pkgs = append(pkgs, p)
	}
	require.Greater(t, len(pkgs), 10, "go list found too few packages")
	return pkgs
}

func parseFile(t *testing.T, path string) (*token.FileSet, *ast.File) {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
	require.NoError(t, err)
	return fset, f
}

func isEnvRead(pkg, name string) bool {
	switch pkg {
	case "os":
		return name == "Getenv" || name == "LookupEnv" || name == "Environ" || name == "ExpandEnv"
	case "syscall":
		return name == "Getenv" || name == "Environ"
	}
	return false
}

// envReads lists the places in f that read the environment: any use of
// os.Getenv, os.LookupEnv, os.Environ, os.ExpandEnv or their syscall
// twins, called or passed as a value.
func envReads(fset *token.FileSet, f *ast.File) []string {
	imports := map[string]string{} // local name → import path
	for _, im := range f.Imports {
		path, _ := strconv.Unquote(im.Path.Value)
		name := filepath.Base(path)
		if im.Name != nil {
			name = im.Name.Name
		}
		imports[name] = path
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); ok && isEnvRead(imports[id.Name], sel.Sel.Name) {
			out = append(out, fmt.Sprintf("%s: %s.%s", fset.Position(sel.Pos()), imports[id.Name], sel.Sel.Name))
		}
		return true
	})
	return out
}

// TestOnlyConfigReadsTheEnvironment: environment variables are read in
// framework/config (and cmd/catalog, which hands os.Environ() to it);
// every other package takes options. Test-support packages (a name ending
// in "test", e.g. framework/qemu/qemutest) read their own test knobs.
func TestOnlyConfigReadsTheEnvironment(t *testing.T) {
	allowed := map[string]bool{module + "/framework/config": true, module + "/cmd/catalog": true}
	checked := 0
	for _, p := range listPackages(t) {
		if allowed[p.ImportPath] || strings.HasSuffix(p.ImportPath, "test") {
			continue
		}
		for _, name := range p.GoFiles {
			fset, f := parseFile(t, filepath.Join(p.Dir, name))
			checked++
			for _, r := range envReads(fset, f) {
				t.Errorf("%s reads the environment; take an option, and read it in framework/config", r)
			}
		}
	}
	require.Greater(t, checked, 50)
}

func TestEnvReadsAreFound(t *testing.T) {
	src := `package x
import ("os"; sys "syscall")
var get = os.Getenv
func f() { _ = os.Getenv("A"); _, _ = os.LookupEnv("B"); _ = sys.Environ() }`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", src, 0)
	require.NoError(t, err)
	require.Len(t, envReads(fset, f), 4)
}

// packageState lists the file-scope variables of f that the rule forbids.
//
// The rule: a non-test package under framework/ keeps no state of its own
// between calls; everything a run changes lives in values (framework.Run,
// a Guest, a Cache). A file-scope `var` is allowed only when
//   - every name is _ (a compile-time assertion: var _ I = (*T)(nil));
//   - it declares sentinel errors: each name starts with Err or err and each
//     value is errors.New(...), fmt.Errorf(...) or another package's Err*
//     (var ErrX = other.ErrX);
//   - it carries a //go:embed directive (data the compiler fills in);
//   - its value is regexp.MustCompile(...): a compiled *regexp.Regexp is
//     safe for concurrent use and nothing in this module configures one
//     after compilation (its only mutator, Longest, is never called).
//
// Anything else — tables, patterns, flags, test hooks — is a const, a
// function returning a fresh value, or a field.
func packageState(fset *token.FileSet, f *ast.File) []string {
	var out []string
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.VAR {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			if allowedVar(gd, vs) {
				continue
			}
			for _, n := range vs.Names {
				out = append(out, fmt.Sprintf("%s: var %s", fset.Position(n.Pos()), n.Name))
			}
		}
	}
	return out
}

func allowedVar(gd *ast.GenDecl, vs *ast.ValueSpec) bool {
	blank := true
	for _, n := range vs.Names {
		blank = blank && n.Name == "_"
	}
	if blank {
		return true
	}
	for _, doc := range []*ast.CommentGroup{vs.Doc, gd.Doc} {
		if doc != nil && strings.Contains(doc.Text(), "go:embed") {
			return true
		}
		if doc != nil {
			for _, c := range doc.List {
				if strings.HasPrefix(c.Text, "//go:embed ") {
					return true
				}
			}
		}
	}
	if len(vs.Values) != len(vs.Names) {
		return false
	}
	compiled := true
	for _, v := range vs.Values {
		compiled = compiled && isCall(v, "regexp", "MustCompile")
	}
	if compiled {
		return true
	}
	for i, n := range vs.Names {
		if !strings.HasPrefix(n.Name, "Err") && !strings.HasPrefix(n.Name, "err") {
			return false
		}
		if !sentinel(vs.Values[i]) {
			return false
		}
	}
	return true
}

// isCall says whether e is a call of pkg.name(...).
func isCall(e ast.Expr, pkg, name string) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == pkg && sel.Sel.Name == name
}

// sentinel: errors.New(...), fmt.Errorf(...) or pkg.ErrX.
func sentinel(e ast.Expr) bool {
	switch v := e.(type) {
	case *ast.CallExpr:
		sel, ok := v.Fun.(*ast.SelectorExpr)
		if !ok {
			return false
		}
		id, ok := sel.X.(*ast.Ident)
		return ok && ((id.Name == "errors" && sel.Sel.Name == "New") || (id.Name == "fmt" && sel.Sel.Name == "Errorf"))
	case *ast.SelectorExpr:
		_, ok := v.X.(*ast.Ident)
		return ok && strings.HasPrefix(v.Sel.Name, "Err")
	}
	return false
}

func TestNoPackageStateUnderFramework(t *testing.T) {
	checked := 0
	for _, p := range listPackages(t) {
		if p.ImportPath != module+"/framework" && !strings.HasPrefix(p.ImportPath, module+"/framework/") {
			continue
		}
		for _, name := range p.GoFiles {
			fset, f := parseFile(t, filepath.Join(p.Dir, name))
			checked++
			for _, v := range packageState(fset, f) {
				t.Errorf("%s: mutable package state; make it a const, a func or a field of a value (see packageState)", v)
			}
		}
	}
	require.Greater(t, checked, 30)
}

func TestPackageStateIsFound(t *testing.T) {
	src := `package x
import ("errors"; "regexp"; "embed"; "other")
var ErrA = errors.New("a")
var ErrB = other.ErrB
var _ error = (*T)(nil)
//go:embed x
var fs embed.FS
var re = regexp.MustCompile("x")
var count int
var (
	errC = errors.New("c")
	table = []string{"a"}
)
var ErrD = makeErr()
var pattern = Pattern{Re: regexp.MustCompile("x")}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", src, parser.ParseComments)
	require.NoError(t, err)
	var names []string
	for _, s := range packageState(fset, f) {
		names = append(names, s[strings.LastIndex(s, " ")+1:])
	}
	require.Equal(t, []string{"count", "table", "ErrD", "pattern"}, names)
}

// TestLongestIsNeverCalled keeps the premise of the regexp exception.
func TestLongestIsNeverCalled(t *testing.T) {
	for _, p := range listPackages(t) {
		for _, name := range p.GoFiles {
			fset, f := parseFile(t, filepath.Join(p.Dir, name))
			ast.Inspect(f, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "Longest" {
					t.Errorf("%s: (*regexp.Regexp).Longest mutates a shared regexp", fset.Position(sel.Pos()))
				}
				return true
			})
		}
	}
}
