package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// Config is config.yaml. Unknown keys are an error, so a typo is caught.
type Config struct {
	// Sandbox is the default sandbox name for onboarded blueprints.
	Sandbox   string    `yaml:"sandbox,omitempty" json:"sandbox,omitempty"`
	Inference Inference `yaml:"inference,omitempty" json:"inference"`
	// Blueprint is the blueprint onboard wrote, run by `nemoclave run`
	// without arguments.
	Blueprint string `yaml:"blueprint,omitempty" json:"blueprint,omitempty"`
	// Presets onboard enabled.
	Presets []string `yaml:"presets,omitempty" json:"presets,omitempty"`
}

// Inference is the default provider and model.
type Inference struct {
	// Provider is a provider name known to onboard (nvidia, openai,
	// anthropic, ollama, vllm, replay).
	Provider string `yaml:"provider,omitempty" json:"provider,omitempty"`
	Model    string `yaml:"model,omitempty" json:"model,omitempty"`
	// BaseURL overrides the provider's default endpoint.
	BaseURL string `yaml:"base_url,omitempty" json:"base_url,omitempty"`
}

// Path is config.yaml under home.
func Path(home string) string { return filepath.Join(home, "config.yaml") }

// Load reads config.yaml; a missing file is the zero Config.
func Load(home string) (*Config, error) {
	b, err := os.ReadFile(Path(home))
	if errors.Is(err, os.ErrNotExist) {
		return &Config{}, nil
	}
	if err != nil {
		return nil, err
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return &Config{}, nil // empty file
		}
		return nil, fmt.Errorf("%s: %w (fix the file or run `nemoclave onboard` to rewrite it)", Path(home), err)
	}
	return &c, nil
}

// Save writes config.yaml atomically (mode 0600).
func Save(home string, c *Config) error {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	b = append([]byte("# nemoclave defaults; written by `nemoclave onboard` and `nemoclave inference set`.\n"), b...)
	tmp, err := os.CreateTemp(home, ".config-*.yaml")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), Path(home))
}
