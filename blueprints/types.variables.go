package blueprints

import (
	"encoding/json"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// VarEnvPrefix prefixes environment variables that set blueprint
// variables: NEMOCLAVE_VAR_model=... sets var.model.
const VarEnvPrefix = "NEMOCLAVE_VAR_"

// Variable is a variable's final value, for display in the plan.
type Variable struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Type        string `json:"type"`
	Sensitive   bool   `json:"sensitive,omitempty"`
	// Value is the JSON value, or "(sensitive)" for sensitive variables.
	Value json.RawMessage `json:"value"`
	// Source is where the value came from: default, env, var-file, cli.
	Source string `json:"source"`
}

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "sensitive"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "validation"}},
}

var validationSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "condition", Required: true},
	{Name: "error_message", Required: true},
}}

// variableDecl is a decoded variable block before its value is known.
type variableDecl struct {
	block       *hcl.Block
	ty          cty.Type
	defaults    *typeexpr.Defaults
	description string
	sensitive   bool
	validations []*hcl.Block
	// broken is set when the block itself has errors; its value is then
	// left unknown rather than reported missing as well.
	broken bool
}

// assignment is a value given from outside the blueprint.
type assignment struct {
	value  cty.Value
	rng    *hcl.Range
	source string
}

// evalVariables decodes variable blocks and computes their values in
// precedence order: default < NEMOCLAVE_VAR_<name> < -var-file < -var.
func (e *evaluator) evalVariables() []Variable {
	decls := map[string]*variableDecl{}
	for _, name := range sortedKeys(e.decl.variables) {
		decls[name] = e.decodeVariable(e.decl.variables[name])
	}
	given := e.externalAssignments(decls)
	var out []Variable
	for _, name := range sortedKeys(decls) {
		d := decls[name]
		v, src := e.variableValue(name, d, given[name])
		e.vars[name] = v
		if !v.IsWhollyKnown() {
			continue
		}
		shown := json.RawMessage(`"(sensitive)"`)
		if !d.sensitive {
			u, _ := v.UnmarkDeep()
			if b, err := ctyjson.Marshal(u, u.Type()); err == nil {
				shown = b
			}
		}
		out = append(out, Variable{
			Name: name, Description: d.description, Type: typeexpr.TypeString(d.ty),
			Sensitive: d.sensitive, Value: shown, Source: src,
		})
	}
	return out
}

func (e *evaluator) decodeVariable(b *hcl.Block) *variableDecl {
	d := &variableDecl{block: b, ty: cty.DynamicPseudoType}
	content, diags := b.Body.Content(variableSchema)
	e.diags = append(e.diags, diags...)
	d.broken = diags.HasErrors()
	if a := content.Attributes["type"]; a != nil {
		ty, defaults, diags := typeexpr.TypeConstraintWithDefaults(a.Expr)
		e.diags = append(e.diags, diags...)
		d.broken = d.broken || diags.HasErrors()
		if !diags.HasErrors() {
			d.ty, d.defaults = ty, defaults
		}
	}
	lit := e.evalContext(scopeGeneral)
	if a := content.Attributes["description"]; a != nil {
		if v, ok := e.exprValue(a.Name, a.Expr, lit, nil, cty.String); ok {
			d.description = v.AsString()
		}
	}
	if a := content.Attributes["sensitive"]; a != nil {
		if v, ok := e.exprValue(a.Name, a.Expr, lit, nil, cty.Bool); ok {
			d.sensitive = v.True()
		}
	}
	d.validations = content.Blocks
	return d
}

// externalAssignments gathers -var, -var-file and NEMOCLAVE_VAR_ values.
// Later sources overwrite earlier ones.
func (e *evaluator) externalAssignments(decls map[string]*variableDecl) map[string]assignment {
	given := map[string]assignment{}
	for name, d := range decls {
		if raw, ok := e.loader.opts.LookupEnv(VarEnvPrefix + name); ok {
			if v, ok := e.parseRawValue(raw, d.ty, VarEnvPrefix+name); ok {
				given[name] = assignment{value: v, rng: d.block.DefRange.Ptr(), source: "env"}
			}
		}
	}
	for _, path := range e.loader.opts.VarFiles {
		e.readVarFile(path, decls, given)
	}
	for _, name := range sortedKeys(e.loader.opts.Vars) {
		d, ok := decls[name]
		if !ok {
			e.errorf(nil, "Value for undeclared variable", "-var %s=...: the blueprint declares no variable %q%s. Declare it, or remove the -var.", name, name, suggest(name, sortedKeys(decls)))
			continue
		}
		if v, ok := e.parseRawValue(e.loader.opts.Vars[name], d.ty, "-var "+name); ok {
			given[name] = assignment{value: v, rng: d.block.DefRange.Ptr(), source: "cli"}
		}
	}
	return given
}

// parseRawValue turns a command-line or environment string into a value:
// literally for string variables, as an HCL expression otherwise.
func (e *evaluator) parseRawValue(raw string, ty cty.Type, what string) (cty.Value, bool) {
	if ty == cty.String {
		return cty.StringVal(raw), true
	}
	expr, diags := hclsyntax.ParseExpression([]byte(raw), what, hcl.InitialPos)
	if diags.HasErrors() {
		if ty == cty.DynamicPseudoType {
			return cty.StringVal(raw), true
		}
		e.errorf(nil, "Invalid value for "+what, "%q is not a valid HCL expression for a %s variable: %s", raw, typeexpr.TypeString(ty), diags.Error())
		return cty.NilVal, false
	}
	v, diags := expr.Value(nil)
	if diags.HasErrors() && ty == cty.DynamicPseudoType {
		// An untyped variable given a bare word: take it as a string.
		return cty.StringVal(raw), true
	}
	if diags.HasErrors() {
		e.errorf(nil, "Invalid value for "+what, "%q must be a literal value (no references or functions): %s", raw, diags.Error())
		return cty.NilVal, false
	}
	return v, true
}

func (e *evaluator) readVarFile(path string, decls map[string]*variableDecl, given map[string]assignment) {
	var src []byte
	var err error
	if root := e.loader.opts.Root; root != "" {
		// Load checked that path is inside root; os.Root keeps a link from
		// leading out.
		src, err = readConfined(root, root, mustRel(root, path))
	} else {
		src, err = os.ReadFile(path)
	}
	if err != nil {
		e.errorf(nil, "Cannot read variable file", "%v. Check the -var-file path.", err)
		return
	}
	var f *hcl.File
	var diags hcl.Diagnostics
	if strings.HasSuffix(path, ".json") {
		f, diags = e.loader.parser.ParseJSON(src, path)
	} else {
		f, diags = e.loader.parser.ParseHCL(src, path)
	}
	e.diags = append(e.diags, diags...)
	if f == nil || diags.HasErrors() {
		return
	}
	attrs, diags := f.Body.JustAttributes()
	e.diags = append(e.diags, diags...)
	lit := e.evalContext(scopeGeneral)
	for _, name := range sortedKeys(attrs) {
		a := attrs[name]
		if _, ok := decls[name]; !ok {
			e.errorf(a.NameRange.Ptr(), "Value for undeclared variable", "The blueprint declares no variable %q%s.", name, suggest(name, sortedKeys(decls)))
			continue
		}
		v, ok := e.evalExpr(a.Expr, lit, nil)
		if ok && e.noCredential(v, a.Expr.Range()) {
			given[name] = assignment{value: v, rng: a.Expr.Range().Ptr(), source: "var-file"}
		}
	}
}

// variableValue picks, converts and validates one variable's value.
func (e *evaluator) variableValue(name string, d *variableDecl, given assignment) (cty.Value, string) {
	if d.broken {
		return cty.DynamicVal, "default"
	}
	content, _ := d.block.Body.Content(variableSchema)
	var v cty.Value
	var rng *hcl.Range
	src := "default"
	if given.value != cty.NilVal {
		v, src, rng = given.value, given.source, given.rng
	} else if a := content.Attributes["default"]; a != nil {
		dv, ok := e.evalExpr(a.Expr, e.evalContext(scopeVariableDefault), nil)
		if !ok || !e.noCredential(dv, a.Expr.Range()) {
			return cty.DynamicVal, src
		}
		v, rng = dv, a.Expr.Range().Ptr()
	} else {
		e.errorf(d.block.DefRange.Ptr(), "No value for required variable", "var.%s has no default and no value was given. Set it with -var %s=..., a -var-file, or %s%s.", name, name, VarEnvPrefix, name)
		return cty.DynamicVal, src
	}
	if d.defaults != nil {
		v = d.defaults.Apply(v)
	}
	cv, err := convert.Convert(v, d.ty)
	if err != nil {
		e.errorf(rng, "Invalid value for variable", "var.%s must be %s: %s.", name, typeexpr.TypeString(d.ty), convertMessage(err))
		return cty.DynamicVal, src
	}
	e.validateVariable(name, cv, d)
	if d.sensitive {
		cv = cv.Mark(markSensitive)
	}
	return cv, src
}

func (e *evaluator) validateVariable(name string, v cty.Value, d *variableDecl) {
	for _, vb := range d.validations {
		content, diags := vb.Body.Content(validationSchema)
		e.diags = append(e.diags, diags...)
		cond, msgAttr := content.Attributes["condition"], content.Attributes["error_message"]
		if cond == nil || msgAttr == nil {
			continue
		}
		selfOnly := true
		for _, t := range cond.Expr.Variables() {
			if t.RootName() != rootVar || len(t) < 2 || !isAttrStep(t[1], name) {
				rng := t.SourceRange()
				e.errorf(&rng, "Invalid validation reference", "A validation rule of var.%s may only refer to var.%s.", name, name)
				selfOnly = false
			}
		}
		if !selfOnly {
			continue
		}
		ctx := e.evalContext(scopeGeneral)
		ctx.Variables = map[string]cty.Value{rootVar: cty.ObjectVal(map[string]cty.Value{name: v})}
		res, diags := cond.Expr.Value(ctx)
		e.diags = append(e.diags, diags...)
		if diags.HasErrors() {
			continue
		}
		res, err := convert.Convert(res, cty.Bool)
		if err != nil || res.IsNull() {
			e.errorf(cond.Expr.Range().Ptr(), "Invalid validation condition", "condition must be true or false.")
			continue
		}
		if res.True() {
			continue
		}
		msg, ok := e.exprValue(msgAttr.Name, msgAttr.Expr, e.evalContext(scopeGeneral), nil, cty.String)
		text := "the validation rule failed"
		if ok {
			text = msg.AsString()
		}
		e.errorf(cond.Expr.Range().Ptr(), "Invalid value for variable", "var.%s: %s", name, text)
	}
}

func isAttrStep(s hcl.Traverser, name string) bool {
	a, ok := s.(hcl.TraverseAttr)
	return ok && a.Name == name
}
