package blueprints

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/nemoclave/nemoclave/policy"
)

// Blueprint is an evaluated blueprint: every variable resolved, every
// reference checked, every plugin config decoded and validated, every
// policy merged with its presets. The host composes a run from it; the CLI
// prints it as the plan. Slices are sorted by name so output is stable.
type Blueprint struct {
	// Dir is the directory relative paths were resolved against.
	Dir string `json:"dir"`
	// Files are the files the blueprint was read from.
	Files []string `json:"files"`
	// Settings is the nemoclave block (version and plugin requirements).
	Settings Settings `json:"nemoclave"`
	// Variables are the final variable values; sensitive ones are redacted.
	Variables []Variable `json:"variables,omitempty"`
	// Plugins are the plugins to launch, ordered by kind then name.
	Plugins []*Plugin `json:"plugins"`
	// Inference holds the model routes; nil when the blueprint has no
	// inference block.
	Inference *Inference `json:"inference,omitempty"`
	// Policies are the policy blocks, presets merged, by name.
	Policies []*policy.Policy `json:"policies"`
	// Sandboxes carry their own effective policy.
	Sandboxes []*Sandbox `json:"sandboxes"`
	Agents    []*Agent   `json:"agents"`
}

// Plugin returns the plugin of the given kind and name, or nil.
func (b *Blueprint) Plugin(kind, name string) *Plugin {
	for _, p := range b.Plugins {
		if p.Kind == kind && p.Name == name {
			return p
		}
	}
	return nil
}

// Policy returns the named policy, or nil.
func (b *Blueprint) Policy(name string) *policy.Policy {
	for _, p := range b.Policies {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Sandbox returns the named sandbox, or nil.
func (b *Blueprint) Sandbox(name string) *Sandbox {
	for _, s := range b.Sandboxes {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Agent returns the named agent, or nil.
func (b *Blueprint) Agent(name string) *Agent {
	for _, a := range b.Agents {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// Options are the inputs that do not come from the blueprint files.
type Options struct {
	// Vars are -var name=value pairs, highest precedence. Values are
	// taken literally for string variables and parsed as HCL expressions
	// otherwise.
	Vars map[string]string
	// VarFiles are -var-file paths (HCL attributes, or .json), applied in
	// order, after NEMOCLAVE_VAR_<name> and before Vars.
	VarFiles []string
	// LookupEnv reads the environment for NEMOCLAVE_VAR_<name> and env();
	// nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Schemas answers for plugin config schemas; nil means
	// BuiltinSchemaSource(), the offline fallback.
	Schemas SchemaSource
	// Host answers for the sandbox drivers and credentials of the daemon
	// that would run the blueprint; nil skips those checks (formatting,
	// tests of the language alone).
	Host Host
	// PresetDirs hold user policy presets (*.hcl), added to the builtin
	// ones. A user preset may not reuse a builtin preset's name.
	PresetDirs []string
	// DaemonHome is $NEMOCLAVE_HOME. A policy whose read_only or
	// read_write paths expose it (directly or through a parent) is an
	// error (F19); empty skips the check.
	DaemonHome string
	// Root confines an uploaded blueprint (a remote caller's) to its
	// directory on the daemon's host: the blueprint and its var files
	// must be inside it, file() and templatefile() read only inside it
	// (relative paths; absolute paths, ".." escapes and symbolic links out
	// are refused), a sandbox's workspace must be inside it, and plugins
	// from a path (a binary on the daemon's host) are refused. Empty
	// means no confinement (the daemon's own user).
	Root string
}

// Loader parses and evaluates blueprints. It keeps every file it parsed
// (blueprint files, var files, presets) so diagnostics can be rendered with
// snippets: pass Files() to hcl.NewDiagnosticTextWriter.
type Loader struct {
	parser *hclparse.Parser
	opts   Options
}

// NewLoader returns a Loader with the given options.
func NewLoader(opts Options) *Loader {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.Schemas == nil {
		opts.Schemas = BuiltinSchemaSource()
	}
	return &Loader{parser: hclparse.NewParser(), opts: opts}
}

// Files returns every file parsed so far, by name.
func (l *Loader) Files() map[string]*hcl.File { return l.parser.Files() }

// Load reads and evaluates the blueprint at path (a file or a directory).
// The Blueprint is nil when there are errors.
func (l *Loader) Load(ctx context.Context, path string) (*Blueprint, hcl.Diagnostics) {
	if root := l.opts.Root; root != "" {
		for _, p := range append([]string{path}, l.opts.VarFiles...) {
			if _, ok := InsideRoot(root, p); !ok || !filepath.IsAbs(p) {
				return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Outside the upload",
					Detail: fmt.Sprintf("%s is not inside the uploaded blueprint's directory %s; an uploaded blueprint and its var files must be sent with it.", p, root)}}
			}
		}
	}
	dir, names, diags := blueprintFiles(path)
	if diags.HasErrors() {
		return nil, diags
	}
	srcs := make(map[string][]byte, len(names))
	for _, n := range names {
		b, err := ReadBounded(n, MaxFileBytes)
		if err != nil {
			return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read blueprint file", Detail: err.Error()}}
		}
		srcs[n] = b
	}
	return l.LoadSources(ctx, dir, srcs)
}

// LoadSources evaluates a blueprint given as file name → contents; dir is
// where relative paths resolve. Tests and the fuzzer use it directly.
func (l *Loader) LoadSources(ctx context.Context, dir string, srcs map[string][]byte) (*Blueprint, hcl.Diagnostics) {
	names := make([]string, 0, len(srcs))
	for n := range srcs {
		names = append(names, n)
	}
	sort.Strings(names)
	var diags hcl.Diagnostics
	var files []*hcl.File
	for _, n := range names {
		f, d := l.parseSource(n, srcs[n])
		diags = append(diags, d...)
		if f != nil {
			files = append(files, f)
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	e := newEvaluator(ctx, l, dir)
	bp := e.run(files)
	bp.Files = names
	diags = append(diags, e.diags...)
	if diags.HasErrors() {
		return nil, diags
	}
	return bp, diags
}
