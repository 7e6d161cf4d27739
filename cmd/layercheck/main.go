// Command layercheck enforces cxledger's import direction: domain and the
// eventstore contract import nothing of ours, eventstore backends import only
// the contract (and their own subpackages), projections import domain and
// eventstore, adapters import all three, and only cmd wires everything.
// It reads `go list -json ./...` and exits 1 naming every violation.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

const module = "github.com/cxledger/cxledger"

// allowed lists, per layer, which layers of ours it may import. A package's
// layer is its first path element below the module; its own subtree is
// always allowed.
var allowed = map[string][]string{
	"domain":      {},
	"eventstore":  {}, // backends: the contract only (checked below)
	"projections": {"domain", "eventstore"},
	"adapters":    {"domain", "eventstore", "projections"},
	"cmd":         {"domain", "eventstore", "projections", "adapters"},
}

type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "layercheck:", err)
		os.Exit(1)
	}
}

func run(out io.Writer) error {
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Stderr = os.Stderr
	data, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go list: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	var bad []string
	n := 0
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			return fmt.Errorf("decode go list output: %w", err)
		}
		n++
		imports := append(append(append([]string{}, p.Imports...), p.TestImports...), p.XTestImports...)
		for _, imp := range imports {
			if why := violation(p.ImportPath, imp); why != "" {
				bad = append(bad, fmt.Sprintf("%s imports %s: %s", rel(p.ImportPath), rel(imp), why))
			}
		}
	}
	if len(bad) > 0 {
		return errors.New("import direction violated:\n  " + strings.Join(bad, "\n  "))
	}
	fmt.Fprintf(out, "layercheck: %d packages respect the import direction\n", n)
	return nil
}

func rel(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, module), "/") }

func layer(path string) string {
	r := rel(path)
	if i := strings.IndexByte(r, '/'); i >= 0 {
		return r[:i]
	}
	return r
}

// violation explains why from may not import imp, or returns "".
func violation(from, imp string) string {
	if !strings.HasPrefix(imp, module+"/") && imp != module {
		return "" // not ours
	}
	fromRel, impRel := rel(from), rel(imp)
	if impRel == fromRel || strings.HasPrefix(impRel, fromRel+"/") {
		return "" // own subtree
	}
	fl, il := layer(from), layer(imp)
	if fl == "eventstore" && il == "eventstore" {
		// Backends and the suite build on the contract; the contract itself
		// imports nothing of ours, and backends do not import each other
		// (tests may use the shared suite and memstore as a double).
		switch {
		case fromRel == "eventstore":
			return "the eventstore contract imports nothing of ours"
		case impRel == "eventstore", impRel == "eventstore/storetest", impRel == "eventstore/memstore":
			return ""
		case strings.HasPrefix(impRel, "eventstore/pgstore/pgtest"):
			return ""
		case impRel == "eventstore/notary" && strings.HasPrefix(fromRel, "eventstore/notary/"):
			return "" // the notary's suite tests the notary
		case fromRel == "eventstore/storetest/backends":
			return "" // test support: opens every backend for tests above the store
		default:
			return "eventstore backends import only the contract"
		}
	}
	if fl == il {
		return "" // one layer's own packages
	}
	rules, ok := allowed[fl]
	if !ok {
		return fmt.Sprintf("package outside the known layers %v", keys())
	}
	for _, a := range rules {
		if a == il {
			return ""
		}
	}
	return fmt.Sprintf("%s may import only %v of ours", fl, rules)
}

func keys() []string { return []string{"domain", "eventstore", "projections", "adapters", "cmd"} }
