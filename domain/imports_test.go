package domain

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The domain is pure: the standard library, uuid, x/text and a faster
// encoding/json decoder (segmentio/encoding/json, for stored events) only,
// and nothing else of cxledger (not even eventstore).
func TestImportsArePure(t *testing.T) {
	allowed := []string{"github.com/google/uuid", "golang.org/x/text/", "github.com/segmentio/encoding/json"}
	files, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := f.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range file.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			std := !strings.Contains(strings.Split(path, "/")[0], ".")
			ok := std
			for _, a := range allowed {
				ok = ok || path == a || strings.HasPrefix(path, a)
			}
			if !ok {
				t.Errorf("%s imports %s", name, path)
			}
		}
	}
}
