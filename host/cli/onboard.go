package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/huh"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nemoclave/nemoclave/host/config"
	"github.com/nemoclave/nemoclave/host/onboard"
	"github.com/nemoclave/nemoclave/host/plugins"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// storeCredential saves a provider key in $NEMOCLAVE_HOME/credentials.json;
// the credential store (host/credentials) sets it.
var storeCredential func(home, name, value string) error

type onboardFlags struct {
	nonInteractive bool
	provider       string
	model          string
	baseURL        string
	keyEnv         string
	sandbox        string
	presets        []string
	dir            string
	cassette       string
	skipVerify     bool
}

func init() {
	Register(func(g *Globals) *cobra.Command {
		var f onboardFlags
		cmd := &cobra.Command{
			Use:   "onboard",
			Short: "Set up a provider, its key, a model and a starter blueprint",
			Long: `Asks for a model provider (NVIDIA endpoints, OpenAI, Anthropic, Ollama, vLLM,
or the offline replay demo), stores its key in $NEMOCLAVE_HOME/credentials.json
(never in the blueprint), picks a model, a sandbox name and policy presets,
writes config.yaml and a starter blueprint, and checks that the provider answers.

For scripts, --non-interactive takes everything from flags; the key comes from
the environment variable named by --api-key-env (default: the provider's own,
e.g. NVIDIA_API_KEY), never from the command line.`,
			Example: `  nemoclave onboard
  NVIDIA_API_KEY=... nemoclave onboard --non-interactive --provider nvidia --sandbox assistant --presets pypi,github
  nemoclave onboard --non-interactive --provider replay --cassette examples/quickstart/cassette.json --skip-verify`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return runOnboard(cmd, g, &f) },
		}
		fl := cmd.Flags()
		fl.BoolVar(&f.nonInteractive, "non-interactive", false, "take every answer from flags and the environment")
		fl.StringVar(&f.provider, "provider", envOr("NEMOCLAVE_PROVIDER", ""), "nvidia, openai, anthropic, ollama, vllm or replay ($NEMOCLAVE_PROVIDER)")
		fl.StringVar(&f.model, "model", envOr("NEMOCLAVE_MODEL", ""), "model name ($NEMOCLAVE_MODEL; default: the provider's first)")
		fl.StringVar(&f.baseURL, "base-url", "", "override the provider's endpoint")
		fl.StringVar(&f.keyEnv, "api-key-env", "", "environment variable holding the key (default: the provider's credential name)")
		fl.StringVar(&f.sandbox, "sandbox", envOr("NEMOCLAVE_SANDBOX", "assistant"), "sandbox name")
		fl.StringSliceVar(&f.presets, "presets", []string{"pypi"}, "policy presets (comma separated)")
		fl.StringVar(&f.dir, "dir", ".", "where to write blueprint.hcl")
		fl.StringVar(&f.cassette, "cassette", "", "cassette for the replay provider")
		fl.BoolVar(&f.skipVerify, "skip-verify", false, "do not check that the provider answers")
		return cmd
	})
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func runOnboard(cmd *cobra.Command, g *Globals, f *onboardFlags) error {
	interactive := !f.nonInteractive
	if interactive && !term.IsTerminal(int(os.Stdin.Fd())) {
		return errors.New("onboard needs a terminal; in scripts use --non-interactive with --provider (see --help)")
	}
	var key string
	var c onboard.Choices
	if interactive {
		var err error
		if c, key, err = askChoices(f); err != nil {
			return err
		}
	} else {
		p, err := onboard.Lookup(f.provider)
		if err != nil {
			return fmt.Errorf("--provider: %w", err)
		}
		c = onboard.Choices{Provider: p, Model: f.model, BaseURL: f.baseURL, Sandbox: f.sandbox, Presets: f.presets, Cassette: f.cassette}
		if c.Model == "" {
			c.Model = p.DefaultModel
		}
		if p.Credential != "" {
			name := f.keyEnv
			if name == "" {
				name = p.Credential
			}
			key = os.Getenv(name)
			if key == "" {
				return fmt.Errorf("no key: export %s (or name another variable with --api-key-env)", name)
			}
		}
	}
	if c.Cassette != "" {
		abs, err := filepath.Abs(c.Cassette)
		if err != nil {
			return err
		}
		c.Cassette = abs
	}
	if err := c.Validate(); err != nil {
		return err
	}
	dir, err := filepath.Abs(f.dir)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if key != "" {
		if storeCredential == nil {
			return errors.New("this build has no credential store; cannot save the key")
		}
		if err := storeCredential(g.Home, c.Provider.Credential, key); err != nil {
			return err
		}
		fmt.Fprintf(out, "✓ stored %s in %s (mode 0600)\n", c.Provider.Credential, filepath.Join(g.Home, "credentials.json"))
	}
	if !f.skipVerify {
		if err := verifyProvider(cmd.Context(), g, c, key); err != nil {
			return fmt.Errorf("the provider did not answer: %w (fix the key or endpoint, or rerun with --skip-verify)", err)
		}
		fmt.Fprintf(out, "✓ %s answers and lists models\n", c.Provider.Label)
	}
	src, err := onboard.Blueprint(c, dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "workspace"), 0o755); err != nil {
		return err
	}
	bpPath := filepath.Join(dir, "blueprint.hcl")
	if _, err := os.Stat(bpPath); err == nil {
		return fmt.Errorf("%s exists; choose another --dir or move it away (onboard never overwrites a blueprint)", bpPath)
	}
	if err := os.WriteFile(bpPath, src, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "✓ wrote %s\n", bpPath)
	cfg, err := config.Load(g.Home)
	if err != nil {
		cfg = &config.Config{}
	}
	cfg.Sandbox, cfg.Blueprint, cfg.Presets = c.Sandbox, bpPath, c.Presets
	cfg.Inference = config.Inference{Provider: c.Provider.ID, Model: c.Model, BaseURL: c.BaseURL}
	if err := config.Save(g.Home, cfg); err != nil {
		return err
	}
	fmt.Fprintf(out, "✓ wrote %s\n\nNext: nemoclave run %s\n", config.Path(g.Home), bpPath)
	return nil
}

func askChoices(f *onboardFlags) (onboard.Choices, string, error) {
	var c onboard.Choices
	providerID := f.provider
	opts := make([]huh.Option[string], 0, len(onboard.Providers))
	for _, p := range onboard.Providers {
		opts = append(opts, huh.NewOption(p.Label, p.ID))
	}
	if err := huh.NewSelect[string]().Title("Model provider").Options(opts...).Value(&providerID).Run(); err != nil {
		return c, "", err
	}
	p, err := onboard.Lookup(providerID)
	if err != nil {
		return c, "", err
	}
	c.Provider, c.Sandbox, c.Presets, c.Cassette = p, f.sandbox, f.presets, f.cassette
	var key string
	var groups []*huh.Group
	if p.Credential != "" {
		key = os.Getenv(p.Credential)
		groups = append(groups, huh.NewGroup(huh.NewInput().Title(p.Credential).
			Description("Stored in $NEMOCLAVE_HOME/credentials.json; only the gateway reads it.").
			EchoMode(huh.EchoModePassword).Value(&key).
			Validate(func(s string) error {
				if strings.TrimSpace(s) == "" {
					return errors.New("a key is required for " + p.Label)
				}
				return nil
			})))
	}
	if p.ID == "replay" {
		groups = append(groups, huh.NewGroup(huh.NewInput().Title("Cassette file").Value(&c.Cassette)))
	}
	models := make([]huh.Option[string], 0, len(p.Models)+1)
	for _, m := range p.Models {
		models = append(models, huh.NewOption(m, m))
	}
	c.Model = p.DefaultModel
	if len(models) > 0 {
		groups = append(groups, huh.NewGroup(huh.NewSelect[string]().Title("Model").Options(models...).Value(&c.Model)))
	} else {
		groups = append(groups, huh.NewGroup(huh.NewInput().Title("Model").Value(&c.Model)))
	}
	presets := []huh.Option[string]{}
	for _, name := range []string{"pypi", "npm", "github", "huggingface", "docker", "slack", "telegram", "discord", "jira", "outlook"} {
		presets = append(presets, huh.NewOption(name, name).Selected(slices.Contains(f.presets, name)))
	}
	groups = append(groups, huh.NewGroup(
		huh.NewInput().Title("Sandbox name").Value(&c.Sandbox).Validate(func(s string) error {
			probe := c
			probe.Sandbox = s
			if probe.Model == "" {
				probe.Model = "x"
			}
			if probe.Cassette == "" {
				probe.Cassette = "x"
			}
			return probe.Validate()
		}),
		huh.NewMultiSelect[string]().Title("Network presets the agent may use").Options(presets...).Value(&c.Presets),
	))
	if err := huh.NewForm(groups...).Run(); err != nil {
		return c, "", err
	}
	return c, strings.TrimSpace(key), nil
}

// verifyProvider launches the provider's plugin with the chosen endpoint and
// key and asks it for its models.
func verifyProvider(ctx context.Context, g *Globals, c onboard.Choices, key string) error {
	m, err := plugins.New(plugins.Options{Home: g.Home})
	if err != nil {
		return err
	}
	defer m.Close()
	cfg := map[string]any{}
	switch c.Provider.ID {
	case "replay":
		cfg["cassette"], cfg["mode"] = c.Cassette, "replay"
	default:
		cfg["base_url"] = c.BaseURL
		if c.BaseURL == "" {
			cfg["base_url"] = c.Provider.BaseURL
		}
		if key != "" {
			cfg["api_key"] = key
		}
	}
	raw, _ := json.Marshal(cfg)
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	s, err := m.Start(ctx, plugins.Spec{Source: c.Provider.Plugin, Kind: plugin.KindLLM, Name: "onboard", Config: raw})
	if err != nil {
		return err
	}
	defer s.Close()
	client, err := s.Client()
	if err != nil {
		return err
	}
	models, err := client.LLM().ListModels(ctx)
	if err != nil {
		return err
	}
	if len(models) == 0 {
		return errors.New("it lists no models")
	}
	return nil
}
