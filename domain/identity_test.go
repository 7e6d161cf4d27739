package domain

import (
	"errors"
	"testing"
)

func TestNormalizeEmail(t *testing.T) {
	for in, want := range map[string]string{
		"zoe.nguyen@example.fr":        "zoe.nguyen@example.fr",
		"  Zoe.Nguyen@Example.FR \n":   "zoe.nguyen@example.fr",
		"marta+crm@mail.example.co.uk": "marta+crm@mail.example.co.uk",
		"JOSÉ@EXAMPLE.ES":              "josé@example.es",
		"user@münchen.de":              "user@münchen.de",
		"o'brien@example.ie":           "o'brien@example.ie",
		"a@b.co":                       "a@b.co",
		"first_last-1@sub-domain.io":   "first_last-1@sub-domain.io",
	} {
		got, err := NormalizeEmail(in)
		if err != nil || got != want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "   ", "zoe", "zoe@", "@example.fr", "zoe@example", "zoe@@example.fr", "zoe@a@example.fr",
		"zoe nguyen@example.fr", ".zoe@example.fr", "zoe.@example.fr", "zo..e@example.fr",
		"zoe@-example.fr", "zoe@example-.fr", "zoe@example..fr", "zoe@exa_mple.fr", `"zoe"@example.fr`,
		"zoe@example.fr\x00", "zo\xffe@example.fr", "<zoe@example.fr>",
	} {
		if got, err := NormalizeEmail(in); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want ErrInvalid", in, got, err)
		}
	}
}

func TestNormalizePhone(t *testing.T) {
	for in, want := range map[string]string{
		"+33 6 12 34 56 78":   "+33612345678",
		"0033 6 12 34 56 78":  "+33612345678",
		"+1 (415) 555-0132":   "+14155550132",
		"+44.20.7946.0958":    "+442079460958",
		" +49 151 1234 5678 ": "+4915112345678",
		"+81-3-1234-5678":     "+81312345678",
		"+33\u00a0612345678":  "+33612345678", // no-break space from a spreadsheet
		"+12345678":           "+12345678",
		"+123456789012345":    "+123456789012345",
	} {
		got, err := NormalizePhone(in)
		if err != nil || got != want {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "06 12 34 56 78", "612345678", "+1234567", "+1234567890123456", "+0 612345678",
		"0033", "+33 6 12 34 56 78 ext. 12", "+33-6-12-34-56-7a", "++33612345678", "33+612345678",
		"+٣٣٦١٢٣٤٥٦٧٨", "+33\x00612345678", "\xff",
	} {
		if got, err := NormalizePhone(in); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("NormalizePhone(%q) = %q, %v; want ErrInvalid", in, got, err)
		}
	}
}

func TestNormalizeExternalID(t *testing.T) {
	for in, want := range map[string]string{
		"shopify:81723":             "shopify:81723",
		" Shopify : 81723 ":         "shopify:81723",
		"salesforce:0035g00000AbCd": "salesforce:0035g00000AbCd",
		"zendesk.eu:user:42":        "zendesk.eu:user:42",
		"legacy_crm:Ñandú-7":        "legacy_crm:Ñandú-7",
	} {
		got, err := NormalizeExternalID(in)
		if err != nil || got != want {
			t.Errorf("NormalizeExternalID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "81723", ":81723", "shopify:", "1shop:1", "shop ify:1", "shöp:1", "shop:a\nb"} {
		if got, err := NormalizeExternalID(in); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("NormalizeExternalID(%q) = %q, %v; want ErrInvalid", in, got, err)
		}
	}
}

func TestNormalizeIdentifier(t *testing.T) {
	for _, tt := range []struct {
		kind     IdentifierKind
		in, want string
	}{
		{IdentifierEmail, "Zoe@Example.fr", "zoe@example.fr"},
		{IdentifierPhone, "0033612345678", "+33612345678"},
		{IdentifierExternal, "Stripe:cus_Q1w2E3", "stripe:cus_Q1w2E3"},
	} {
		if got, err := NormalizeIdentifier(tt.kind, tt.in); err != nil || got != tt.want {
			t.Errorf("NormalizeIdentifier(%s, %q) = %q, %v", tt.kind, tt.in, got, err)
		}
	}
	var ve *ValidationError
	if _, err := NormalizeIdentifier("fax", "1"); !errors.As(err, &ve) || ve.Field != "kind" {
		t.Errorf("unknown kind: %v", err)
	}
}
