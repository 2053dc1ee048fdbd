package credentials

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const secretValue = "nvapi-TOPSECRET-abcdef0123456789"

func TestFileRoundTripKeeps0600(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	home := filepath.Join(t.TempDir(), "home")
	f := NewFile(home)
	if _, err := f.Get(ctx, "NVIDIA_API_KEY"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing file: %v", err)
	}
	if err := f.Set(ctx, "NVIDIA_API_KEY", NewSecret(secretValue)); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(f.Path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", st.Mode(), err)
	}
	if d, _ := os.Stat(home); d.Mode().Perm() != 0o700 {
		t.Fatalf("home mode %v", d.Mode())
	}
	s, err := f.Get(ctx, "NVIDIA_API_KEY")
	if err != nil || s.Reveal() != secretValue {
		t.Fatalf("%v", err)
	}
	infos, _ := f.List(ctx)
	if len(infos) != 1 || infos[0].Name != "NVIDIA_API_KEY" || infos[0].CreatedAt.IsZero() {
		t.Fatalf("%+v", infos)
	}
	if b, _ := json.Marshal(infos); strings.Contains(string(b), secretValue) {
		t.Fatal("listing carries the value")
	}
	if err := f.Delete(ctx, "NVIDIA_API_KEY"); err != nil {
		t.Fatal(err)
	}
	if err := f.Delete(ctx, "NVIDIA_API_KEY"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("%v", err)
	}
	if err := f.Set(ctx, "bad name!", NewSecret("x")); err == nil {
		t.Fatal("invalid name accepted")
	}
}

func TestFileRefusesGroupOrWorldReadable(t *testing.T) {
	t.Parallel()
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		f := NewFile(t.TempDir())
		if err := os.WriteFile(f.Path, []byte(`{"version":1,"credentials":{"K":{"value":"`+secretValue+`"}}}`), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(f.Path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := f.Get(context.Background(), "K")
		var pe *PermissionError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "chmod 600 "+f.Path) || strings.Contains(err.Error(), secretValue) {
			t.Errorf("mode %o: %v", mode, err)
		}
	}
}

func TestMalformedFileErrorHasNoContent(t *testing.T) {
	t.Parallel()
	f := NewFile(t.TempDir())
	if err := os.WriteFile(f.Path, []byte(`{"credentials":{"K":"`+secretValue+`"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := f.Get(context.Background(), "K")
	if err == nil || strings.Contains(err.Error(), secretValue) || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("%v", err)
	}
}

func TestChainFallsBackToEnvironment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := Env{Lookup: func(n string) (string, bool) {
		if n == "OPENAI_API_KEY" {
			return "sk-from-env-123456", true
		}
		return "", false
	}}
	c := Chain{NewFile(t.TempDir()), env}
	s, err := c.Get(ctx, "OPENAI_API_KEY")
	if err != nil || s.Reveal() != "sk-from-env-123456" {
		t.Fatalf("%v", err)
	}
	if err := c.Set(ctx, "OPENAI_API_KEY", NewSecret("sk-from-file-654321")); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.Get(ctx, "OPENAI_API_KEY"); s.Reveal() != "sk-from-file-654321" {
		t.Fatal("the file must win over the environment")
	}
	infos, _ := c.List(ctx)
	if len(infos) != 1 || infos[0].Backend != "file" {
		t.Fatalf("%+v", infos)
	}
	_, err = c.Get(ctx, "MISSING")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "nemoclave provider add MISSING") {
		t.Fatalf("%v", err)
	}
	if err := env.Set(ctx, "X", NewSecret("y")); err == nil {
		t.Fatal("env backend must be read-only")
	}
}

// TestSecretNeverPrints covers every way a value could reach a log line,
// an error or a response by accident.
func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	s := NewSecret(secretValue)
	var logs bytes.Buffer
	lg := slog.New(slog.NewJSONHandler(&logs, nil))
	lg.Info("configured", "key", s, "struct", struct{ K Secret }{s})
	lg2 := slog.New(slog.NewTextHandler(&logs, nil))
	lg2.Info("configured", "key", s)
	j, _ := json.Marshal(map[string]any{"k": s, "p": &s})
	for _, out := range []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x", s, s, s, s, s, s), fmt.Sprintf("%v", struct{ K Secret }{s}),
		fmt.Errorf("wrapped: %v", s).Error(), string(j), logs.String(),
	} {
		if strings.Contains(out, secretValue) || strings.Contains(out, "TOPSECRET") {
			t.Errorf("value leaked: %s", out)
		}
		if !strings.Contains(out, "[REDACTED]") {
			t.Errorf("no redaction marker: %s", out)
		}
	}
}

func TestRedactor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := NewFile(t.TempDir())
	_ = f.Set(ctx, "A", NewSecret(secretValue))
	_ = f.Set(ctx, "SHORT", NewSecret("abc"))
	r, err := RedactorFor(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	got := r.Redact("upstream said: bad key " + secretValue + " (abc)")
	if got != "upstream said: bad key [REDACTED] (abc)" {
		t.Fatalf("%q", got)
	}
	var nilR *Redactor
	if nilR.Redact("x") != "x" || NewRedactor().Redact("y") != "y" {
		t.Fatal("empty redactors must pass text through")
	}
}
