package plugin

import (
	"github.com/nemoclave/nemoclave/sdk/internal/pb/pluginv1"
	"github.com/nemoclave/nemoclave/sdk/schema"
)

func schemaToPB(b *schema.Block) *pluginv1.Block {
	out := &pluginv1.Block{Description: b.Description}
	for _, a := range b.Attributes {
		out.Attributes = append(out.Attributes, &pluginv1.Attribute{
			Name: a.Name, Type: a.Type, Required: a.Required, DefaultJson: a.Default,
			Description: a.Description, Sensitive: a.Sensitive, PluginKind: a.PluginKind, Credential: a.Credential,
		})
	}
	for _, nb := range b.Blocks {
		out.Blocks = append(out.Blocks, &pluginv1.NestedBlock{
			Name: nb.Name, Nesting: string(nb.Nesting), Required: nb.Required,
			MinItems: int32(nb.MinItems), MaxItems: int32(nb.MaxItems), Block: schemaToPB(&nb.Block),
		})
	}
	return out
}

func schemaFromPB(b *pluginv1.Block) schema.Block {
	if b == nil {
		return schema.Block{}
	}
	out := schema.Block{Description: b.Description}
	for _, a := range b.Attributes {
		out.Attributes = append(out.Attributes, schema.Attribute{
			Name: a.Name, Type: a.Type, Required: a.Required, Default: a.DefaultJson,
			Description: a.Description, Sensitive: a.Sensitive, PluginKind: a.PluginKind, Credential: a.Credential,
		})
	}
	for _, nb := range b.Blocks {
		out.Blocks = append(out.Blocks, schema.NestedBlock{
			Name: nb.Name, Nesting: schema.Nesting(nb.Nesting), Required: nb.Required,
			MinItems: int(nb.MinItems), MaxItems: int(nb.MaxItems), Block: schemaFromPB(nb.Block),
		})
	}
	return out
}

func diagsToPB(ds []Diagnostic) []*pluginv1.Diagnostic {
	out := make([]*pluginv1.Diagnostic, 0, len(ds))
	for _, d := range ds {
		sev := pluginv1.Diagnostic_SEVERITY_ERROR
		if d.Severity == SeverityWarning {
			sev = pluginv1.Diagnostic_SEVERITY_WARNING
		}
		out = append(out, &pluginv1.Diagnostic{Severity: sev, Summary: d.Summary, Detail: d.Detail, AttributePath: d.Path})
	}
	return out
}

func diagsFromPB(ds []*pluginv1.Diagnostic) []Diagnostic {
	out := make([]Diagnostic, 0, len(ds))
	for _, d := range ds {
		sev := SeverityError
		if d.Severity == pluginv1.Diagnostic_SEVERITY_WARNING {
			sev = SeverityWarning
		}
		out = append(out, Diagnostic{Severity: sev, Summary: d.Summary, Detail: d.Detail, Path: d.AttributePath})
	}
	return out
}
