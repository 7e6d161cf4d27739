package exporter_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/parquet-go/parquet-go"

	"github.com/cxledger/cxledger/adapters/exporter"
	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/keyring/keyringtest"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
)

// An export with Reveal shows personal data in plaintext, and erased for
// a forgotten customer, in both formats; without it, data is as stored.
func TestExportReveals(t *testing.T) {
	ctx := context.Background()
	keys := keyringtest.Memory(t)
	s := memstore.New(memstore.Config{})
	l := ledger.New(s)
	l.Keys = keys
	md := domain.Metadata{OccurredAt: at, Actor: "service:shop"}
	for _, c := range []struct {
		id uuid.UUID
		e  domain.Event
	}{
		{zoe, domain.CustomerRegistered{CustomerID: zoe, Name: "Zoë Ångström-Nguyễn"}},
		{bruno, domain.CustomerRegistered{CustomerID: bruno, Name: "Bruno Díaz"}},
		{bruno, domain.NoteAdded{Body: "Prefers <email> & calls"}},
	} {
		if _, err := l.Append(ctx, domain.RoleSystem, c.id, eventstore.Any, ledger.Touchpoint{Event: c.e, Metadata: md}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Forget(ctx, zoe, ledger.Touchpoint{Event: domain.CustomerForgotten{Request: "DSR-1"}, Metadata: md}); err != nil {
		t.Fatal(err)
	}

	var sealed bytes.Buffer
	w := exporter.NewNDJSON(&sealed)
	if _, err := exporter.Export(ctx, s, w, exporter.Options{}); err != nil || w.Close() != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed.String(), "Bruno") || !strings.Contains(sealed.String(), domain.SealedPrefix) {
		t.Fatalf("export without Reveal is not as stored:\n%s", sealed.String())
	}

	var nd bytes.Buffer
	w = exporter.NewNDJSON(&nd)
	if _, err := exporter.Export(ctx, s, w, exporter.Options{Reveal: keys}); err != nil || w.Close() != nil {
		t.Fatal(err)
	}
	out := nd.String()
	if !strings.Contains(out, `"name":"Bruno Díaz"`) || !strings.Contains(out, `"body":"Prefers \u003cemail\u003e \u0026 calls"`) ||
		!strings.Contains(out, `"name":"`+keyring.Erased+`"`) || strings.Contains(out, "Zoë") || strings.Contains(out, domain.SealedPrefix) {
		t.Fatalf("revealed NDJSON:\n%s", out)
	}

	var pq bytes.Buffer
	p := exporter.NewParquet(&pq)
	n, err := exporter.Export(ctx, s, p, exporter.Options{Reveal: keys})
	if err != nil || p.Close() != nil {
		t.Fatal(err)
	}
	r := parquet.NewGenericReader[exporter.Row](bytes.NewReader(pq.Bytes()))
	defer r.Close()
	rows := make([]exporter.Row, n)
	if got, err := r.Read(rows); got != n || (err != nil && err != io.EOF) {
		t.Fatalf("read %d rows of %d: %v", got, n, err)
	}
	if !strings.Contains(rows[0].Data, keyring.Erased) || !strings.Contains(rows[1].Data, "Bruno Díaz") || strings.Contains(rows[0].Data, "Zoë") {
		t.Fatalf("parquet rows: %+v", rows)
	}
}
