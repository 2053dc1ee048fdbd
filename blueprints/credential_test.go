package blueprints

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestCredentialsStayPlaceholdersUntilResolved(t *testing.T) {
	t.Parallel()
	bp := mustLoad(t, `
plugin "llm" "nim" {
  source = "builtin/llm-openai"
  config {
    api_key = credential("NVIDIA_API_KEY")
  }
}
`, Options{})
	p := bp.Plugin("llm", "nim")
	if !strings.Contains(string(p.Config), `"api_key":{"credential":"NVIDIA_API_KEY"}`) {
		t.Fatalf("config does not carry the placeholder: %s", p.Config)
	}
	if len(p.Credentials) != 1 || p.Credentials[0].Name != "NVIDIA_API_KEY" || p.Credentials[0].Path[0] != "api_key" {
		t.Fatalf("credentials = %+v", p.Credentials)
	}
	resolved, err := ResolveCredentials(p.Config, p.Credentials, func(name string) (string, error) {
		return "secret-for-" + name, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(resolved, &got); err != nil {
		t.Fatal(err)
	}
	if got["api_key"] != "secret-for-NVIDIA_API_KEY" {
		t.Fatalf("resolved config %s", resolved)
	}
	if strings.Contains(string(p.Config), "secret") || strings.Contains(string(p.DisplayConfig), "secret") {
		t.Fatal("resolving modified the blueprint's config")
	}
}

func TestResolveCredentialsErrors(t *testing.T) {
	t.Parallel()
	cfg := json.RawMessage(`{"a":{"credential":"X"},"list":[{"k":{"credential":"Y"}}],"plain":"v"}`)
	ok := func(string) (string, error) { return "s", nil }
	if out, err := ResolveCredentials(cfg, []CredentialRef{{Path: []string{"list", "0", "k"}, Name: "Y"}}, ok); err != nil || !strings.Contains(string(out), `"k":"s"`) {
		t.Fatalf("nested path: %s, %v", out, err)
	}
	cases := map[string]struct {
		refs   []CredentialRef
		lookup func(string) (string, error)
	}{
		"not a placeholder": {[]CredentialRef{{Path: []string{"plain"}, Name: "X"}}, ok},
		"missing path":      {[]CredentialRef{{Path: []string{"nope"}, Name: "X"}}, ok},
		"bad index":         {[]CredentialRef{{Path: []string{"list", "7", "k"}, Name: "Y"}}, ok},
		"store fails":       {[]CredentialRef{{Path: []string{"a"}, Name: "X"}}, func(string) (string, error) { return "", errors.New("no such credential") }},
	}
	for name, c := range cases {
		if _, err := ResolveCredentials(cfg, c.refs, c.lookup); err == nil {
			t.Errorf("%s: expected an error", name)
		}
	}
}
