package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/host/config"
)

func TestOnboardNonInteractive(t *testing.T) {
	home, dir := t.TempDir(), t.TempDir()
	t.Setenv("NVIDIA_API_KEY", "nvapi-onboard-test-0123456789")
	out, err := runCLI(t, "--home", home, "onboard", "--non-interactive", "--provider", "nvidia",
		"--sandbox", "helper", "--presets", "pypi,github", "--dir", dir, "--skip-verify")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	bp, err := os.ReadFile(filepath.Join(dir, "blueprint.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(bp), "nvapi-onboard-test") || !strings.Contains(string(bp), `credential("NVIDIA_API_KEY")`) {
		t.Fatalf("the key must be referenced, never written into the blueprint:\n%s", bp)
	}
	st, err := os.Stat(filepath.Join(home, "credentials.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials.json: %v %v", err, st)
	}
	raw, _ := os.ReadFile(filepath.Join(home, "credentials.json"))
	if !strings.Contains(string(raw), "nvapi-onboard-test-0123456789") {
		t.Fatal("the key was not stored")
	}
	if strings.Contains(out, "nvapi-onboard-test") {
		t.Fatalf("onboard printed the key:\n%s", out)
	}
	cfg, err := config.Load(home)
	if err != nil || cfg.Sandbox != "helper" || cfg.Inference.Provider != "nvidia" || cfg.Inference.Model == "" {
		t.Fatalf("config.yaml = %+v, %v", cfg, err)
	}
	// The starter blueprint validates.
	if out, err := runCLI(t, "--home", home, "validate", filepath.Join(dir, "blueprint.hcl")); err != nil {
		t.Fatalf("starter blueprint does not validate: %v\n%s", err, out)
	}
	// A second onboard never overwrites it.
	if _, err := runCLI(t, "--home", home, "onboard", "--non-interactive", "--provider", "nvidia", "--dir", dir, "--skip-verify"); err == nil || !strings.Contains(err.Error(), "never overwrites") {
		t.Fatalf("overwrite: %v", err)
	}
}

func TestOnboardSaysWhatIsMissing(t *testing.T) {
	home := t.TempDir()
	t.Setenv("OPENAI_API_KEY", "")
	_, err := runCLI(t, "--home", home, "onboard", "--non-interactive", "--provider", "openai", "--dir", t.TempDir(), "--skip-verify")
	if err == nil || !strings.Contains(err.Error(), "export OPENAI_API_KEY") {
		t.Fatalf("missing key: %v", err)
	}
	_, err = runCLI(t, "--home", home, "onboard", "--non-interactive", "--provider", "gpt5")
	if err == nil || !strings.Contains(err.Error(), "nvidia") {
		t.Fatalf("unknown provider: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, "credentials.json")); err == nil {
		t.Fatal("a failed onboard wrote credentials")
	}
	var cfg map[string]any
	if b, err := os.ReadFile(config.Path(home)); err == nil {
		_ = json.Unmarshal(b, &cfg)
		t.Fatalf("a failed onboard wrote config.yaml: %s", b)
	}
}
