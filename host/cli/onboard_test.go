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
	if err != nil || cfg.Sandbox != "helper" || cfg.Inference.Provider != "main" || cfg.Inference.Model == "" {
		t.Fatalf("config.yaml = %+v, %v", cfg, err)
	}
	// The starter blueprint validates.
	if out, err := runCLI(t, "--home", home, "validate", filepath.Join(dir, "blueprint.hcl")); err != nil {
		t.Fatalf("starter blueprint does not validate: %v\n%s", err, out)
	}
	// The same answers again: re-run safe, the blueprint is kept.
	if out, err := runCLI(t, "--home", home, "onboard", "--non-interactive", "--provider", "nvidia",
		"--sandbox", "helper", "--presets", "pypi,github", "--dir", dir, "--skip-verify"); err != nil || !strings.Contains(out, "already this blueprint") {
		t.Fatalf("re-run with the same answers: %v\n%s", err, out)
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

// Answers that are wrong in themselves are refused before anything is
// written, each with what to do.
func TestOnboardChecksAnswersBeforeWriting(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.json")
	if err := os.WriteFile(empty, []byte(`{"version": 1, "interactions": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"unknown preset":   {[]string{"--provider", "ollama", "--presets", "pypi,pipy"}, `unknown preset "pipy"`},
		"empty cassette":   {[]string{"--provider", "replay", "--cassette", empty}, "has no interactions"},
		"missing cassette": {[]string{"--provider", "replay", "--cassette", filepath.Join(t.TempDir(), "nope.json")}, "read cassette"},
		"no cassette":      {[]string{"--provider", "replay"}, "needs a cassette"},
		"bad base URL":     {[]string{"--provider", "vllm", "--base-url", "localhost:8000"}, "scheme and host"},
	} {
		t.Run(name, func(t *testing.T) {
			home, dir := t.TempDir(), t.TempDir()
			args := append([]string{"--home", home, "onboard", "--non-interactive", "--dir", dir, "--skip-verify"}, tc.args...)
			_, err := runCLI(t, args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			for _, p := range []string{filepath.Join(dir, "blueprint.hcl"), config.Path(home), filepath.Join(home, "credentials.json")} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("a refused onboard wrote %s", p)
				}
			}
		})
	}
}

// --base-url and --model land in the blueprint, and config.yaml names the
// provider as the blueprint does.
func TestOnboardHonoursBaseURLAndModel(t *testing.T) {
	home, dir := t.TempDir(), t.TempDir()
	out, err := runCLI(t, "--home", home, "onboard", "--non-interactive", "--provider", "nim",
		"--base-url", "http://10.1.2.3:9000/v1", "--model", "meta/llama-3.3-70b-instruct", "--dir", dir, "--skip-verify")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	bp, _ := os.ReadFile(filepath.Join(dir, "blueprint.hcl"))
	if !strings.Contains(string(bp), `base_url = "http://10.1.2.3:9000/v1"`) || !strings.Contains(string(bp), `model    = "meta/llama-3.3-70b-instruct"`) {
		t.Fatalf("flags not in the blueprint:\n%s", bp)
	}
	cfg, err := config.Load(home)
	if err != nil || cfg.Inference != (config.Inference{Provider: "main", Model: "meta/llama-3.3-70b-instruct", BaseURL: "http://10.1.2.3:9000/v1"}) {
		t.Fatalf("config.yaml = %+v, %v", cfg, err)
	}
}
