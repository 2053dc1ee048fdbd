package blueprints

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/nemoclave/nemoclave/policy"
	"github.com/zclconf/go-cty/cty"
)

// network blocks appear in policy blocks and in presets; both decode
// through decodeNetwork so a preset means exactly what the same block
// would mean in a blueprint.

var networkSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "endpoint"}}}

var endpointSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "host", Required: true}, {Name: "port"}, {Name: "ports"},
		{Name: "inspect"}, {Name: "allow_private"}, {Name: "allow_opaque"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "allow"}, {Type: "deny"}},
}

var httpRuleSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "methods"}, {Name: "paths"}, {Name: "query"},
}}

// endpointRange remembers where an endpoint was declared, for conflicts.
type endpointRange struct {
	endpoint policy.Endpoint
	rule     string
	source   string
	rng      hcl.Range
}

// decodeNetwork decodes one network "<name>" block.
func (e *evaluator) decodeNetwork(b *hcl.Block, source string) (policy.NetworkRule, []endpointRange) {
	rule := policy.NetworkRule{Name: b.Labels[0], Source: source, Endpoints: []policy.Endpoint{}}
	var ranges []endpointRange
	content, diags := b.Body.Content(networkSchema)
	e.diags = append(e.diags, diags...)
	if content == nil {
		return rule, nil
	}
	if len(content.Blocks) == 0 {
		e.errorf(b.DefRange.Ptr(), "Empty network block", "network %q allows nothing: add endpoint { host = \"...\" } blocks, or remove it.", rule.Name)
	}
	for _, eb := range content.Blocks {
		if ep, ok := e.decodeEndpoint(eb, rule.Name); ok {
			rule.Endpoints = append(rule.Endpoints, ep)
			ranges = append(ranges, endpointRange{endpoint: ep, rule: rule.Name, source: source, rng: eb.DefRange})
		}
	}
	return rule, ranges
}

func (e *evaluator) decodeEndpoint(b *hcl.Block, rule string) (policy.Endpoint, bool) {
	var ep policy.Endpoint
	content, diags := b.Body.Content(endpointSchema)
	e.diags = append(e.diags, diags...)
	if diags.HasErrors() {
		return ep, false
	}
	before := len(e.diags)
	hostAttr := content.Attributes["host"]
	if v, ok := e.attrValue(hostAttr, cty.String); !ok {
		e.notNull(hostAttr, before, `"api.example.com"`)
	} else {
		ep.Host = v.AsString()
		if err := policy.ValidateHostPattern(ep.Host); err != nil {
			e.errorf(hostAttr.Expr.Range().Ptr(), "Invalid host pattern", "%v. See docs/policies.md for host pattern rules.", err)
		} else if _, err := netip.ParseAddr(ep.Host); err != nil {
			// Not an IP literal: the name (after "*.") must be one the
			// gateway's matcher can ever see, or the rule is dead.
			if _, ok := policy.CanonicalHostName(strings.TrimPrefix(ep.Host, "*.")); !ok {
				e.errorf(hostAttr.Expr.Range().Ptr(), "Invalid host name", "%q is not a valid DNS host name (letters, digits and dashes in dot-separated labels; no underscores, empty labels or numeric last label), so no request could ever match it.", ep.Host)
			}
		}
	}
	portAttr, portsAttr := content.Attributes["port"], content.Attributes["ports"]
	switch {
	case portAttr != nil && portsAttr != nil:
		e.errorf(portsAttr.NameRange.Ptr(), "Conflicting port settings", "Give port = N or ports = [N, ...], not both.")
	case portAttr != nil:
		ep.Ports = []int{e.whole(portAttr)}
	case portsAttr != nil:
		ep.Ports = e.wholeList(portsAttr)
	}
	for _, a := range []*hcl.Attribute{portAttr, portsAttr} {
		if a == nil {
			continue
		}
		for _, p := range ep.Ports {
			if p < 1 || p > 65535 {
				e.errorf(a.Expr.Range().Ptr(), "Port out of range", "Port %d is not between 1 and 65535.", p)
			}
		}
	}
	ep.Inspect = e.boolean(content.Attributes["inspect"])
	ep.AllowPrivate = e.boolean(content.Attributes["allow_private"])
	ep.AllowOpaque = e.boolean(content.Attributes["allow_opaque"])
	for _, rb := range content.Blocks {
		r := e.decodeHTTPRule(rb)
		if !ep.Inspect {
			e.errorf(rb.DefRange.Ptr(), "Rule needs inspection", "%s rules judge method, path and query, which the gateway only sees when it terminates TLS: set inspect = true on this endpoint (host %q in network %q), or remove the rule.", rb.Type, ep.Host, rule)
		}
		if rb.Type == "allow" {
			ep.Allow = append(ep.Allow, r)
		} else {
			ep.Deny = append(ep.Deny, r)
		}
	}
	return ep, !e.diags[before:].HasErrors()
}

var httpMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace,
}

func (e *evaluator) decodeHTTPRule(b *hcl.Block) policy.HTTPRule {
	var r policy.HTTPRule
	content, diags := b.Body.Content(httpRuleSchema)
	e.diags = append(e.diags, diags...)
	if a := content.Attributes["methods"]; a != nil {
		for _, m := range e.strList(a) {
			up := strings.ToUpper(m)
			known := false
			for _, k := range httpMethods {
				known = known || k == up
			}
			if !known {
				e.errorf(a.Expr.Range().Ptr(), "Unknown HTTP method", "%q is not an HTTP method%s; use %s.", m, suggest(up, httpMethods), strings.Join(httpMethods, ", "))
				continue
			}
			r.Methods = append(r.Methods, up)
		}
	}
	if a := content.Attributes["paths"]; a != nil {
		for _, p := range e.strList(a) {
			if err := checkPathGlob(p); err != nil {
				e.errorf(a.Expr.Range().Ptr(), "Invalid path pattern", "%q: %v.", p, err)
				continue
			}
			r.Paths = append(r.Paths, p)
		}
	}
	if a := content.Attributes["query"]; a != nil {
		if v, ok := e.attrValue(a, cty.Map(cty.List(cty.String))); ok {
			r.Query = map[string][]string{}
			for k, list := range v.AsValueMap() {
				vals := []string{}
				if !list.IsNull() {
					for _, s := range list.AsValueSlice() {
						if !s.IsNull() {
							vals = append(vals, s.AsString())
						}
					}
				}
				r.Query[k] = vals
			}
		}
	}
	return r
}

// checkPathGlob requires an absolute path whose wildcards are whole
// segments or within one segment ("*" one segment, "**" any number).
func checkPathGlob(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("paths start with /")
	}
	for _, seg := range strings.Split(p, "/") {
		if strings.Contains(seg, "**") && seg != "**" {
			return fmt.Errorf("** must be a whole path segment (/repos/**), not part of one")
		}
		if strings.ContainsAny(seg, "?[]{}") {
			return fmt.Errorf("only * and ** are wildcards; ? [ ] { } are not supported")
		}
	}
	return nil
}

// endpointKey identifies an endpoint for merging: host and one port.
func endpointKeys(ep policy.Endpoint) []string {
	var out []string
	for _, p := range ep.EffectivePorts() {
		out = append(out, fmt.Sprintf("%s:%d", ep.Host, p))
	}
	return out
}

// sameTreatment reports whether two endpoints for the same host and port
// would be enforced identically.
func sameTreatment(a, b policy.Endpoint) bool {
	a.Ports, b.Ports = nil, nil
	return fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b)
}
