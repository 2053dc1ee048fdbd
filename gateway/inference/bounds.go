package inference

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// DefaultMaxBodyBytes bounds a request body when Config.MaxBodyBytes is
// zero. The plugin hop's gRPC limit (plugin.MaxMessageBytes) is above it,
// so every body the router accepts reaches the provider plugin.
const DefaultMaxBodyBytes = 32 << 20

// DefaultMaxTokensLimit and DefaultMaxN bound max_tokens and n on routes
// that set no limit of their own: one request must not reserve (or cost)
// more than any real model can produce.
const (
	DefaultMaxTokensLimit = 65536
	DefaultMaxN           = 8
)

// RefusalEvent is an audited refusal: the sandbox asked for a call its
// budget or rate limit did not allow.
type RefusalEvent struct {
	Time     time.Time `json:"time"`
	Sandbox  string    `json:"sandbox"`
	Endpoint string    `json:"endpoint"`
	Model    string    `json:"model"`
	// Reason is budget or rate_limit.
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

func (r *Router) auditRefusal(endpoint, model string, ref *refusal) {
	if r.audit == nil {
		return
	}
	r.audit(RefusalEvent{Time: r.now(), Sandbox: r.sandbox, Endpoint: endpoint, Model: model, Reason: ref.reason, Message: ref.message})
}

func (rt Route) maxTokensLimit() int64 {
	if rt.MaxTokensLimit > 0 {
		return rt.MaxTokensLimit
	}
	return DefaultMaxTokensLimit
}

func (rt Route) maxN() int64 {
	if rt.MaxN > 0 {
		return rt.MaxN
	}
	return DefaultMaxN
}

// choices reads n from the request's extra fields (absent: 1).
func choices(extra json.RawMessage) (int64, error) {
	if len(extra) == 0 {
		return 1, nil
	}
	var f struct {
		N *json.Number `json:"n"`
	}
	if err := json.Unmarshal(extra, &f); err != nil || f.N == nil {
		return 1, nil
	}
	n, err := f.N.Int64()
	if err != nil || n < 1 {
		return 0, fmt.Errorf("n must be a positive whole number, got %s", f.N.String())
	}
	return n, nil
}

// bound checks the request against its route's max_tokens and n limits
// and works out what the call must reserve against the budget: the prompt
// estimate plus max_tokens × n. A request that sets no max_tokens gets the
// largest one that fits both the route's limit and what is left of the
// budget, so its worst case is still bounded. A non-empty message is a
// 400 for the agent.
func (r *Router) bound(c *chatCall, s step) (reservation, string) {
	var (
		n      int64
		mt     *int64
		prompt int64
	)
	switch {
	case c.req != nil:
		var err error
		if n, err = choices(c.req.Extra); err != nil {
			return reservation{}, err.Error()
		}
		mt = c.req.MaxTokens
		prompt = promptTokens(c)
	case c.raw != nil:
		// A body the gateway does not translate (a content or item type
		// it does not model) may still be forwarded as it is: its limits
		// are read from the raw body, and a limit the gateway cannot read
		// refuses the call rather than let it go out unbounded.
		var err error
		if mt, n, err = rawLimits(c.raw); err != nil {
			return reservation{}, err.Error()
		}
		prompt = int64(len(c.raw.body)/4 + 1)
	default:
		return reservation{}, ""
	}
	if n > s.route.maxN() {
		return reservation{}, fmt.Sprintf("n = %d exceeds the limit of %d choices for model %q; ask for fewer (or raise max_n in the blueprint's model block)", n, s.route.maxN(), s.alias)
	}
	limit := s.route.maxTokensLimit()
	if mt == nil {
		mt = s.route.Parameters.MaxTokens
	}
	if mt != nil && *mt > limit {
		return reservation{}, fmt.Sprintf("max_tokens = %d exceeds the limit of %d for model %q; ask for fewer (or raise max_tokens_limit in the blueprint's model block)", *mt, limit, s.alias)
	}
	if mt != nil && *mt < 0 {
		return reservation{}, fmt.Sprintf("max_tokens must not be negative, got %d", *mt)
	}
	out := limit
	if mt != nil {
		out = *mt
	} else {
		// Fit the unset max_tokens into what the token and cost budgets
		// have left, so the worst case the provider may produce is what
		// was reserved. Without that pressure the request goes out as the
		// agent sent it: many models refuse a max_tokens above their own
		// output limit.
		room, costRoom := r.meter.room(r.now())
		fit := out
		if room-prompt < fit*n {
			fit = (room - prompt) / n
		}
		if perOut := r.prices.Cost(s.route.Model, 0, 0, 1); perOut > 0 && costRoom >= 0 {
			byCost := (costRoom - r.prices.Cost(s.route.Model, prompt, 0, 0)) / perOut / float64(n)
			if byCost < float64(fit) {
				fit = int64(byCost)
			}
		}
		if fit < out {
			out = max(fit, 1)
			if c.req != nil {
				req := *c.req
				req.MaxTokens = &out
				c.req = &req
			}
			// A forwarded body gets it too (forwardBody).
			c.maxOut = &out
		}
	}
	tokens := prompt + out*n
	return reservation{tokens: tokens, cost: r.prices.Cost(s.route.Model, prompt, 0, out*n)}, ""
}

// rawLimits reads max_tokens (or the dialect's name for it) and n from
// a body the gateway forwards without having decoded it. Each must be a
// whole number when present; model and stream, which decide the route
// and how the answer is relayed, must have their types.
func rawLimits(rc *rawCall) (mt *int64, n int64, err error) {
	m, err := rc.object()
	if err != nil {
		return nil, 0, fmt.Errorf("request body must be a JSON object: %v", err)
	}
	if v, ok := m["model"]; ok {
		var s string
		if json.Unmarshal(v, &s) != nil {
			return nil, 0, fmt.Errorf("model must be a string, got %s", v)
		}
	}
	if v, ok := m["stream"]; ok && string(v) != "null" {
		var b bool
		if json.Unmarshal(v, &b) != nil {
			return nil, 0, fmt.Errorf("stream must be true or false, got %s", v)
		}
	}
	whole := func(key string) (*int64, error) {
		v, ok := m[key]
		if !ok || string(v) == "null" {
			return nil, nil
		}
		var num json.Number
		// A number, not a string holding one (json.Number takes both).
		if v[0] == '"' || json.Unmarshal(v, &num) != nil {
			return nil, fmt.Errorf("%s must be a whole number, got %s", key, v)
		}
		i, err := num.Int64()
		if err != nil {
			return nil, fmt.Errorf("%s must be a whole number, got %s", key, v)
		}
		return &i, nil
	}
	var keys []string
	switch {
	case rc.path == "/responses":
		keys = []string{"max_output_tokens"}
	case rc.dialect == llm.DialectOpenAI:
		keys = []string{"max_completion_tokens", "max_tokens"}
	default:
		keys = []string{"max_tokens"}
	}
	for _, k := range keys {
		v, err := whole(k)
		if err != nil {
			return nil, 0, err
		}
		if v != nil && (mt == nil || *v > *mt) {
			mt = v
		}
	}
	n = 1
	if rc.dialect == llm.DialectOpenAI && rc.path == "/chat/completions" {
		v, err := whole("n")
		if err != nil {
			return nil, 0, err
		}
		if v != nil {
			if *v < 1 {
				return nil, 0, fmt.Errorf("n must be a positive whole number, got %d", *v)
			}
			n = *v
		}
	}
	return mt, n, nil
}

// promptTokens estimates the request's input tokens (about four bytes
// each), the same way usage is estimated when a provider reports none.
func promptTokens(c *chatCall) int64 {
	in := len(c.req.System)
	for _, m := range c.req.Messages {
		in += len(m.Text())
		for _, tc := range m.ToolCalls {
			in += len(tc.Arguments)
		}
	}
	for _, t := range c.req.Tools {
		in += len(t.Description) + len(t.Parameters)
	}
	return int64(in/4 + 1)
}

// tooLarge reports a message-size refusal of the plugin hop, which gRPC
// reports as ResourceExhausted (the code the SDK also uses for 429).
func tooLarge(err error) bool {
	return status.CodeOf(err) == status.RateLimited && strings.Contains(err.Error(), "message larger than max")
}
