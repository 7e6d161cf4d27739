package script

import (
	"errors"
	"testing"
	"time"
)

// FuzzCompile: the loader never panics or hangs on any script, and refuses
// only with a *CompileError.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		`fromAll().when({ $init: () => ({}), $any: (s, e) => { s[e.eventType] = (s[e.eventType] || 0) + 1; } });`,
		`fromCategory('customer').foreachStream().when({ PurchaseCompleted(s, e) { s.n = (s.n||0) + 1; } }).outputState();`,
		`fromAll().partitionBy(e => e.body.currency).when({ $any: (s) => s }).transformBy(s => s).filterBy(s => true);`,
		`fromStreams(['a', 'b']).when({ $any: (s) => s });`,
		`while (true) {}`, `function f() { f(); } f();`, `emit('a')`, "`${", `/(a+)+$/.test('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!')`,
		`fromAll().when(new Proxy({}, { ownKeys() { throw 1; } }));`,
		`Object.defineProperty(this, 'fromAll', { value: 1 }); fromAll();`,
		"//# sourceMappingURL=file:///etc/passwd\nfromAll().when({ $any: s => s });",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		p, err := Compile("fuzz", src, Limits{EventBudget: 5 * time.Millisecond})
		if err != nil {
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("refusal is not a *CompileError: %T %v", err, err)
			}
			return
		}
		_ = p.Partitioned()
		_ = p.Handles("PurchaseCompleted")
	})
}
