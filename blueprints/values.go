package blueprints

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// evalExpr checks expr's references against roots and evaluates it. The
// result keeps its marks. ok is false when a diagnostic was reported or
// the value is not known.
func (e *evaluator) evalExpr(expr hcl.Expression, ctx *hcl.EvalContext, roots []string) (cty.Value, bool) {
	if !e.checkTraversals(expr.Variables(), roots) {
		return cty.DynamicVal, false
	}
	v, diags := expr.Value(ctx)
	e.diags = append(e.diags, diags...)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return cty.DynamicVal, false
	}
	return v, true
}

// noCredential reports a credential() result outside a plugin config
// credential attribute.
func (e *evaluator) noCredential(v cty.Value, rng hcl.Range) bool {
	if v.HasMarkDeep(markCredential) {
		e.errorf(rng.Ptr(), "credential() not allowed here",
			"A credential may only be given to a plugin config attribute the plugin declares as a credential, such as api_key = credential(\"NAME\") in a plugin's config block. Credentials never enter variables, locals, policies, sandboxes (their environment included) or agents: the gateway injects them.")
		return false
	}
	return true
}

// attrValue evaluates attr in the general context and converts it to ty.
// attr may be nil (absent): ok is false and nothing is reported.
func (e *evaluator) attrValue(attr *hcl.Attribute, ty cty.Type) (cty.Value, bool) {
	if attr == nil {
		return cty.NilVal, false
	}
	return e.exprValue(attr.Name, attr.Expr, e.general(), e.roots(), ty)
}

func (e *evaluator) exprValue(name string, expr hcl.Expression, ctx *hcl.EvalContext, roots []string, ty cty.Type) (cty.Value, bool) {
	v, ok := e.evalExpr(expr, ctx, roots)
	if !ok || !e.noCredential(v, expr.Range()) {
		return cty.NilVal, false
	}
	v, _ = v.UnmarkDeep()
	if v.IsNull() {
		return cty.NilVal, false
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		// Expression and EvalContext let the renderer show the values of
		// the references involved ("with var.x as ...").
		e.diags = append(e.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Incorrect attribute value type",
			Detail:  fmt.Sprintf("Inappropriate value for %s: %s.", name, convertMessage(err)),
			Subject: expr.Range().Ptr(), Expression: expr, EvalContext: ctx,
		})
		return cty.NilVal, false
	}
	return cv, true
}

func convertMessage(err error) string {
	if pe, ok := err.(cty.PathError); ok && len(pe.Path) > 0 {
		return fmt.Sprintf("%s: %s", formatPath(pe.Path), pe.Error())
	}
	return err.Error()
}

// formatPath renders a cty path as HCL would write it: a.b[0]["k"].
func formatPath(p cty.Path) string {
	var b strings.Builder
	for _, s := range p {
		switch s := s.(type) {
		case cty.GetAttrStep:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.Name)
		case cty.IndexStep:
			if s.Key.Type() == cty.String {
				fmt.Fprintf(&b, "[%q]", s.Key.AsString())
			} else if s.Key.Type() == cty.Number {
				fmt.Fprintf(&b, "[%s]", s.Key.AsBigFloat().Text('f', -1))
			}
		}
	}
	return b.String()
}

// roots are the references expressions may use right now.
func (e *evaluator) roots() []string {
	if e.literalOnly {
		return nil
	}
	return allRoots
}

func convertString(v cty.Value) (cty.Value, error) { return convert.Convert(v, cty.String) }

func (e *evaluator) str(attr *hcl.Attribute) string {
	v, ok := e.attrValue(attr, cty.String)
	if !ok {
		return ""
	}
	return v.AsString()
}

// notNull reports a present attribute that produced no value without any
// other diagnostic (it evaluated to null), for attributes that need one.
// before is len(e.diags) before the attribute was read.
func (e *evaluator) notNull(attr *hcl.Attribute, before int, example string) {
	if attr != nil && len(e.diags) == before {
		e.errorf(attr.Expr.Range().Ptr(), "Missing value for "+attr.Name, "%s is null; give a value, as in %s = %s.", attr.Name, attr.Name, example)
	}
}

// oneOf reads a string attribute that must be one of allowed.
func (e *evaluator) oneOf(attr *hcl.Attribute, def string, allowed ...string) string {
	if attr == nil {
		return def
	}
	v, ok := e.attrValue(attr, cty.String)
	if !ok {
		return def
	}
	s := v.AsString()
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	e.errorf(attr.Expr.Range().Ptr(), "Invalid value for "+attr.Name, "%s = %q is not allowed%s; use one of %s.", attr.Name, s, suggest(s, allowed), quoteList(allowed))
	return def
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

func (e *evaluator) strList(attr *hcl.Attribute) []string {
	v, ok := e.attrValue(attr, cty.List(cty.String))
	if !ok {
		return nil
	}
	out := []string{}
	for it := v.ElementIterator(); it.Next(); {
		_, el := it.Element()
		if el.IsNull() {
			e.errorf(attr.Expr.Range().Ptr(), "Null list element", "%s may not contain null.", attr.Name)
			continue
		}
		out = append(out, el.AsString())
	}
	return out
}

func (e *evaluator) strMap(attr *hcl.Attribute) map[string]string {
	v, ok := e.attrValue(attr, cty.Map(cty.String))
	if !ok {
		return nil
	}
	out := map[string]string{}
	for k, el := range v.AsValueMap() {
		if el.IsNull() {
			e.errorf(attr.Expr.Range().Ptr(), "Null map value", "%s[%q] is null; give a string.", attr.Name, k)
			continue
		}
		out[k] = el.AsString()
	}
	return out
}

func (e *evaluator) boolean(attr *hcl.Attribute) bool {
	v, ok := e.attrValue(attr, cty.Bool)
	return ok && v.True()
}

func (e *evaluator) float(attr *hcl.Attribute) float64 {
	v, ok := e.attrValue(attr, cty.Number)
	if !ok {
		return 0
	}
	f, _ := v.AsBigFloat().Float64()
	if f < 0 {
		e.errorf(attr.Expr.Range().Ptr(), "Negative "+attr.Name, "%s must not be negative.", attr.Name)
		return 0
	}
	return f
}

// whole reads a non-negative whole number attribute.
func (e *evaluator) whole(attr *hcl.Attribute) int {
	v, ok := e.attrValue(attr, cty.Number)
	if !ok {
		return 0
	}
	return e.wholeOf(attr, v.AsBigFloat())
}

func (e *evaluator) wholeOf(attr *hcl.Attribute, f *big.Float) int {
	i, acc := f.Int64()
	if acc != big.Exact || i < 0 || i > 1<<40 {
		e.errorf(attr.Expr.Range().Ptr(), "Invalid "+attr.Name, "%s must be a whole number between 0 and %d, not %s.", attr.Name, int64(1)<<40, f.Text('g', 10))
		return 0
	}
	return int(i)
}

func (e *evaluator) wholeList(attr *hcl.Attribute) []int {
	v, ok := e.attrValue(attr, cty.List(cty.Number))
	if !ok {
		return nil
	}
	var out []int
	for it := v.ElementIterator(); it.Next(); {
		_, el := it.Element()
		if el.IsNull() {
			continue
		}
		out = append(out, e.wholeOf(attr, el.AsBigFloat()))
	}
	return out
}

// ref reads an attribute that must be a reference to a block of root
// (and, for plugins, of kind). It returns the target's name.
func (e *evaluator) ref(attr *hcl.Attribute, root, kind string) string {
	if attr == nil {
		return ""
	}
	v, ok := e.evalExpr(attr.Expr, e.general(), e.roots())
	if !ok || !e.noCredential(v, attr.Expr.Range()) {
		return ""
	}
	return e.refOf(attr, v, root, kind)
}

func (e *evaluator) refOf(attr *hcl.Attribute, v cty.Value, root, kind string) string {
	prefix, example, what := root+".", root+".<name>", "a "+root
	if kind != "" {
		prefix, example, what = root+"."+kind+".", root+"."+kind+".<name>", "a plugin of kind "+kind
	}
	addr, ok := refAddress(v)
	if !ok || !strings.HasPrefix(addr, prefix) {
		got := "a value"
		if ok {
			got = addr
		}
		e.errorf(attr.Expr.Range().Ptr(), "Expected a reference", "%s must refer to %s, as in %s = %s; got %s.", attr.Name, what, attr.Name, example, got)
		return ""
	}
	return strings.TrimPrefix(addr, prefix)
}

// refList reads a list of references.
func (e *evaluator) refList(attr *hcl.Attribute, root, kind string) []string {
	if attr == nil {
		return nil
	}
	v, ok := e.evalExpr(attr.Expr, e.general(), e.roots())
	if !ok || !e.noCredential(v, attr.Expr.Range()) {
		return nil
	}
	if v.IsNull() {
		return nil
	}
	if !v.Type().IsTupleType() && !v.Type().IsListType() && !v.Type().IsSetType() {
		e.errorf(attr.Expr.Range().Ptr(), "Expected a list of references", "%s must be a list, as in %s = [%s.<name>].", attr.Name, attr.Name, root)
		return nil
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, el := it.Element()
		if n := e.refOf(attr, el, root, kind); n != "" {
			out = append(out, n)
		}
	}
	return out
}
