package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/huh"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nemoclave/nemoclave/blueprints"
	"github.com/nemoclave/nemoclave/host/config"
	"github.com/nemoclave/nemoclave/host/credentials"
	"github.com/nemoclave/nemoclave/host/onboard"
	"github.com/nemoclave/nemoclave/host/plugins"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// storeCredential saves a provider key in $NEMOCLAVE_HOME/credentials.json.
func storeCredential(home, name, value string) error {
	return credentials.NewFile(home).Set(context.Background(), name, credentials.NewSecret(value))
}

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

func newOnboardCmd(g *Globals) *cobra.Command {
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
	fl.StringVar(&f.provider, "provider", envOr("NEMOCLAVE_PROVIDER", ""), "nvidia, openai, anthropic, ollama, vllm, nim or replay ($NEMOCLAVE_PROVIDER)")
	fl.StringVar(&f.model, "model", envOr("NEMOCLAVE_MODEL", ""), "model name ($NEMOCLAVE_MODEL; default: the provider's first)")
	fl.StringVar(&f.baseURL, "base-url", "", "the provider's API root (self-hosted ollama, vllm, nim: where your server listens)")
	fl.StringVar(&f.keyEnv, "api-key-env", "", "environment variable holding the key (default: the provider's credential name)")
	fl.StringVar(&f.sandbox, "sandbox", envOr("NEMOCLAVE_SANDBOX", "assistant"), "sandbox name")
	fl.StringSliceVar(&f.presets, "presets", []string{"pypi"}, "policy presets (comma separated)")
	fl.StringVar(&f.dir, "dir", ".", "where to write blueprint.hcl")
	fl.StringVar(&f.cassette, "cassette", "", "cassette for the replay provider")
	fl.BoolVar(&f.skipVerify, "skip-verify", false, "do not check that the provider answers")
	return cmd
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
	known, err := knownPresets(g.Home)
	if err != nil {
		return err
	}
	var key string
	var c onboard.Choices
	if interactive {
		if c, key, err = askChoices(f, onboard.Choices{}); err != nil {
			return err
		}
	} else if c, key, err = flagChoices(f); err != nil {
		return err
	}
	out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
	// Everything is checked before anything is written: a failed onboard
	// leaves no key, no blueprint and no config.yaml behind.
	for {
		if err := absCassette(&c); err != nil {
			return err
		}
		err := c.Check(known)
		if err == nil && !f.skipVerify {
			err = checkProvider(cmd.Context(), g, errw, c, key)
			if err == nil {
				fmt.Fprintf(out, "✓ %s answers and lists model %s\n", c.Provider.Label, c.Model)
			}
		}
		if err == nil {
			break
		}
		if !interactive {
			return fmt.Errorf("%w; nothing was written", err)
		}
		next, aerr := askAfterFailure(err)
		if aerr != nil {
			return aerr
		}
		switch next {
		case "retry":
		case "edit":
			if c, key, err = askChoices(f, c); err != nil {
				return err
			}
		case "skip":
			if cerr := c.Check(known); cerr != nil {
				fmt.Fprintf(errw, "✗ %v\n", cerr)
				continue
			}
			fmt.Fprintln(errw, "! writing without the provider check; `nemoclave run` fails at \"launch plugins\" if it still does not answer")
			f.skipVerify = true
		default:
			return errors.New("onboard stopped; nothing was written")
		}
	}
	return writeOnboard(out, g, c, key, f.dir)
}

// errNotVerified marks a provider check failure (as opposed to an answer
// that is invalid in itself).
var errNotVerified = errors.New("the provider check failed")

// flagChoices takes the answers from flags and the environment.
func flagChoices(f *onboardFlags) (onboard.Choices, string, error) {
	p, err := onboard.Lookup(f.provider)
	if err != nil {
		return onboard.Choices{}, "", fmt.Errorf("--provider: %w", err)
	}
	c := onboard.Choices{Provider: p, Model: f.model, BaseURL: f.baseURL, Sandbox: f.sandbox, Presets: f.presets, Cassette: f.cassette}
	if c.Model == "" {
		c.Model = p.DefaultModel
	}
	if p.Credential == "" {
		return c, "", nil
	}
	name := f.keyEnv
	if name == "" {
		name = p.Credential
	}
	key := strings.TrimSpace(os.Getenv(name))
	if key == "" {
		return c, "", fmt.Errorf("no key: export %s (or name another variable with --api-key-env)", name)
	}
	return c, key, nil
}

func absCassette(c *onboard.Choices) error {
	if c.Cassette == "" {
		return nil
	}
	abs, err := filepath.Abs(c.Cassette)
	if err != nil {
		return err
	}
	c.Cassette = abs
	return nil
}

// knownPresets are the builtin presets and those in $NEMOCLAVE_HOME/presets.
func knownPresets(home string) ([]string, error) {
	var dirs []string
	if st, err := os.Stat(filepath.Join(home, "presets")); err == nil && st.IsDir() {
		dirs = []string{filepath.Join(home, "presets")}
	}
	l := blueprints.NewLoader(blueprints.Options{})
	presets, diags := l.Presets(dirs)
	if diags.HasErrors() {
		return nil, fmt.Errorf("read the policy presets: %s", blueprints.FormatDiagnostics(l.Files(), diags, 100))
	}
	names := make([]string, 0, len(presets))
	for _, p := range presets {
		names = append(names, p.Name)
	}
	return names, nil
}

// checkProvider runs verifyProvider behind a spinner that says why it
// waits, and checks that the chosen model is one the provider lists.
func checkProvider(ctx context.Context, g *Globals, errw io.Writer, c onboard.Choices, key string) error {
	where := c.BaseURL
	if where == "" {
		where = c.Provider.BaseURL
	}
	if c.Provider.ID == "replay" {
		where = c.Cassette
	}
	sp := startSpinner(errw, fmt.Sprintf("checking that %s answers at %s (starting its plugin and listing models; up to 20 s)", c.Provider.Label, where))
	models, err := verifyProvider(ctx, g, c, key)
	sp.Stop()
	if err != nil {
		hint := "fix the key or the endpoint"
		if c.Provider.SelfHosted {
			hint = "start the server, or give its URL with --base-url"
		}
		return fmt.Errorf("%w: %s at %s did not answer: %v (%s, or rerun with --skip-verify)", errNotVerified, c.Provider.Label, where, err, hint)
	}
	for _, m := range models {
		// Ollama lists "llama3.1:latest" for "llama3.1".
		if m == c.Model || strings.TrimSuffix(m, ":latest") == c.Model {
			return nil
		}
	}
	if len(models) > 15 {
		models = append(models[:15], fmt.Sprintf("… %d more", len(models)-15))
	}
	return fmt.Errorf("%w: %s does not list model %q; it lists: %s (choose one with --model)", errNotVerified, c.Provider.Label, c.Model, strings.Join(models, ", "))
}

// askAfterFailure keeps the answers and asks what to do next.
func askAfterFailure(cause error) (string, error) {
	next := "retry"
	err := huh.NewSelect[string]().Title("✗ "+cause.Error()).Options(
		huh.NewOption("Try the check again", "retry"),
		huh.NewOption("Change my answers (they are kept)", "edit"),
		huh.NewOption("Write the blueprint without the check", "skip"),
		huh.NewOption("Quit without writing anything", "quit"),
	).Value(&next).Run()
	return next, err
}

// writeOnboard stores the key, writes the blueprint and config.yaml. A
// re-run with the same answers finds the same blueprint and carries on; a
// different blueprint in the way is never overwritten.
func writeOnboard(out io.Writer, g *Globals, c onboard.Choices, key, dirFlag string) error {
	dir, err := filepath.Abs(dirFlag)
	if err != nil {
		return err
	}
	src, err := onboard.Blueprint(c, dir)
	if err != nil {
		return err
	}
	bpPath := filepath.Join(dir, "blueprint.hcl")
	existing, err := os.ReadFile(bpPath)
	same := err == nil && bytes.Equal(existing, src)
	if err == nil && !same {
		return fmt.Errorf("%s exists with other contents; choose another --dir or move it away (onboard never overwrites a blueprint); nothing was written", bpPath)
	}
	if key != "" {
		if err := storeCredential(g.Home, c.Provider.Credential, key); err != nil {
			return err
		}
		fmt.Fprintf(out, "✓ stored %s in %s (mode 0600)\n", c.Provider.Credential, filepath.Join(g.Home, "credentials.json"))
	}
	if err := os.MkdirAll(filepath.Join(dir, "workspace"), 0o755); err != nil {
		return err
	}
	if same {
		fmt.Fprintf(out, "✓ %s is already this blueprint\n", bpPath)
	} else {
		if err := os.WriteFile(bpPath, src, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(out, "✓ wrote %s\n", bpPath)
	}
	cfg, err := config.Load(g.Home)
	if err != nil {
		cfg = &config.Config{}
	}
	cfg.Sandbox, cfg.Blueprint, cfg.Presets = c.Sandbox, bpPath, c.Presets
	// The provider is named as the blueprint names it (plugin "llm"
	// "main"), the name `inference set` and new runs match on.
	cfg.Inference = config.Inference{Provider: "main", Model: c.Model, BaseURL: c.BaseURL}
	if err := config.Save(g.Home, cfg); err != nil {
		return err
	}
	fmt.Fprintf(out, "✓ wrote %s\n\nNext: nemoclave run %s\n", config.Path(g.Home), bpPath)
	return nil
}

// askChoices runs the wizard; prev (after a failed check) and the flags
// prefill the answers.
func askChoices(f *onboardFlags, prev onboard.Choices) (onboard.Choices, string, error) {
	c := prev
	providerID := f.provider
	if prev.Provider.ID != "" {
		providerID = prev.Provider.ID
	}
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
	if prev.Provider.ID != p.ID {
		c = onboard.Choices{Sandbox: f.sandbox, Presets: f.presets, Cassette: f.cassette, Model: f.model, BaseURL: f.baseURL}
	}
	c.Provider = p
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
	if p.SelfHosted || c.BaseURL != "" {
		if c.BaseURL == "" {
			c.BaseURL = p.BaseURL
		}
		groups = append(groups, huh.NewGroup(huh.NewInput().Title("Server URL").
			Description("The OpenAI-compatible API root of your "+p.Label+" server.").Value(&c.BaseURL).
			Validate(func(s string) error {
				probe := onboard.Choices{Provider: p, Model: "x", Sandbox: "x", BaseURL: s}
				return probe.Validate()
			})))
	}
	if p.ID == "replay" {
		groups = append(groups, huh.NewGroup(huh.NewInput().Title("Cassette file").Value(&c.Cassette)))
	}
	if c.Model == "" {
		c.Model = p.DefaultModel
	}
	if len(p.Models) > 0 && slices.Contains(p.Models, c.Model) {
		models := make([]huh.Option[string], 0, len(p.Models))
		for _, m := range p.Models {
			models = append(models, huh.NewOption(m, m))
		}
		groups = append(groups, huh.NewGroup(huh.NewSelect[string]().Title("Model").Options(models...).Value(&c.Model)))
	} else {
		groups = append(groups, huh.NewGroup(huh.NewInput().Title("Model").Value(&c.Model)))
	}
	presets := []huh.Option[string]{}
	for _, name := range []string{"pypi", "npm", "github", "huggingface", "docker", "slack", "telegram", "discord", "jira", "outlook"} {
		presets = append(presets, huh.NewOption(name, name).Selected(slices.Contains(c.Presets, name)))
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
func verifyProvider(ctx context.Context, g *Globals, c onboard.Choices, key string) ([]string, error) {
	m, err := plugins.New(plugins.Options{Home: g.Home})
	if err != nil {
		return nil, err
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
		return nil, err
	}
	defer s.Close()
	client, err := s.Client()
	if err != nil {
		return nil, err
	}
	models, err := client.LLM().ListModels(ctx)
	if err != nil {
		return nil, err
	}
	if len(models) == 0 {
		return nil, errors.New("it lists no models")
	}
	ids := make([]string, len(models))
	for i, m := range models {
		ids[i] = m.ID
	}
	return ids, nil
}
