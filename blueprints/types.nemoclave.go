package blueprints

import (
	"fmt"

	"github.com/hashicorp/go-version"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	nemoversion "github.com/nemoclave/nemoclave/version"
)

// Settings is the nemoclave block: which nemoclave and which plugins the
// blueprint needs.
type Settings struct {
	// RequiredVersion is the version constraint on nemoclave itself,
	// already checked against version.Version.
	RequiredVersion string `json:"required_version,omitempty"`
	// RequiredPlugins are checked by the plugin manager when it resolves
	// installed plugins; the evaluator only checks the syntax.
	RequiredPlugins []RequiredPlugin `json:"required_plugins,omitempty"`
}

// RequiredPlugin is one entry of required_plugins.
type RequiredPlugin struct {
	// Name is the key in required_plugins.
	Name string `json:"name"`
	// Source is the installed plugin address or path.
	Source string `json:"source"`
	// Version is a go-version constraint (">= 1.2, < 2.0").
	Version string `json:"version,omitempty"`
}

var nemoclaveSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "required_version"},
	{Name: "required_plugins"},
}}

// decodeSettings reads the nemoclave block. Its expressions may not use
// variables: the block is checked before anything else is evaluated.
func (e *evaluator) decodeSettings(blocks []*hcl.Block) Settings {
	var s Settings
	if len(blocks) == 0 {
		return s
	}
	content, diags := blocks[0].Body.Content(nemoclaveSchema)
	e.diags = append(e.diags, diags...)
	ctx := e.evalContext(scopeGeneral)
	if a := content.Attributes["required_version"]; a != nil {
		if v, ok := e.exprValue(a.Name, a.Expr, ctx, nil, cty.String); ok {
			s.RequiredVersion = v.AsString()
			e.checkRequiredVersion(s.RequiredVersion, a.Expr.Range())
		}
	}
	if a := content.Attributes["required_plugins"]; a != nil {
		ty := cty.Map(cty.ObjectWithOptionalAttrs(map[string]cty.Type{"source": cty.String, "version": cty.String}, []string{"source", "version"}))
		if v, ok := e.exprValue(a.Name, a.Expr, ctx, nil, ty); ok {
			for _, name := range sortedKeys(v.AsValueMap()) {
				obj := v.AsValueMap()[name]
				rp := RequiredPlugin{Name: name}
				if src := obj.GetAttr("source"); !src.IsNull() {
					rp.Source = src.AsString()
				}
				if ver := obj.GetAttr("version"); !ver.IsNull() {
					rp.Version = ver.AsString()
					if _, err := version.NewConstraint(rp.Version); err != nil {
						e.errorf(mapItemRange(a.Expr, name).Ptr(), "Invalid version constraint", "required_plugins.%s.version = %q: %v. Write constraints like \">= 1.2, < 2.0\".", name, rp.Version, err)
					}
				}
				if rp.Source == "" {
					e.errorf(mapItemRange(a.Expr, name).Ptr(), "Missing plugin source", "required_plugins.%s needs a source (an installed plugin address or a path).", name)
				}
				s.RequiredPlugins = append(s.RequiredPlugins, rp)
			}
		}
	}
	return s
}

func (e *evaluator) checkRequiredVersion(constraint string, rng hcl.Range) {
	c, err := version.NewConstraint(constraint)
	if err != nil {
		e.errorf(rng.Ptr(), "Invalid version constraint", "required_version = %q: %v. Write constraints like \">= 0.1\".", constraint, err)
		return
	}
	cur := version.Must(version.NewVersion(nemoversion.Version))
	if !c.Check(cur) {
		e.errorf(rng.Ptr(), "Unsupported nemoclave version", "This blueprint requires nemoclave %s, but this is nemoclave %s. Install a matching release, or relax required_version.", constraint, nemoversion.Version)
	}
}

// checkPluginVersion validates a plugin block's version constraint.
func (e *evaluator) checkPluginVersion(constraint string, rng hcl.Range) {
	if _, err := version.NewConstraint(constraint); err != nil {
		e.errorf(rng.Ptr(), "Invalid version constraint", "version = %q: %s. Write constraints like \">= 1.2, < 2.0\".", constraint, fmt.Sprint(err))
	}
}
