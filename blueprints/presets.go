package blueprints

import (
	"context"
	"embed"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/nemoclave/nemoclave/policy"
)

// builtinPresets are the presets shipped with nemoclave, one file each,
// named after the preset. Each file's header comment says exactly what it
// allows; docs/policies.md repeats it.
//
//go:embed presets/*.hcl
var builtinPresets embed.FS

// builtinPresetPrefix names embedded preset files in diagnostics.
const builtinPresetPrefix = "<builtin>/"

// Preset is a named, reusable set of network rules a policy pulls in with
// presets = ["name"].
type Preset struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// File is where it was defined (<builtin>/presets/pypi.hcl or a path).
	File    string               `json:"file"`
	Builtin bool                 `json:"builtin"`
	Network []policy.NetworkRule `json:"network"`
	ranges  [][]endpointRange
}

var presetFileSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "preset", LabelNames: []string{"name"}}}}

var presetSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "description", Required: true}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "network", LabelNames: []string{"name"}}},
}

// Presets returns every preset: the builtin ones and those in dirs, sorted
// by name. Diagnostics carry ranges into the preset files (see Files).
func (l *Loader) Presets(dirs []string) ([]*Preset, hcl.Diagnostics) {
	withDirs := &Loader{parser: l.parser, opts: l.opts}
	withDirs.opts.PresetDirs = dirs
	e := newEvaluator(context.Background(), withDirs, ".")
	e.decl = &declarations{}
	m := e.loadPresets()
	out := make([]*Preset, 0, len(m))
	for _, name := range sortedKeys(m) {
		out = append(out, m[name])
	}
	return out, e.diags
}

// loadPresets reads the builtin presets and the user's preset dirs.
func (e *evaluator) loadPresets() map[string]*Preset {
	out := map[string]*Preset{}
	entries, _ := builtinPresets.ReadDir("presets")
	for _, ent := range entries {
		src, err := builtinPresets.ReadFile("presets/" + ent.Name())
		if err != nil {
			continue
		}
		e.loadPresetFile(builtinPresetPrefix+"presets/"+ent.Name(), src, true, out)
	}
	for _, dir := range e.loader.opts.PresetDirs {
		names, err := os.ReadDir(dir)
		if err != nil {
			e.errorf(nil, "Cannot read preset directory", "%v. Check --preset-dir.", err)
			continue
		}
		sort.Slice(names, func(i, j int) bool { return names[i].Name() < names[j].Name() })
		for _, ent := range names {
			if ent.IsDir() || !strings.HasSuffix(ent.Name(), extHCL) {
				continue
			}
			p := filepath.Join(dir, ent.Name())
			src, err := os.ReadFile(p)
			if err != nil {
				e.errorf(nil, "Cannot read preset", "%v", err)
				continue
			}
			e.loadPresetFile(p, src, false, out)
		}
	}
	return out
}

func (e *evaluator) loadPresetFile(name string, src []byte, builtin bool, out map[string]*Preset) {
	f, diags := e.loader.parser.ParseHCL(src, name)
	e.diags = append(e.diags, diags...)
	if f == nil || diags.HasErrors() {
		return
	}
	content, diags := f.Body.Content(presetFileSchema)
	e.diags = append(e.diags, diags...)
	if content == nil {
		return
	}
	saved := e.literalOnly
	e.literalOnly = true
	defer func() { e.literalOnly = saved }()
	for _, b := range content.Blocks {
		pname := b.Labels[0]
		if prev, ok := out[pname]; ok {
			what := "another preset file"
			if prev.Builtin {
				what = "a builtin preset"
			}
			e.errorf(b.LabelRanges[0].Ptr(), "Duplicate preset", "Preset %q is already defined by %s (%s); choose another name.", pname, what, prev.File)
			continue
		}
		c, diags := b.Body.Content(presetSchema)
		e.diags = append(e.diags, diags...)
		if c == nil {
			continue
		}
		pr := &Preset{Name: pname, File: name, Builtin: builtin, Description: e.str(c.Attributes["description"])}
		m := newMerger(e)
		for _, nb := range c.Blocks {
			rule, ranges := e.decodeNetwork(nb, "preset:"+pname)
			before := len(m.rules)
			m.add(rule, ranges, nb.LabelRanges[0])
			if len(m.rules) > before {
				pr.ranges = append(pr.ranges, ranges)
			}
		}
		pr.Network = m.rules
		out[pname] = pr
	}
}

func builtinPresetNames(m map[string]*Preset) []string {
	var out []string
	for _, n := range sortedKeys(m) {
		if m[n].Builtin {
			out = append(out, n)
		}
	}
	return out
}
