package config

import (
	"os"
	"strings"
	"testing"
)

func TestRoundTripAndStrictness(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	c, err := Load(home)
	if err != nil || c.Inference.Provider != "" {
		t.Fatalf("missing file: %+v %v", c, err)
	}
	c.Sandbox, c.Inference = "assistant", Inference{Provider: "nvidia", Model: "nvidia/nemotron"}
	if err := Save(home, c); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(Path(home)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	got, err := Load(home)
	if err != nil || got.Sandbox != "assistant" || got.Inference.Model != "nvidia/nemotron" {
		t.Fatalf("%+v %v", got, err)
	}
	if err := os.WriteFile(Path(home), []byte("sandbx: typo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(home); err == nil || !strings.Contains(err.Error(), "onboard") {
		t.Fatalf("unknown key accepted: %v", err)
	}
	if err := os.WriteFile(Path(home), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(home); err != nil {
		t.Fatalf("empty file: %v", err)
	}
}
