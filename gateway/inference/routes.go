package inference

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nemoclave/nemoclave/sdk/llm"
)

// Routes are one sandbox's model aliases. The blueprint's inference block
// compiles to this; `nemoclave inference set` changes it at runtime.
type Routes struct {
	// Default is the alias used when a request names no model, or (unless
	// Strict) a model that is not an alias.
	Default string
	// Models maps an alias ("smart") to its route.
	Models map[string]Route
	// Strict refuses models that are neither an alias nor a route's
	// provider model, instead of sending them to Default. Agents often
	// hard-code a model name, so the default is lenient.
	Strict bool
	// Embeddings maps an alias to an embeddings route; DefaultEmbeddings
	// serves requests naming no known alias.
	Embeddings        map[string]EmbeddingsRoute
	DefaultEmbeddings string
}

// Route is where an alias goes.
type Route struct {
	// Provider names an entry of the router's providers
	// ("plugin.llm.nim").
	Provider string
	// Model is the provider's model name.
	Model string
	// Parameters fill request fields the agent left unset.
	Parameters Parameters
	// Fallback lists aliases tried in order when this route fails with an
	// error another provider might not have (rate limit, outage, timeout,
	// refused credential). Fallbacks' own fallbacks are not followed.
	Fallback []string
	// Retries is how many more times to try this route on a transient
	// failure (unavailable) before falling back. Retries and fallback
	// happen only before the first byte reaches the agent.
	Retries int
	// Timeout bounds a non-streaming call, and a streaming call until its
	// first chunk. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxTokensLimit is the largest max_tokens an agent may ask for on
	// this route; zero means DefaultMaxTokensLimit.
	MaxTokensLimit int64
	// MaxN is the largest number of choices (n) per request; zero means
	// DefaultMaxN.
	MaxN int64
	// Total bounds a whole call, a stream included to its last event
	// (timeouts.total); zero leaves streams unbounded once started.
	Total time.Duration
	// Connect bounds the provider plugin's dial to its provider for each
	// attempt (timeouts.connect), carried to the plugin with the call
	// (llm.WithConnectTimeout); zero leaves the plugin's own default.
	Connect time.Duration
}

// DefaultTimeout applies to routes without a Timeout.
const DefaultTimeout = 120 * time.Second

// Parameters are default sampling parameters; nil leaves the provider's.
type Parameters struct {
	Temperature *float64
	TopP        *float64
	MaxTokens   *int64
	// Extra is a JSON object of provider-specific fields merged under the
	// agent's own.
	Extra json.RawMessage
}

// EmbeddingsRoute is where an embeddings alias goes.
type EmbeddingsRoute struct {
	// Embedder names an entry of the router's embedders.
	Embedder string
	Model    string
}

// Validate checks that every alias the routes mention exists and every
// provider is known (providers may be nil to skip that check).
func (r Routes) Validate(providers map[string]llm.Provider) error {
	if len(r.Models) == 0 && len(r.Embeddings) == 0 {
		return fmt.Errorf("no model routes: declare at least one model in the blueprint's inference block")
	}
	if r.Default != "" {
		if _, ok := r.Models[r.Default]; !ok {
			return fmt.Errorf("default model alias %q is not declared (declared: %s)", r.Default, strings.Join(r.aliases(), ", "))
		}
	}
	for alias, rt := range r.Models {
		if rt.Provider == "" || rt.Model == "" {
			return fmt.Errorf("model %q: provider and model are both required", alias)
		}
		if providers != nil {
			if _, ok := providers[rt.Provider]; !ok {
				return fmt.Errorf("model %q: provider %q is not loaded (loaded: %s)", alias, rt.Provider, strings.Join(keys(providers), ", "))
			}
		}
		for _, fb := range rt.Fallback {
			if _, ok := r.Models[fb]; !ok {
				return fmt.Errorf("model %q: fallback %q is not a declared model alias", alias, fb)
			}
			if fb == alias {
				return fmt.Errorf("model %q lists itself as a fallback", alias)
			}
		}
		if len(rt.Parameters.Extra) > 0 {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(rt.Parameters.Extra, &m); err != nil {
				return fmt.Errorf("model %q: parameters extra must be a JSON object: %w", alias, err)
			}
		}
	}
	if r.DefaultEmbeddings != "" {
		if _, ok := r.Embeddings[r.DefaultEmbeddings]; !ok {
			return fmt.Errorf("default embeddings alias %q is not declared", r.DefaultEmbeddings)
		}
	}
	return nil
}

func (r Routes) aliases() []string { return keys(r.Models) }

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// step is one attempt target of a chain.
type step struct {
	alias string
	route Route
}

// chain resolves a requested model to the routes to try, in order.
func (r Routes) chain(model string) ([]step, error) {
	alias, ok := r.resolve(model)
	if !ok {
		return nil, fmt.Errorf("model %q is not available in this sandbox; use one of: %s", model, strings.Join(r.aliases(), ", "))
	}
	rt := r.Models[alias]
	out := make([]step, 0, 1+len(rt.Fallback))
	out = append(out, step{alias, rt})
	for _, fb := range rt.Fallback {
		out = append(out, step{fb, r.Models[fb]})
	}
	return out, nil
}

// resolve maps a requested name to an alias: the alias itself, an alias
// whose provider model is that name, or (unless Strict) the default.
func (r Routes) resolve(model string) (string, bool) {
	if _, ok := r.Models[model]; ok {
		return model, true
	}
	if model != "" {
		for _, a := range r.aliases() {
			if r.Models[a].Model == model {
				return a, true
			}
		}
		if r.Strict {
			return "", false
		}
	}
	if r.Default == "" {
		return "", false
	}
	return r.Default, true
}

// apply returns the request to send on this route: the provider model,
// and route parameters where the agent set none.
func (rt Route) apply(req *llm.ChatRequest) *llm.ChatRequest {
	out := *req
	out.Model = rt.Model
	p := rt.Parameters
	if out.Temperature == nil {
		out.Temperature = p.Temperature
	}
	if out.TopP == nil {
		out.TopP = p.TopP
	}
	if out.MaxTokens == nil {
		out.MaxTokens = p.MaxTokens
	}
	if len(p.Extra) > 0 {
		out.Extra = mergeObjects(p.Extra, req.Extra)
	}
	return &out
}

// mergeObjects overlays over on base (both JSON objects; Validate checked
// base). A malformed over is ignored rather than failing the request.
func mergeObjects(base, over json.RawMessage) json.RawMessage {
	if len(over) == 0 {
		return base
	}
	var b, o map[string]json.RawMessage
	if json.Unmarshal(base, &b) != nil || json.Unmarshal(over, &o) != nil {
		return over
	}
	for k, v := range o {
		b[k] = v
	}
	out, err := json.Marshal(b)
	if err != nil {
		return over
	}
	return out
}

// callContext bounds a whole call by Total and carries Connect.
func (rt Route) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx = llm.WithConnectTimeout(ctx, rt.Connect)
	if rt.Total > 0 {
		return context.WithTimeout(ctx, rt.Total)
	}
	return context.WithCancel(ctx)
}

func (rt Route) timeout() time.Duration {
	if rt.Timeout > 0 {
		return rt.Timeout
	}
	return DefaultTimeout
}

// pastDeadline reports whether ctx's deadline has passed, even when its
// own timer has not fired yet: the plugin's side of the call carries the
// same deadline (gRPC propagates it), so the stream can end there a
// moment before ctx reports DeadlineExceeded here.
func pastDeadline(ctx context.Context) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}
