package inference

import (
	"context"
	"time"
)

// UsageRecord is the metered outcome of one model call.
type UsageRecord struct {
	Time     time.Time
	Sandbox  string
	Alias    string
	Provider string
	Model    string
	// Operation is chat or embeddings.
	Operation         string
	InputTokens       int64
	OutputTokens      int64
	CachedInputTokens int64
	CostUSD           float64
	// Estimated is set when the provider reported no usage and the
	// gateway estimated it from text length.
	Estimated bool
}

// UsageQuery selects records for Totals. Empty Sandbox means all.
type UsageQuery struct {
	Sandbox string
	Since   time.Time
}

// UsageTotal sums records per sandbox and model.
type UsageTotal struct {
	Sandbox           string  `json:"sandbox"`
	Alias             string  `json:"alias"`
	Provider          string  `json:"provider"`
	Model             string  `json:"model"`
	Requests          int64   `json:"requests"`
	InputTokens       int64   `json:"input_tokens"`
	OutputTokens      int64   `json:"output_tokens"`
	CachedInputTokens int64   `json:"cached_input_tokens"`
	CostUSD           float64 `json:"cost_usd"`
}

// UsageStore persists usage. The router writes in batches from one
// goroutine; Totals is read at router start (to resume budgets) and by
// `nemoclave inference status`. Implementations must be safe for
// concurrent use.
type UsageStore interface {
	Add(ctx context.Context, records []UsageRecord) error
	Totals(ctx context.Context, q UsageQuery) ([]UsageTotal, error)
	Close() error
}
