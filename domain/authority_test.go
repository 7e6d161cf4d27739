package domain

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestEveryTypeHasAnAuthorityRow fails when an event type is added to the
// codec without deciding who may append it, or a row outlives its type.
func TestEveryTypeHasAnAuthorityRow(t *testing.T) {
	for _, typ := range Types() {
		a, err := AuthorityOf(typ)
		if err != nil {
			t.Errorf("%s: no row in the authority table: %v", typ, err)
			continue
		}
		if len(a.Writers) == 0 || a.Why == "" {
			t.Errorf("%s: incomplete row %+v", typ, a)
		}
		// The declarative rules emit through the ledger as system.
		if !slices.Contains(a.Writers, RoleSystem) {
			t.Errorf("%s: the system may not append it", typ)
		}
		// Writers are listed in AllRoles order, without repeats.
		last := -1
		for _, w := range a.Writers {
			i := slices.Index(AllRoles, w)
			if i <= last {
				t.Errorf("%s: writers %v not in AllRoles order", typ, a.Writers)
			}
			last = i
		}
	}
	for typ := range authority {
		if _, err := SchemaVersion(typ); err != nil && !slices.Contains(logTypes, typ) {
			t.Errorf("row for %s, which the codec does not know and is no log type", typ)
		}
	}
}

// TestAuthorityDecisions pins the rows the hostile-client audit (issue 14)
// is about, so that loosening one is a visible change.
func TestAuthorityDecisions(t *testing.T) {
	S, A, U, D, Y := RoleService, RoleAnalyst, RoleAuditor, RoleAdmin, RoleSystem
	for _, tc := range []struct {
		typ     string
		writers []Role
	}{
		{TypeCustomerForgotten, []Role{Y}},
		{TypePointsEarned, []Role{D, Y}},
		{TypePointsRedeemed, []Role{S, D, Y}},
		{TypePointsExpired, []Role{Y}},
		{TypeMessageQueued, []Role{Y}},
		{TypeTicketEscalated, []Role{Y}},
		{TypeDiscountIssued, []Role{Y}},
		{TypeMessageDelivered, []Role{Y}},
		{TypeMessageFailed, []Role{Y}},
		{TypeCustomerRegistered, []Role{S, D, Y}},
		{TypePurchaseCompleted, []Role{S, D, Y}},
		{TypeNoteAdded, []Role{S, D, Y}},
	} {
		a, err := AuthorityOf(tc.typ)
		if err != nil || !slices.Equal(a.Writers, tc.writers) {
			t.Errorf("%s: writers %v (%v), want %v", tc.typ, a.Writers, err, tc.writers)
		}
		for _, role := range []Role{S, A, U, D, Y} {
			err := MayAppend(role, tc.typ)
			if allowed := slices.Contains(tc.writers, role); allowed != (err == nil) {
				t.Errorf("MayAppend(%s, %s) = %v, want allowed %v", role, tc.typ, err, allowed)
			}
		}
	}
}

func TestMayAppendNamesTypeRoleAndWriters(t *testing.T) {
	err := MayAppend(RoleService, TypeCustomerForgotten)
	var fe *ForbiddenError
	if !errors.Is(err, ErrForbidden) || !errors.As(err, &fe) {
		t.Fatalf("got %v, want a *ForbiddenError", err)
	}
	if fe.Type != TypeCustomerForgotten || fe.Role != RoleService || !slices.Equal(fe.Allowed, []Role{RoleSystem}) {
		t.Errorf("got %+v", fe)
	}
	for _, want := range []string{"role service", "CustomerForgotten", "system only", "/forget"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if err := MayAppend(RoleService, TypePointsEarned); err == nil || !strings.Contains(err.Error(), "may be appended by admin, system") {
		t.Errorf("PointsEarned by service: %v", err)
	}
	if err := MayAppend(RoleAdmin, TypeAccessRecorded); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "system only") {
		t.Errorf("the access log's type, by admin: %v, want ErrForbidden, system only", err)
	}
	if err := MayAppend(RoleAdmin, "AccessRecordedd"); !errors.Is(err, ErrUnknownType) {
		t.Errorf("a type nobody knows: %v, want ErrUnknownType", err)
	}
	if err := MayAppend("", TypeNoteAdded); !errors.Is(err, ErrForbidden) {
		t.Errorf("no role: %v, want ErrForbidden", err)
	}
}

func TestAuthorityTableHasOneRowPerType(t *testing.T) {
	table := AuthorityTable()
	rows := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(rows) != len(Types())+len(logTypes)+2 {
		t.Fatalf("%d lines for %d types:\n%s", len(rows), len(Types()), table)
	}
	if !strings.Contains(table, "| `CustomerForgotten` | system only |") || !strings.Contains(table, "| `PointsEarned` | admin, system |") {
		t.Errorf("table:\n%s", table)
	}
}
