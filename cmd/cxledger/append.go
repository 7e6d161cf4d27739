package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/google/uuid"
	"github.com/spf13/pflag"
)

func init() {
	register(command{name: "append", short: "append a touchpoint (one event) to a customer's stream", flags: appendCommand, creates: true})
}

func appendCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	customer := fs.String("customer", "", "customer id (uuid); omitted for CustomerRegistered, a new id is made")
	typ := fs.String("type", "", "event type, e.g. CallLogged ("+strings.Join(domain.Types(), ", ")+")")
	data := fs.String("event", "", "event payload as a JSON object ('-' reads it from standard input)")
	id := fs.String("id", "", "event id (uuid), the idempotency key: set it to retry safely; default a new id")
	expected := fs.String("expected", "any", "expected stream version: any, no-stream, exists, or a version number")
	actor := fs.String("actor", defaultActor(), "who records the event: user:<name>, service:<name>, import:<batch>, system:<name>")
	channel := fs.String("channel", "", "touchpoint channel or source system")
	occurred := fs.String("occurred-at", "", "when it happened, RFC 3339 (default now)")
	correlation := fs.String("correlation-id", "", "id tying the events of one business flow together")
	causation := fs.String("causation-id", "", "id of the event or command that caused this one")
	return func(ctx context.Context, e *env) error {
		if *typ == "" {
			return usageErr("--type is required")
		}
		payload := []byte(*data)
		if *data == "-" {
			b, err := readAllLimited(e.stdin, 4<<20)
			if err != nil {
				return err
			}
			payload = b
		}
		if len(strings.TrimSpace(string(payload))) == 0 {
			return usageErr("--event is required (a JSON object, or - for standard input)")
		}
		exp, err := parseExpected(*expected)
		if err != nil {
			return usageErr("--expected: %v", err)
		}
		md := domain.Metadata{Actor: *actor, Channel: *channel, CorrelationID: *correlation, CausationID: *causation, OccurredAt: time.Now().UTC()}
		if *occurred != "" {
			t, err := time.Parse(time.RFC3339Nano, *occurred)
			if err != nil {
				return usageErr("--occurred-at: %v", err)
			}
			md.OccurredAt = t
		}
		var customerID uuid.UUID
		switch {
		case *customer != "":
			if customerID, err = uuid.Parse(*customer); err != nil {
				return usageErr("--customer: %v", err)
			}
		case *typ == domain.TypeCustomerRegistered:
			if customerID, payload, err = withCustomerID(payload); err != nil {
				return err
			}
		default:
			return usageErr("--customer is required for %s", *typ)
		}
		ev, err := domain.Parse(*typ, payload)
		if err != nil {
			return err
		}
		tp := ledger.Touchpoint{Event: ev, Metadata: md}
		if *id != "" {
			if tp.ID, err = uuid.Parse(*id); err != nil {
				return usageErr("--id: %v", err)
			}
		}
		if len(e.args) > 0 {
			return usageErr("append takes no arguments (use --customer)")
		}
		if err := e.open(ctx); err != nil {
			return err
		}
		kr, err := openKeyring(ctx, e.cfg, e.log)
		if err != nil {
			return err
		}
		defer kr.Close()
		l := ledger.New(e.store)
		l.Keys = kr
		res, err := l.Append(ctx, customerID, exp, tp)
		if err != nil {
			return err
		}
		return json.NewEncoder(e.stdout).Encode(map[string]any{
			"customerId": customerID, "stream": domain.StreamID(customerID),
			"version": res.Version, "position": res.Position,
		})
	}
}

// withCustomerID returns the registration's customer id, adding a new one
// to the payload when it has none.
func withCustomerID(payload []byte) (uuid.UUID, []byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil {
		return uuid.Nil, nil, fmt.Errorf("--event: %w: %v", domain.ErrInvalid, err)
	}
	if raw, ok := fields["customerId"]; ok {
		var id uuid.UUID
		if err := json.Unmarshal(raw, &id); err != nil {
			return uuid.Nil, nil, &domain.ValidationError{Field: "customerId", Rule: "must be a uuid"}
		}
		return id, payload, nil
	}
	id := uuid.New()
	fields["customerId"], _ = json.Marshal(id)
	out, err := json.Marshal(fields)
	return id, out, err
}

func parseExpected(s string) (eventstore.ExpectedVersion, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "any", "":
		return eventstore.Any, nil
	case "no-stream", "nostream", "none":
		return eventstore.NoStream, nil
	case "exists", "stream-exists":
		return eventstore.StreamExists, nil
	}
	v, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		return 0, fmt.Errorf("%q is not any, no-stream, exists or a version number", s)
	}
	return eventstore.Exact(v), nil
}

func defaultActor() string {
	if u := os.Getenv("USER"); u != "" {
		return "user:" + u
	}
	return "user:cli"
}
