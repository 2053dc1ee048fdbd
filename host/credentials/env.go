package credentials

import (
	"context"
	"fmt"
	"os"
	"sort"
)

// KnownEnvNames are the provider key variables Env lists when they are
// set. Get reads any name; List shows only these, so a listing never
// enumerates unrelated environment variables.
var KnownEnvNames = []string{
	"ANTHROPIC_API_KEY", "AZURE_OPENAI_API_KEY", "GEMINI_API_KEY", "GROQ_API_KEY", "MISTRAL_API_KEY",
	"NGC_API_KEY", "NVIDIA_API_KEY", "OPENAI_API_KEY", "OPENROUTER_API_KEY", "TOGETHER_API_KEY",
}

// Env is the read-only environment backend: credential("NAME") falls back
// to $NAME of the daemon's environment.
type Env struct {
	// Lookup replaces os.LookupEnv (tests).
	Lookup func(string) (string, bool)
}

// Name is "env".
func (Env) Name() string { return "env" }

func (e Env) lookup(name string) (string, bool) {
	if e.Lookup != nil {
		return e.Lookup(name)
	}
	return os.LookupEnv(name)
}

// Get reads $name.
func (e Env) Get(_ context.Context, name string) (Secret, error) {
	if v, ok := e.lookup(name); ok && v != "" {
		return NewSecret(v), nil
	}
	return Secret{}, fmt.Errorf("%w: $%s is not set", ErrNotFound, name)
}

// List names the KnownEnvNames that are set.
func (e Env) List(context.Context) ([]Info, error) {
	var out []Info
	for _, n := range KnownEnvNames {
		if v, ok := e.lookup(n); ok && v != "" {
			out = append(out, Info{Name: n, Backend: "env"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Set refuses: the environment is read-only here.
func (Env) Set(context.Context, string, Secret) error {
	return fmt.Errorf("the environment backend is read-only; store credentials with nemoclave provider add")
}

// Delete refuses: the environment is read-only here.
func (Env) Delete(_ context.Context, name string) error {
	return fmt.Errorf("%s comes from the environment; unset $%s in the daemon's environment to remove it", name, name)
}
