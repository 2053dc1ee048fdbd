package status

import "testing"

func TestRedact(t *testing.T) {
	const key = "sk-0123456789abcdefXYZ"
	for in, want := range map[string]string{
		"bad key " + key: "bad key [REDACTED]",
		// A provider's masked echo keeps the key's first 8 characters.
		"Incorrect API key provided: sk-01234***XYZ.": "Incorrect API key provided: [REDACTED]***XYZ.",
		"tail only: 9abcdefXYZ":                       "tail only: 9a[REDACTED]",
		"nothing secret":                              "nothing secret",
	} {
		if got := Redact(in, key); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Redact("short key abc", "abc"); got != "short key [REDACTED]" {
		t.Errorf("short key: %q", got)
	}
	if got := Redact("no key", ""); got != "no key" {
		t.Errorf("empty key: %q", got)
	}
}
