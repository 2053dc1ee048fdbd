package onboard

import (
	"bytes"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"github.com/nemoclave/nemoclave/plugins/llm-replay/replayplugin"
)

// Choices are the wizard's answers.
type Choices struct {
	Provider Provider
	Model    string
	// BaseURL overrides Provider.BaseURL.
	BaseURL string
	Sandbox string
	Presets []string
	// Cassette is the replay provider's cassette path.
	Cassette string
}

var sandboxName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,47}$`)

// Validate checks the answers before anything is written.
func (c Choices) Validate() error {
	if !sandboxName.MatchString(c.Sandbox) {
		return fmt.Errorf("sandbox name %q: use lower-case letters, digits and '-', starting with a letter, at most 48 characters", c.Sandbox)
	}
	if c.Model == "" {
		return fmt.Errorf("no model chosen for %s", c.Provider.Label)
	}
	if c.Provider.ID == "replay" && c.Cassette == "" {
		return fmt.Errorf("the replay provider needs a cassette (--cassette path/to/cassette.json)")
	}
	if c.BaseURL != "" {
		if err := checkURL(c.BaseURL); err != nil {
			return err
		}
	}
	return nil
}

// Check is Validate plus what needs the machine: the presets exist among
// known (the builtin ones and any in the user's preset directory) and the
// replay cassette is a readable cassette with answers. onboard runs it
// before it writes anything, so a typo never leaves a blueprint that
// `validate` then rejects.
func (c Choices) Check(known []string) error {
	if err := c.Validate(); err != nil {
		return err
	}
	for _, p := range c.Presets {
		if !slices.Contains(known, p) {
			return fmt.Errorf("unknown preset %q: choose from %s (or add %s.hcl to $NEMOCLAVE_HOME/presets)", p, strings.Join(known, ", "), p)
		}
	}
	if c.Provider.ID == "replay" {
		cas, err := replayplugin.LoadCassette(c.Cassette, false)
		if err != nil {
			return err
		}
		if len(cas.Interactions) == 0 {
			return fmt.Errorf("cassette %s has no interactions, so the replay provider could answer nothing (examples/quickstart/cassette.json is one that works)", c.Cassette)
		}
	}
	return nil
}

// checkURL accepts an http(s) endpoint with a host.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("base URL %q: give the provider's API root with scheme and host, e.g. http://127.0.0.1:11434/v1", raw)
	}
	return nil
}

func (c Choices) baseURL() string {
	if c.BaseURL != "" {
		return c.BaseURL
	}
	return c.Provider.BaseURL
}

var starter = template.Must(template.New("bp").Funcs(template.FuncMap{"q": func(s string) string { return fmt.Sprintf("%q", s) }}).Parse(
	`# Starter blueprint written by ` + "`nemoclave onboard`" + `. Run it with
#   nemoclave run {{.Dir}}
# and edit freely: ` + "`nemoclave validate`" + ` checks it, docs/blueprints.md explains it.

plugin "llm" "main" {
  source = {{q .Provider.Plugin}}
  config {
{{- if eq .Provider.ID "replay"}}
    cassette = {{q .Cassette}}
    mode     = "replay"
{{- else}}
    base_url = {{q .BaseURL}}
{{- if .Provider.Credential}}
    api_key  = credential({{q .Provider.Credential}})
{{- end}}
{{- end}}
  }
}

plugin "embeddings" "local" {
  source = "builtin/embeddings-hash"
}

plugin "memory" "default" {
  source = "builtin/memory-sqlite"
  config {
    embeddings = plugin.embeddings.local
  }
}

plugin "tools" "files" {
  source = "builtin/tools-files"
  config {
    root = "${path.blueprint}/workspace"
  }
}

inference {
  default = "default"
  model "default" {
    provider = plugin.llm.main
    model    = {{q .Model}}
  }
}

policy {{q .Sandbox}} {
  presets = [{{.PresetList}}]
  filesystem {
    read_only  = ["/usr", "/lib", "/lib64", "/bin", "/etc"]
    read_write = ["/workspace", "/tmp"]
    protected  = [".git/hooks", ".git/config"]
  }
  unknown_hosts = "ask"
}

sandbox {{q .Sandbox}} {
  driver    = "local"
  policy    = policy.{{.Sandbox}}
  workspace = "./workspace"
  resources {
    cpus   = 1
    memory = "2GiB"
    pids   = 512
  }
}

agent "assistant" {
  sandbox = sandbox.{{.Sandbox}}
  command = ["nemoclave", "agent"]
  memory  = plugin.memory.default
  tools   = [plugin.tools.files]
}
`))

// Blueprint renders the starter blueprint for dir.
func Blueprint(c Choices, dir string) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	quoted := make([]string, len(c.Presets))
	for i, p := range c.Presets {
		quoted[i] = fmt.Sprintf("%q", p)
	}
	var b bytes.Buffer
	err := starter.Execute(&b, struct {
		Choices
		BaseURL, Dir, PresetList string
	}{c, c.baseURL(), dir, strings.Join(quoted, ", ")})
	return b.Bytes(), err
}
