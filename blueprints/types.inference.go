package blueprints

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Inference is the inference block: the model aliases agents may ask for,
// and the limits the gateway's router enforces per sandbox.
type Inference struct {
	// Default is the alias used when an agent names no model.
	Default   string     `json:"default"`
	Models    []*Model   `json:"models"`
	Budget    *Budget    `json:"budget,omitempty"`
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
}

// Model returns the model with the given alias, or nil.
func (in *Inference) Model(alias string) *Model {
	if in == nil {
		return nil
	}
	for _, m := range in.Models {
		if m.Alias == alias {
			return m
		}
	}
	return nil
}

// Model is one route: an alias agents use, served by an llm plugin.
type Model struct {
	Alias string `json:"alias"`
	// Provider is the name of the llm plugin (plugin.llm.<Provider>).
	Provider string `json:"provider"`
	// Model is the provider's model id.
	Model string `json:"model"`
	// Parameters are default request parameters (temperature, max_tokens,
	// ...) the router applies when the request does not set them.
	Parameters json.RawMessage `json:"parameters,omitempty"`
	// Fallback aliases are tried in order when this one fails before the
	// first byte reaches the client.
	Fallback []string `json:"fallback,omitempty"`
	Timeouts Timeouts `json:"timeouts"`
	// Price, in USD per million tokens, lets cost budgets be metered.
	Price *Price `json:"price,omitempty"`
	// MaxTokensLimit bounds the max_tokens an agent may ask for, MaxN
	// the choices (n) per request; zero means the router's defaults.
	MaxTokensLimit int64 `json:"max_tokens_limit,omitempty"`
	MaxN           int64 `json:"max_n,omitempty"`
}

// Timeouts bound one upstream call. Zero means the router's default.
type Timeouts struct {
	Connect   Duration `json:"connect,omitempty"`
	FirstByte Duration `json:"first_byte,omitempty"`
	Total     Duration `json:"total,omitempty"`
}

// Price is what a model costs, in USD per million tokens.
type Price struct {
	InputPerMillion  float64 `json:"input_per_million"`
	OutputPerMillion float64 `json:"output_per_million"`
}

// Budget caps usage per sandbox. Zero fields are unlimited.
type Budget struct {
	TokensPerHour   int64   `json:"tokens_per_hour,omitempty"`
	TokensPerDay    int64   `json:"tokens_per_day,omitempty"`
	TokensPerMonth  int64   `json:"tokens_per_month,omitempty"`
	CostPerDayUSD   float64 `json:"cost_per_day_usd,omitempty"`
	CostPerMonthUSD float64 `json:"cost_per_month_usd,omitempty"`
}

// RateLimit throttles requests per sandbox. Zero fields are unlimited.
type RateLimit struct {
	RequestsPerMinute int `json:"requests_per_minute,omitempty"`
	TokensPerMinute   int `json:"tokens_per_minute,omitempty"`
	// Concurrent is the most requests in flight at once.
	Concurrent int `json:"concurrent,omitempty"`
}

// Duration is a time.Duration that reads and prints as "30s".
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

var inferenceSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "default"}},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "model", LabelNames: []string{"alias"}}, {Type: "budget"}, {Type: "rate_limit"},
	},
}

var modelSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "provider", Required: true}, {Name: "model", Required: true},
		{Name: "parameters"}, {Name: "fallback"}, {Name: "max_tokens_limit"}, {Name: "max_n"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "timeouts"}, {Type: "price"}},
}

var timeoutsSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "connect"}, {Name: "first_byte"}, {Name: "total"}}}
var priceSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "input_per_million", Required: true}, {Name: "output_per_million", Required: true}}}
var budgetSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "tokens_per_hour"}, {Name: "tokens_per_day"}, {Name: "tokens_per_month"},
	{Name: "cost_per_day_usd"}, {Name: "cost_per_month_usd"},
}}
var rateLimitSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "requests_per_minute"}, {Name: "tokens_per_minute"}, {Name: "concurrent"},
}}

func (e *evaluator) decodeInference(bp *Blueprint) *Inference {
	if len(e.decl.inference) == 0 {
		return nil
	}
	b := e.decl.inference[0]
	content, diags := e.expand(b.Body).Content(inferenceSchema)
	e.diags = append(e.diags, diags...)
	if content == nil {
		return nil
	}
	in := &Inference{Models: []*Model{}}
	modelBlocks := map[string]*hcl.Block{}
	for _, mb := range content.Blocks {
		switch mb.Type {
		case "model":
			alias := mb.Labels[0]
			if prev, ok := modelBlocks[alias]; ok {
				e.errorf(mb.LabelRanges[0].Ptr(), "Duplicate model alias", "model %q is already declared at %s.", alias, prev.DefRange)
				continue
			}
			modelBlocks[alias] = mb
			if m := e.decodeModel(mb); m != nil {
				in.Models = append(in.Models, m)
			}
		case "budget":
			if in.Budget != nil {
				e.errorf(mb.DefRange.Ptr(), "Duplicate budget block", "inference has one budget block.")
				continue
			}
			in.Budget = e.decodeBudget(mb)
		case "rate_limit":
			if in.RateLimit != nil {
				e.errorf(mb.DefRange.Ptr(), "Duplicate rate_limit block", "inference has one rate_limit block.")
				continue
			}
			in.RateLimit = e.decodeRateLimit(mb)
		}
	}
	if a := content.Attributes["default"]; a != nil {
		in.Default = e.str(a)
		if _, ok := modelBlocks[in.Default]; !ok && in.Default != "" {
			e.errorf(a.Expr.Range().Ptr(), "Unknown model alias", "default = %q names no model block%s. Declare model %q { ... } in this inference block.", in.Default, suggest(in.Default, sortedKeys(modelBlocks)), in.Default)
		}
	} else if len(modelBlocks) == 1 {
		in.Default = sortedKeys(modelBlocks)[0]
	} else if len(modelBlocks) > 1 {
		e.errorf(b.DefRange.Ptr(), "No default model", "inference declares %d models; say which one agents get by default with default = \"<alias>\".", len(modelBlocks))
	} else {
		e.errorf(b.DefRange.Ptr(), "No models", "An inference block needs at least one model \"<alias>\" { provider = plugin.llm.<name>, model = \"...\" }.")
	}
	e.checkFallbacks(in, modelBlocks)
	if in.Budget != nil && (in.Budget.CostPerDayUSD > 0 || in.Budget.CostPerMonthUSD > 0) {
		for _, m := range in.Models {
			if m.Price == nil {
				e.warnf(modelBlocks[m.Alias].DefRange.Ptr(), "Model has no price", "The cost budget cannot count model %q: add price { input_per_million = ..., output_per_million = ... }. Its tokens still count against token budgets.", m.Alias)
			}
		}
	}
	return in
}

func (e *evaluator) decodeModel(b *hcl.Block) *Model {
	content, diags := b.Body.Content(modelSchema)
	e.diags = append(e.diags, diags...)
	if diags.HasErrors() {
		return nil
	}
	m := &Model{Alias: b.Labels[0]}
	m.Provider = e.ref(content.Attributes["provider"], rootPlugin, "llm")
	before := len(e.diags)
	m.Model = e.str(content.Attributes["model"])
	if m.Model == "" {
		e.notNull(content.Attributes["model"], before, `"provider-model-id"`)
	}
	m.Fallback = e.strList(content.Attributes["fallback"])
	m.MaxTokensLimit = int64(e.whole(content.Attributes["max_tokens_limit"]))
	m.MaxN = int64(e.whole(content.Attributes["max_n"]))
	if a := content.Attributes["parameters"]; a != nil {
		if v, ok := e.attrValue(a, cty.DynamicPseudoType); ok {
			if !v.Type().IsObjectType() && !v.Type().IsMapType() {
				e.errorf(a.Expr.Range().Ptr(), "Invalid parameters", "parameters must be an object, as in parameters = { temperature = 0.2 }.")
			} else if raw, err := ctyjson.Marshal(v, v.Type()); err == nil {
				m.Parameters = raw
			}
		}
	}
	for _, nb := range content.Blocks {
		switch nb.Type {
		case "timeouts":
			tc, diags := nb.Body.Content(timeoutsSchema)
			e.diags = append(e.diags, diags...)
			m.Timeouts.Connect = e.duration(tc.Attributes["connect"])
			m.Timeouts.FirstByte = e.duration(tc.Attributes["first_byte"])
			m.Timeouts.Total = e.duration(tc.Attributes["total"])
		case "price":
			pc, diags := nb.Body.Content(priceSchema)
			e.diags = append(e.diags, diags...)
			m.Price = &Price{InputPerMillion: e.float(pc.Attributes["input_per_million"]), OutputPerMillion: e.float(pc.Attributes["output_per_million"])}
		}
	}
	return m
}

func (e *evaluator) duration(a *hcl.Attribute) Duration {
	s := e.str(a)
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		e.errorf(a.Expr.Range().Ptr(), "Invalid duration", "%s = %q: write a positive duration like \"30s\", \"2m\" or \"1h30m\".", a.Name, s)
		return 0
	}
	return Duration(d)
}

func (e *evaluator) decodeBudget(b *hcl.Block) *Budget {
	c, diags := b.Body.Content(budgetSchema)
	e.diags = append(e.diags, diags...)
	if a := c.Attributes["tokens_per_hour"]; a != nil {
		// The gateway meters budgets per UTC day and month only; refusing
		// here keeps validate from passing what run would reject.
		e.errorf(a.Expr.Range().Ptr(), "Unsupported budget window",
			"tokens_per_hour is not enforced by the gateway: use tokens_per_day or tokens_per_month, or rate_limit { tokens_per_minute = N } for a short window.")
	}
	return &Budget{
		TokensPerHour: int64(e.whole(c.Attributes["tokens_per_hour"])), TokensPerDay: int64(e.whole(c.Attributes["tokens_per_day"])),
		TokensPerMonth: int64(e.whole(c.Attributes["tokens_per_month"])),
		CostPerDayUSD:  e.float(c.Attributes["cost_per_day_usd"]), CostPerMonthUSD: e.float(c.Attributes["cost_per_month_usd"]),
	}
}

func (e *evaluator) decodeRateLimit(b *hcl.Block) *RateLimit {
	c, diags := b.Body.Content(rateLimitSchema)
	e.diags = append(e.diags, diags...)
	return &RateLimit{
		RequestsPerMinute: e.whole(c.Attributes["requests_per_minute"]),
		TokensPerMinute:   e.whole(c.Attributes["tokens_per_minute"]),
		Concurrent:        e.whole(c.Attributes["concurrent"]),
	}
}

// checkFallbacks requires every fallback alias to exist and the chains to
// end: a loop would retry forever.
func (e *evaluator) checkFallbacks(in *Inference, blocks map[string]*hcl.Block) {
	for _, m := range in.Models {
		content, _, _ := blocks[m.Alias].Body.PartialContent(modelSchema)
		rng := blocks[m.Alias].DefRange
		if a := content.Attributes["fallback"]; a != nil {
			rng = a.Expr.Range()
		}
		for _, f := range m.Fallback {
			if _, ok := blocks[f]; !ok {
				e.errorf(rng.Ptr(), "Unknown fallback model", "fallback %q names no model block%s.", f, suggest(f, sortedKeys(blocks)))
			} else if f == m.Alias {
				e.errorf(rng.Ptr(), "Model falls back to itself", "model %q lists itself in fallback; name other aliases.", f)
			}
		}
	}
	// Walk each chain; any alias seen twice on one path is a loop.
	for _, m := range in.Models {
		var walk func(alias string, path []string) bool
		walk = func(alias string, path []string) bool {
			for _, p := range path {
				if p == alias {
					rng := blocks[m.Alias].DefRange
					e.errorf(rng.Ptr(), "Fallback loop", "Model fallbacks loop: %s. Break the loop so a failing request ends.", strings.Join(append(path, alias), " → "))
					return false
				}
			}
			next := in.Model(alias)
			if next == nil {
				return true
			}
			for _, f := range next.Fallback {
				if f != alias && !walk(f, append(path, alias)) {
					return false
				}
			}
			return true
		}
		if !walk(m.Alias, nil) {
			return
		}
	}
}
