package schema

import (
	"encoding/json"
	"fmt"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Spec converts the schema into an hcldec.Spec. Defaults are applied by the
// spec, so the decoded value always has every declared attribute.
func (s *Schema) Spec() (hcldec.Spec, error) {
	return s.Block.spec()
}

func (b *Block) spec() (hcldec.ObjectSpec, error) {
	out := hcldec.ObjectSpec{}
	for _, a := range b.Attributes {
		ty, err := a.ParseType()
		if err != nil {
			return nil, err
		}
		var sp hcldec.Spec = &hcldec.AttrSpec{Name: a.Name, Type: ty, Required: a.Required}
		if len(a.Default) > 0 {
			def, err := DecodeJSON(a.Default, ty)
			if err != nil {
				return nil, fmt.Errorf("attribute %q default: %w", a.Name, err)
			}
			sp = &hcldec.DefaultSpec{Primary: sp, Default: &hcldec.LiteralSpec{Value: def}}
		}
		out[a.Name] = sp
	}
	for _, nb := range b.Blocks {
		inner, err := nb.Block.spec()
		if err != nil {
			return nil, fmt.Errorf("block %q: %w", nb.Name, err)
		}
		switch nb.Nesting {
		case NestingSingle:
			out[nb.Name] = &hcldec.BlockSpec{TypeName: nb.Name, Nested: inner, Required: nb.Required}
		case NestingList:
			out[nb.Name] = &hcldec.BlockListSpec{TypeName: nb.Name, Nested: inner, MinItems: nb.MinItems, MaxItems: nb.MaxItems}
		case NestingMap:
			out[nb.Name] = &hcldec.BlockMapSpec{TypeName: nb.Name, LabelNames: []string{"name"}, Nested: inner}
		default:
			return nil, fmt.Errorf("block %q: unknown nesting %q", nb.Name, nb.Nesting)
		}
	}
	return out, nil
}

// DecodeJSON decodes a JSON value into a cty value of type ty.
func DecodeJSON(raw json.RawMessage, ty cty.Type) (cty.Value, error) {
	if ty == cty.DynamicPseudoType {
		t, err := ctyjson.ImpliedType(raw)
		if err != nil {
			return cty.NilVal, err
		}
		ty = t
	}
	return ctyjson.Unmarshal(raw, ty)
}

// EncodeJSON encodes a decoded config value as JSON, the form plugins
// receive in Configure. Unknown values are an error: configure only known
// configuration.
func EncodeJSON(v cty.Value) (json.RawMessage, error) {
	if !v.IsWhollyKnown() {
		return nil, fmt.Errorf("config contains values not known until the blueprint runs")
	}
	return ctyjson.Marshal(v, v.Type())
}
