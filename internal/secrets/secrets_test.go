package secrets

import (
	"strings"
	"testing"
)

func TestShowURLHidesUserinfoAndQuery(t *testing.T) {
	for raw, want := range map[string]string{
		"https://user:p4ssw0rd@api.example.com/v1?sig=abcdef123456": "https://api.example.com/v1?[REDACTED]",
		"https://api.example.com/v1":                                "https://api.example.com/v1",
		"https://tok3n-abcdef@api.example.com":                      "https://api.example.com",
	} {
		if got := ShowURL(raw); got != want {
			t.Errorf("ShowURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestJoinURLKeepsTheQuery(t *testing.T) {
	if got := JoinURL("https://h/v1?sig=x", "/chat/completions"); got != "https://h/v1/chat/completions?sig=x" {
		t.Fatal(got)
	}
	if got := JoinURL("https://h/v1", "/chat/completions"); got != "https://h/v1/chat/completions" {
		t.Fatal(got)
	}
}

func TestScrubKeysWholePiecesAndShapes(t *testing.T) {
	key := "sk-live-0123456789abcdefghijKLMNOP"
	base := "https://bob:hunter2hunter2@gw.example.com/v1?sig=s3cr3tsig0001&x=1"
	s := New(6, []string{key}, URLSecrets(base)...)
	for _, text := range []string{
		"bad key " + key,
		"bad key sk-live-0123…MNOP", // prefix piece
		"key ending ghijKLMNOP was refused",
		"Get \"https://gw.example.com/v1/chat?sig=s3cr3tsig0001&x=1\": refused",
		"auth bob:hunter2hunter2 failed",
		"another account's key sk-ant-api03-ZZZZZZZZZZZZZZZZZZZZZZZZ leaked",
	} {
		out := s.Scrub(text)
		for _, secret := range []string{key, "sk-live-", "ghijKLMN", "s3cr3tsig0001", "hunter2hunter2", "sk-ant-api03"} {
			if strings.Contains(out, secret) {
				t.Errorf("Scrub(%q) = %q still contains %q", text, out, secret)
			}
		}
	}
	if got := s.Scrub("an ordinary sentence"); got != "an ordinary sentence" {
		t.Fatalf("ordinary text changed: %q", got)
	}
}

func TestQuery(t *testing.T) {
	for in, want := range map[string]string{
		"":                                   "",
		"q=weather&page=2":                   "q=weather&page=2",
		"sig=abc123&sv=2024&se=2030":         "sig=[REDACTED]&sv=2024&se=2030",
		"X-Amz-Signature=ff&X-Amz-Date=1":    "X-Amz-Signature=[REDACTED]&X-Amz-Date=1",
		"access_token=t&api_key=k&flag":      "access_token=[REDACTED]&api_key=[REDACTED]&flag",
		"note=sk-proj-abcdefghijklmnopqrstu": "note=[REDACTED]",
		"bad=%zz":                            "[REDACTED]",
	} {
		if got := Query(in, 0); got != want {
			t.Errorf("Query(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Query("q="+strings.Repeat("a", 100), 20); len(got) > 20+len("…") || !strings.HasSuffix(got, "…") {
		t.Errorf("not capped: %q", got)
	}
}
