package pgrm

import (
	"fmt"
	"testing"
)

// The key set never forgets a key (a key it forgot would be sent by COPY
// and refused), and mistakes few keys for present ones across its layers.
func TestKeySet(t *testing.T) {
	s := newKeySet(0)
	const n = 3*firstLayerKeys + 1000 // 2^20, 2^21, then 1000 of 2^22
	for i := range n {
		s.add(fmt.Sprintf("k/%d", i))
	}
	if len(s.layers) != 3 {
		t.Fatalf("%d layers for %d keys, want 3", len(s.layers), n)
	}
	for i := range n {
		if !s.mayHold(fmt.Sprintf("k/%d", i)) {
			t.Fatalf("key %d forgotten", i)
		}
	}
	const probes = 200_000
	fp := 0
	for i := range probes {
		if s.mayHold(fmt.Sprintf("other/%d", i)) {
			fp++
		}
	}
	// A full layer errs about 1.1 % of the time: two full layers and a
	// nearly empty one, about 2.2 % together.
	if rate := float64(fp) / probes; rate > 0.03 {
		t.Fatalf("false positives %.2f %%, want under 3 %%", 100*rate)
	}
}

// A set held by a transaction when its namespace is dropped is not given
// back when the transaction ends; a set trusted at one checkpoint is not
// at another.
func TestFreshKeysDrop(t *testing.T) {
	var f freshKeys
	s := f.newSet("ns")
	s.add("k")
	f.release("ns", s, 10)
	if f.claim("ns", 9) != nil {
		t.Fatal("claimed at checkpoint 9 a set left at 10")
	}
	if f.claim("ns", 10) != nil {
		t.Fatal("a set found untrusted was kept")
	}
	s = f.newSet("ns")
	f.release("ns", s, 10)
	held := f.claim("ns", 10)
	if held == nil {
		t.Fatal("no set at its checkpoint")
	}
	f.forget("ns") // a Drop while held
	f.release("ns", held, 20)
	if f.claim("ns", 20) != nil {
		t.Fatal("a set held across a Drop was given back")
	}
	s = f.newSet("ns") // the namespace made again
	f.release("ns", s, 0)
	if f.claim("ns", 0) == nil {
		t.Fatal("the new namespace's set is lost")
	}
}
