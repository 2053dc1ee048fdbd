package blueprints

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// credentialNameRE is what credential() accepts: the names the credential
// store uses (NVIDIA_API_KEY, OPENAI_API_KEY, ...).
var credentialNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// functionScope says where an expression sits, because env() is only
// allowed in variable defaults.
type functionScope int

const (
	scopeGeneral functionScope = iota
	scopeVariableDefault
)

// functions returns the curated function set. dir is the blueprint's
// directory: file() and templatefile() resolve relative paths against it;
// a non-empty root confines them to that directory (Options.Root).
// lookupEnv backs env() when scope allows it.
func functions(dir, root string, scope functionScope, lookupEnv func(string) (string, bool)) map[string]function.Function {
	fns := map[string]function.Function{
		// strings
		"chomp": stdlib.ChompFunc, "format": stdlib.FormatFunc, "formatlist": stdlib.FormatListFunc,
		"indent": limitIndent, "join": stdlib.JoinFunc, "lower": stdlib.LowerFunc,
		"regex": stdlib.RegexFunc, "regexall": stdlib.RegexAllFunc, "regex_replace": stdlib.RegexReplaceFunc,
		"replace": stdlib.ReplaceFunc, "split": stdlib.SplitFunc, "strrev": stdlib.ReverseFunc,
		"substr": stdlib.SubstrFunc, "title": stdlib.TitleFunc, "trim": stdlib.TrimFunc,
		"trimprefix": stdlib.TrimPrefixFunc, "trimsuffix": stdlib.TrimSuffixFunc,
		"trimspace": stdlib.TrimSpaceFunc, "upper": stdlib.UpperFunc, "strlen": stdlib.StrlenFunc,
		// collections
		"chunklist": stdlib.ChunklistFunc, "coalesce": stdlib.CoalesceFunc,
		"coalescelist": stdlib.CoalesceListFunc, "compact": stdlib.CompactFunc,
		"concat": stdlib.ConcatFunc, "contains": stdlib.ContainsFunc, "distinct": stdlib.DistinctFunc,
		"element": stdlib.ElementFunc, "flatten": stdlib.FlattenFunc, "index": stdlib.IndexFunc,
		"keys": stdlib.KeysFunc, "length": lengthFunc, "lookup": stdlib.LookupFunc,
		"merge": stdlib.MergeFunc, "range": stdlib.RangeFunc, "reverse": stdlib.ReverseListFunc,
		"setintersection": stdlib.SetIntersectionFunc, "setproduct": limitSetProduct,
		"setsubtract": stdlib.SetSubtractFunc, "setunion": stdlib.SetUnionFunc,
		"slice": stdlib.SliceFunc, "sort": stdlib.SortFunc, "values": stdlib.ValuesFunc,
		"zipmap": stdlib.ZipmapFunc,
		// encoding and conversion
		"csvdecode": stdlib.CSVDecodeFunc, "jsondecode": stdlib.JSONDecodeFunc,
		"jsonencode": stdlib.JSONEncodeFunc, "tonumber": stdlib.MakeToFunc(cty.Number),
		"tostring": stdlib.MakeToFunc(cty.String), "tobool": stdlib.MakeToFunc(cty.Bool),
		"tolist": stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"toset":  stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"tomap":  stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
		// formatting and time
		"formatdate": stdlib.FormatDateFunc, "timeadd": stdlib.TimeAddFunc,
		// math
		"abs": stdlib.AbsoluteFunc, "ceil": stdlib.CeilFunc, "floor": stdlib.FloorFunc,
		"log": stdlib.LogFunc, "max": stdlib.MaxFunc, "min": stdlib.MinFunc,
		"parseint": stdlib.ParseIntFunc, "pow": stdlib.PowFunc, "signum": stdlib.SignumFunc,
		// nemoclave
		"credential": credentialFunc,
		"file":       fileFunc(dir, root),
	}
	fns["templatefile"] = templateFileFunc(dir, root, fns)
	if scope == scopeVariableDefault {
		fns["env"] = envFunc(lookupEnv)
	} else {
		fns["env"] = envForbiddenFunc
	}
	return fns
}

// credentialFunc returns a credential reference: an object
// {credential = "NAME"} carrying the credential mark. The value of the
// credential never enters the blueprint; the host resolves the reference
// only when it configures a plugin (see Plugin.Credentials).
var credentialFunc = function.New(&function.Spec{
	Description: "A reference to a credential the host holds; the value never enters the blueprint.",
	Params:      []function.Parameter{{Name: "name", Type: cty.String}},
	Type:        function.StaticReturnType(credentialType),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		name := args[0].AsString()
		if !credentialNameRE.MatchString(name) {
			return cty.NilVal, function.NewArgErrorf(0, "credential name %q is not valid: use letters, digits and underscores, as in credential(\"NVIDIA_API_KEY\")", name)
		}
		return credentialValue(name), nil
	},
})

func fileFunc(dir, root string) function.Function {
	return function.New(&function.Spec{
		Description: "Reads a file relative to the blueprint's directory.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			b, err := readRelative(dir, root, args[0].AsString())
			if err != nil {
				return cty.NilVal, err
			}
			return cty.StringVal(string(b)), nil
		},
	})
}

func readRelative(dir, root, p string) ([]byte, error) {
	if root != "" {
		return readConfined(dir, root, p)
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	b, err := ReadBounded(p, MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s (paths are relative to the blueprint's directory): %w", p, err)
	}
	return b, nil
}

// readConfined reads p, relative to dir, only when it lies inside root:
// an uploaded blueprint may not read the daemon host's other files. The
// read goes through os.Root, so a symbolic link cannot lead out either.
func readConfined(dir, root, p string) ([]byte, error) {
	if filepath.IsAbs(p) {
		return nil, fmt.Errorf("%s is an absolute path: an uploaded blueprint reads files only inside its upload; give a path relative to the blueprint and send the file with it", p)
	}
	rel, ok := InsideRoot(root, filepath.Join(dir, p))
	if !ok {
		return nil, fmt.Errorf("%s leads out of the upload: an uploaded blueprint reads files only inside it; keep the file beside the blueprint", p)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("cannot open the upload: %w", err)
	}
	defer r.Close()
	f, err := r.Open(rel)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s inside the upload (paths are relative to the blueprint's directory): %w", p, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", p, err)
	}
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, MaxFileBytes)
	}
	return b, nil
}

// InsideRoot says whether the cleaned path p lies inside root (or is root),
// and returns it relative to root.
func InsideRoot(root, p string) (string, bool) {
	rel, err := filepath.Rel(filepath.Clean(root), filepath.Clean(p))
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		return "", false
	}
	return rel, true
}

// templateFileFunc renders an HCL template file with the given variables
// and the same function set (minus templatefile itself, so a template
// cannot recurse).
func templateFileFunc(dir, root string, fns map[string]function.Function) function.Function {
	return function.New(&function.Spec{
		Description: "Renders a template file relative to the blueprint's directory.",
		Params: []function.Parameter{
			{Name: "path", Type: cty.String},
			{Name: "vars", Type: cty.DynamicPseudoType},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			src, err := readRelative(dir, root, p)
			if err != nil {
				return cty.NilVal, err
			}
			vars := args[1]
			if !vars.Type().IsObjectType() && !vars.Type().IsMapType() {
				return cty.NilVal, function.NewArgErrorf(1, "vars must be an object, as in templatefile(\"x.tmpl\", { name = \"a\" })")
			}
			if d := nesting(p, src, true); d.HasErrors() {
				return cty.NilVal, fmt.Errorf("template %s: %s", p, d.Error())
			}
			tmpl, diags := hclsyntax.ParseTemplate(src, p, hcl.InitialPos)
			if diags.HasErrors() {
				return cty.NilVal, fmt.Errorf("template %s: %s", p, diags.Error())
			}
			inner := map[string]function.Function{}
			for k, f := range fns {
				if k != "templatefile" {
					inner[k] = f
				}
			}
			varMap := map[string]cty.Value{}
			if !vars.IsNull() {
				for it := vars.ElementIterator(); it.Next(); {
					k, v := it.Element()
					varMap[k.AsString()] = v
				}
			}
			out, diags := tmpl.Value(&hcl.EvalContext{Variables: varMap, Functions: inner})
			if diags.HasErrors() {
				return cty.NilVal, fmt.Errorf("template %s: %s", p, diags.Error())
			}
			out, err = convertString(out)
			if err != nil {
				return cty.NilVal, fmt.Errorf("template %s: %w", p, err)
			}
			return out, nil
		},
	})
}

func envFunc(lookup func(string) (string, bool)) function.Function {
	return function.New(&function.Spec{
		Description: "Reads an environment variable of the process evaluating the blueprint. Only allowed in variable defaults.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		VarParam:    &function.Parameter{Name: "default", Type: cty.String},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if v, ok := lookup(args[0].AsString()); ok {
				return cty.StringVal(v), nil
			}
			if len(args) > 1 {
				return args[1], nil
			}
			return cty.StringVal(""), nil
		},
	})
}

var envForbiddenFunc = function.New(&function.Spec{
	Params:   []function.Parameter{{Name: "name", Type: cty.String}},
	VarParam: &function.Parameter{Name: "default", Type: cty.String},
	Type:     function.StaticReturnType(cty.String),
	Impl: func([]cty.Value, cty.Type) (cty.Value, error) {
		return cty.NilVal, fmt.Errorf("env() is only allowed in a variable's default; declare a variable with default = env(\"NAME\") and use var.<name> here")
	},
})

// lengthFunc is stdlib's length extended to strings (in characters), as
// Terraform users expect.
var lengthFunc = function.New(&function.Spec{
	Description: "The number of elements of a collection, or of characters of a string.",
	Params:      []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowDynamicType: true, AllowUnknown: true}},
	Type:        function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if args[0].Type() == cty.String {
			return stdlib.Strlen(args[0])
		}
		return stdlib.Length(args[0])
	},
})

// Some stdlib functions can make a blueprint take unbounded time or memory
// (found by FuzzParseEvaluate). A blueprint never needs these sizes, so
// they are capped with an error that says so.
const (
	maxIndent         = 256
	maxProductResults = 10000
)

var limitIndent = guarded(stdlib.IndentFunc, func(args []cty.Value) error {
	if n := args[0]; n.IsKnown() && !n.IsNull() {
		if f, _ := n.AsBigFloat().Float64(); f > maxIndent || f < 0 {
			return function.NewArgErrorf(0, "indent takes 0 to %d spaces", maxIndent)
		}
	}
	return nil
})

var limitSetProduct = guarded(stdlib.SetProductFunc, func(args []cty.Value) error {
	total := 1
	for _, a := range args {
		if !a.IsKnown() || a.IsNull() || !a.CanIterateElements() {
			return nil
		}
		total *= a.LengthInt()
		if total > maxProductResults {
			return fmt.Errorf("setproduct would produce more than %d elements; blueprints do not need products this large", maxProductResults)
		}
	}
	return nil
})

// guarded wraps f so check runs on the arguments before f does.
func guarded(f function.Function, check func(args []cty.Value) error) function.Function {
	return function.New(&function.Spec{
		Description: f.Description(),
		Params:      f.Params(),
		VarParam:    f.VarParam(),
		Type:        f.ReturnTypeForValues,
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if err := check(args); err != nil {
				return cty.NilVal, err
			}
			return f.Call(args)
		},
	})
}

// insideUpload says whether p (absolute, cleaned) is inside the upload of
// a confined evaluation, following symbolic links of what exists.
func (e *evaluator) insideUpload(p string) bool {
	root := e.loader.opts.Root
	if _, ok := InsideRoot(root, p); !ok {
		return false
	}
	rr, err := filepath.EvalSymlinks(root)
	if err != nil {
		return false
	}
	// The part of p that exists, with its links resolved, must stay inside.
	for q := p; ; q = filepath.Dir(q) {
		if real, err := filepath.EvalSymlinks(q); err == nil {
			_, ok := InsideRoot(rr, real)
			return ok
		}
		if q == filepath.Dir(q) {
			return false
		}
	}
}

// mustRel is p relative to root; callers checked that p is inside it.
func mustRel(root, p string) string {
	rel, _ := InsideRoot(root, p)
	return rel
}
