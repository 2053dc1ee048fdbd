package blueprints

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/zclconf/go-cty/cty"
)

// decodePluginConfig decodes the config block against the plugin's
// schema, checks credentials and plugin references, then lets the plugin
// validate the result. srcRange is where schema lookup failures point.
func (e *evaluator) decodePluginConfig(p *Plugin, srcRange hcl.Range, cfg *hcl.Block) {
	sch := mcpSchema
	if p.SourceType != SourceMCP {
		var err error
		sch, err = e.loader.opts.Schemas.ConfigSchema(e.ctx, p.Kind, p.schemaSource())
		if errors.Is(err, ErrSchemaUnavailable) {
			e.warnf(srcRange.Ptr(), "Plugin config not checked", "%s: %v. The config block is checked when the plugin host can launch the plugin (nemoclave run, or validate with a plugin host).", p.Address, err)
			return
		}
		if err != nil {
			e.errorf(srcRange.Ptr(), "Cannot get plugin config schema", "%s: %v", p.Address, err)
			return
		}
		if sch == nil {
			sch = &schema.Schema{}
		}
	}
	p.Schema = sch
	spec, err := specSchema(sch).Spec()
	if err != nil {
		e.errorf(srcRange.Ptr(), "Plugin declares an invalid config schema", "%s (%s): %v. This is a bug in the plugin; report it to its authors.", p.Address, p.Source, err)
		return
	}
	var body hcl.Body = hcl.EmptyBody()
	fallback := p.DeclRange
	if cfg != nil {
		body, fallback = cfg.Body, cfg.DefRange
	} else {
		missing := false
		for _, a := range sch.Block.Attributes {
			if a.Required {
				e.errorf(p.DeclRange.Ptr(), "Missing plugin config", "%s (%s) needs a config block with %s set: add config { %s = ... }.", p.Address, p.Source, a.Name, a.Name)
				missing = true
			}
		}
		if missing {
			return
		}
	}
	if !e.checkTraversals(hcldec.Variables(body, spec), allRoots) {
		return
	}
	if e.credentialMisuse(p, body, &sch.Block) {
		return
	}
	val, diags := hcldec.Decode(body, spec, e.general())
	e.diags = append(e.diags, diags...)
	if diags.HasErrors() || !val.IsWhollyKnown() {
		return
	}
	w := &configWalk{e: e, p: p}
	before := len(e.diags)
	w.block(&sch.Block, val, body, nil, fallback)
	if e.diags[before:].HasErrors() {
		return
	}
	unmarked, pvm := val.UnmarkDeepWithPaths()
	for _, pm := range pvm {
		if _, ok := pm.Marks[markSensitive]; ok {
			w.sensitive = append(w.sensitive, pathStrings(pm.Path))
		}
	}
	raw, err := schema.EncodeJSON(unmarked)
	if err != nil {
		e.errorf(fallback.Ptr(), "Cannot encode plugin config", "%s: %v", p.Address, err)
		return
	}
	p.Config = raw
	p.DisplayConfig = redact(raw, w.sensitive)
	// The plugin judges its config with each credential as a placeholder
	// string: the declared type is string, and the value exists only in
	// the host, at Configure time.
	forPlugin, err := ResolveCredentials(raw, p.Credentials, func(name string) (string, error) {
		return CredentialPlaceholder(name), nil
	})
	if err != nil {
		e.errorf(fallback.Ptr(), "Cannot encode plugin config", "%s: %v", p.Address, err)
		return
	}
	verdicts, err := e.loader.opts.Schemas.ValidateConfig(e.ctx, p.Kind, p.schemaSource(), forPlugin)
	if err != nil {
		e.errorf(srcRange.Ptr(), "Cannot validate plugin config", "%s: asking the plugin failed: %v", p.Address, err)
		return
	}
	for _, d := range verdicts {
		sev := d.Severity
		if sev != hcl.DiagWarning {
			sev = hcl.DiagError
		}
		rng := configRange(body, &sch.Block, d.Path, fallback)
		detail := d.Detail
		if detail == "" {
			detail = "Reported by the plugin " + p.Source + "."
		}
		e.diags = append(e.diags, &hcl.Diagnostic{Severity: sev, Summary: d.Summary, Detail: detail, Subject: rng.Ptr()})
	}
}

// specSchema returns a copy of s in which credential attributes accept
// any value, because credential() yields a placeholder object rather than
// the declared string; configWalk then insists on a credential there.
func specSchema(s *schema.Schema) *schema.Schema {
	return &schema.Schema{Block: relaxBlock(s.Block)}
}

func relaxBlock(b schema.Block) schema.Block {
	out := schema.Block{Description: b.Description}
	for _, a := range b.Attributes {
		if a.Credential {
			a.Type, a.Default = "any", nil
		}
		out.Attributes = append(out.Attributes, a)
	}
	for _, nb := range b.Blocks {
		nb.Block = relaxBlock(nb.Block)
		out.Blocks = append(out.Blocks, nb)
	}
	return out
}

// configWalk visits a decoded config beside its schema and source body.
type configWalk struct {
	e         *evaluator
	p         *Plugin
	sensitive [][]string
}

func (w *configWalk) block(b *schema.Block, val cty.Value, body hcl.Body, path []string, fallback hcl.Range) {
	if val.IsNull() || !val.Type().IsObjectType() {
		return
	}
	for _, a := range b.Attributes {
		if !val.Type().HasAttribute(a.Name) {
			continue
		}
		av := val.GetAttr(a.Name)
		ap := append(append([]string{}, path...), a.Name)
		rng := configRange(body, b, []string{a.Name}, fallback)
		w.attribute(a, av, ap, rng)
	}
	for _, nb := range b.Blocks {
		if !val.Type().HasAttribute(nb.Name) {
			continue
		}
		nv, _ := val.GetAttr(nb.Name).Unmark()
		if nv.IsNull() {
			continue
		}
		blocks := nestedBlocks(body, nb)
		switch nb.Nesting {
		case schema.NestingSingle:
			if len(blocks) > 0 {
				w.block(&nb.Block, nv, blocks[0].Body, append(append([]string{}, path...), nb.Name), blocks[0].DefRange)
			}
		case schema.NestingList:
			for i := 0; i < nv.LengthInt() && i < len(blocks); i++ {
				ev := nv.Index(cty.NumberIntVal(int64(i)))
				w.block(&nb.Block, ev, blocks[i].Body, append(append([]string{}, path...), nb.Name, strconv.Itoa(i)), blocks[i].DefRange)
			}
		case schema.NestingMap:
			for _, blk := range blocks {
				if len(blk.Labels) != 1 {
					continue
				}
				label := blk.Labels[0]
				var ev cty.Value
				switch {
				case nv.Type().IsObjectType() && nv.Type().HasAttribute(label):
					ev = nv.GetAttr(label)
				case nv.Type().IsMapType():
					ev = nv.Index(cty.StringVal(label))
				default:
					continue
				}
				w.block(&nb.Block, ev, blk.Body, append(append([]string{}, path...), nb.Name, label), blk.DefRange)
			}
		}
	}
}

func (w *configWalk) attribute(a schema.Attribute, v cty.Value, path []string, rng hcl.Range) {
	e := w.e
	switch {
	case a.Credential:
		if v.IsNull() {
			return
		}
		name, ok := credentialName(v)
		if !ok {
			e.errorf(rng.Ptr(), "Credential required", "%s takes a credential reference, not a value: write %s = credential(\"NAME\") and store the secret with the host (nemoclave provider). Literal secrets are refused so they never land in files, plans or logs.", a.Name, a.Name)
			return
		}
		w.p.Credentials = append(w.p.Credentials, CredentialRef{Path: path, Name: name})
		e.checkCredential(name, rng)
		return
	case v.HasMarkDeep(markCredential):
		e.errorf(rng.Ptr(), "credential() not allowed here", "%s (%s) does not declare %s as a credential, so it cannot hold credential(). Only credential attributes are resolved by the host; anything else would reach the plugin as a placeholder.", w.p.Address, w.p.Source, a.Name)
		return
	}
	if a.PluginKind != "" && !v.IsNull() {
		addr, ok := refAddress(v)
		prefix := "plugin." + a.PluginKind + "."
		if !ok || !strings.HasPrefix(addr, prefix) {
			got := "a value"
			if ok {
				got = addr
			}
			e.errorf(rng.Ptr(), "Expected a plugin reference", "%s must refer to a plugin of kind %s, as in %s = plugin.%s.<name>; got %s.", a.Name, a.PluginKind, a.Name, a.PluginKind, got)
			return
		}
		if addr == w.p.Address {
			e.errorf(rng.Ptr(), "Plugin refers to itself", "%s cannot be wired to itself; name another %s plugin.", a.Name, a.PluginKind)
			return
		}
		w.p.Wiring = append(w.p.Wiring, PluginWire{Path: path, Kind: a.PluginKind, Name: strings.TrimPrefix(addr, prefix)})
	}
	if a.Sensitive && !v.IsNull() {
		w.sensitive = append(w.sensitive, path)
	}
}

// nestedBlocks returns the blocks of one nested type in body.
func nestedBlocks(body hcl.Body, nb schema.NestedBlock) hcl.Blocks {
	hs := hcl.BlockHeaderSchema{Type: nb.Name}
	if nb.Nesting == schema.NestingMap {
		hs.LabelNames = []string{"name"}
	}
	content, _, _ := body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{hs}})
	if content == nil {
		return nil
	}
	return content.Blocks
}

// configRange maps an attribute path (as plugins report it) to the range
// of that attribute or nested block in the config body. Paths that go
// inside an attribute's value (a map key) resolve to the attribute.
func configRange(body hcl.Body, b *schema.Block, path []string, fallback hcl.Range) hcl.Range {
	if len(path) == 0 || b == nil {
		return fallback
	}
	for _, a := range b.Attributes {
		if a.Name != path[0] {
			continue
		}
		content, _, _ := body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: a.Name}}})
		if content != nil && content.Attributes[a.Name] != nil {
			return content.Attributes[a.Name].Expr.Range()
		}
		return fallback
	}
	for _, nb := range b.Blocks {
		if nb.Name != path[0] {
			continue
		}
		blocks := nestedBlocks(body, nb)
		rest := path[1:]
		var blk *hcl.Block
		switch {
		case nb.Nesting == schema.NestingSingle && len(blocks) > 0:
			blk = blocks[0]
		case nb.Nesting == schema.NestingList && len(rest) > 0:
			if i, err := strconv.Atoi(rest[0]); err == nil && i >= 0 && i < len(blocks) {
				blk, rest = blocks[i], rest[1:]
			}
		case nb.Nesting == schema.NestingMap && len(rest) > 0:
			for _, c := range blocks {
				if c.Labels[0] == rest[0] {
					blk, rest = c, rest[1:]
				}
			}
		}
		if blk == nil {
			return fallback
		}
		return configRange(blk.Body, &nb.Block, rest, blk.DefRange)
	}
	return fallback
}

// pathStrings converts a cty path to the string form of attribute paths.
func pathStrings(p cty.Path) []string {
	var out []string
	for _, s := range p {
		switch s := s.(type) {
		case cty.GetAttrStep:
			out = append(out, s.Name)
		case cty.IndexStep:
			if s.Key.Type() == cty.String {
				out = append(out, s.Key.AsString())
			} else if s.Key.Type() == cty.Number {
				out = append(out, s.Key.AsBigFloat().Text('f', -1))
			}
		}
	}
	return out
}

// redact replaces the values at paths with "(sensitive)".
func redact(raw json.RawMessage, paths [][]string) json.RawMessage {
	if len(paths) == 0 {
		return raw
	}
	var root any
	if err := json.Unmarshal(raw, &root); err != nil {
		return raw
	}
	for _, p := range paths {
		if n, err := replaceAt(root, p, func(any) (any, error) { return "(sensitive)", nil }); err == nil {
			root = n
		}
	}
	out, err := json.Marshal(root)
	if err != nil {
		return raw
	}
	return out
}

// credentialMisuse reports credential() in attributes the plugin does not
// declare as credentials. It runs before decoding because type conversion
// would otherwise report a confusing "string required, but have object".
func (e *evaluator) credentialMisuse(p *Plugin, body hcl.Body, b *schema.Block) bool {
	bs := &hcl.BodySchema{}
	for _, a := range b.Attributes {
		bs.Attributes = append(bs.Attributes, hcl.AttributeSchema{Name: a.Name})
	}
	for _, nb := range b.Blocks {
		hs := hcl.BlockHeaderSchema{Type: nb.Name}
		if nb.Nesting == schema.NestingMap {
			hs.LabelNames = []string{"name"}
		}
		bs.Blocks = append(bs.Blocks, hs)
	}
	content, _, _ := body.PartialContent(bs)
	if content == nil {
		return false
	}
	found := false
	for _, a := range b.Attributes {
		attr := content.Attributes[a.Name]
		if attr == nil || a.Credential {
			continue
		}
		v, _ := attr.Expr.Value(e.general())
		if v.HasMarkDeep(markCredential) {
			e.errorf(attr.Expr.Range().Ptr(), "credential() not allowed here", "%s (%s) does not declare %s as a credential, so it cannot hold credential(). Only attributes a plugin declares as credentials are resolved by the host; a credential anywhere else would reach the plugin as a placeholder, or leak.", p.Address, p.Source, a.Name)
			found = true
		}
	}
	for _, nb := range b.Blocks {
		for _, blk := range content.Blocks.OfType(nb.Name) {
			found = e.credentialMisuse(p, blk.Body, &nb.Block) || found
		}
	}
	return found
}
