package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Schema is a plugin's config block declaration. The zero value is an empty
// block that accepts no attributes.
type Schema struct {
	Block Block `json:"block"`
}

// Block is a set of attributes and nested blocks.
type Block struct {
	Attributes  []Attribute   `json:"attributes,omitempty"`
	Blocks      []NestedBlock `json:"blocks,omitempty"`
	Description string        `json:"description,omitempty"`
}

// Attribute declares one config attribute.
type Attribute struct {
	Name string `json:"name"`
	// Type is an HCL type constraint expression: "string", "number",
	// "bool", "list(string)", "map(number)", "object({a=string})", "any".
	// Empty means "string".
	Type string `json:"type,omitempty"`
	// Required attributes must be set; a missing one is a diagnostic at the
	// config block, before the plugin is asked.
	Required bool `json:"required,omitempty"`
	// Default is the JSON encoding of the value used when the attribute is
	// absent. Must conform to Type.
	Default json.RawMessage `json:"default,omitempty"`
	// Description appears in `nemoclave plugin inspect` and the docs.
	Description string `json:"description,omitempty"`
	// Sensitive values are redacted in plan output and logs. Credentials
	// should use credential("NAME") in the blueprint instead of literals.
	Sensitive bool `json:"sensitive,omitempty"`
	// PluginKind, when set, makes this attribute a reference to another
	// plugin of that kind (`embeddings = plugin.embeddings.local`). The host
	// wires the two and the plugin reaches the target through Host.
	PluginKind string `json:"plugin_kind,omitempty"`
	// Credential marks an attribute that must be given as
	// credential("NAME"); the host resolves it when configuring the plugin.
	Credential bool `json:"credential,omitempty"`
}

// Nesting says how many times a nested block may appear.
type Nesting string

const (
	NestingSingle Nesting = "single" // at most once, decoded as an object
	NestingList   Nesting = "list"   // any number, decoded as a list
	NestingMap    Nesting = "map"    // labelled, decoded as a map by label
)

// NestedBlock declares a nested block type.
type NestedBlock struct {
	Name     string  `json:"name"`
	Nesting  Nesting `json:"nesting"`
	Required bool    `json:"required,omitempty"` // only for NestingSingle
	MinItems int     `json:"min_items,omitempty"`
	MaxItems int     `json:"max_items,omitempty"`
	Block    Block   `json:"block"`
}

// ParseType parses an attribute's type constraint.
func (a Attribute) ParseType() (cty.Type, error) {
	src := a.Type
	if src == "" {
		src = "string"
	}
	if a.PluginKind != "" {
		// References evaluate to an object describing the target plugin.
		return cty.DynamicPseudoType, nil
	}
	expr, diags := hclsyntax.ParseExpression([]byte(src), "type", hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilType, fmt.Errorf("attribute %q: type %q: %s", a.Name, src, diags.Error())
	}
	ty, diags := typeexpr.TypeConstraint(expr)
	if diags.HasErrors() {
		return cty.NilType, fmt.Errorf("attribute %q: type %q: %s", a.Name, src, diags.Error())
	}
	return ty, nil
}

// Validate checks the declaration itself: names unique, types parse,
// defaults conform. Plugins call it in their tests (sdktest does).
func (s *Schema) Validate() error {
	return s.Block.validate("")
}

func (b *Block) validate(prefix string) error {
	var errs []error
	seen := map[string]bool{}
	for _, a := range b.Attributes {
		if a.Name == "" {
			errs = append(errs, fmt.Errorf("%sattribute with empty name", prefix))
			continue
		}
		if seen[a.Name] {
			errs = append(errs, fmt.Errorf("%s%s declared twice", prefix, a.Name))
		}
		seen[a.Name] = true
		ty, err := a.ParseType()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s%w", prefix, err))
			continue
		}
		if a.Required && len(a.Default) > 0 {
			errs = append(errs, fmt.Errorf("%s%s is required and has a default; choose one", prefix, a.Name))
		}
		if len(a.Default) > 0 {
			if _, err := DecodeJSON(a.Default, ty); err != nil {
				errs = append(errs, fmt.Errorf("%s%s: default does not match type %s: %w", prefix, a.Name, a.Type, err))
			}
		}
	}
	for _, nb := range b.Blocks {
		if seen[nb.Name] {
			errs = append(errs, fmt.Errorf("%s%s declared twice", prefix, nb.Name))
		}
		seen[nb.Name] = true
		switch nb.Nesting {
		case NestingSingle, NestingList, NestingMap:
		default:
			errs = append(errs, fmt.Errorf("%s%s: nesting %q must be single, list or map", prefix, nb.Name, nb.Nesting))
		}
		if err := nb.Block.validate(prefix + nb.Name + "."); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// AttributeNames returns the attribute names of the top-level block, sorted.
func (s *Schema) AttributeNames() []string {
	var out []string
	for _, a := range s.Block.Attributes {
		out = append(out, a.Name)
	}
	sort.Strings(out)
	return out
}
