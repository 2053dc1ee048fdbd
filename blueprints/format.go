package blueprints

import (
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// Format returns src in canonical form (hclwrite.Format). It refuses
// source that does not parse, because formatting broken syntax can move
// the error somewhere confusing. JSON files are returned unchanged.
func Format(name string, src []byte) ([]byte, hcl.Diagnostics) {
	if strings.HasSuffix(name, extJSON) {
		return src, nil
	}
	if _, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos); diags.HasErrors() {
		return nil, diags
	}
	return hclwrite.Format(src), nil
}
