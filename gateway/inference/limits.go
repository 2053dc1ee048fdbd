package inference

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// Budget caps one sandbox's usage per UTC day and calendar month. Zero
// fields are unlimited. Tokens count input plus output.
type Budget struct {
	TokensPerDay    int64
	TokensPerMonth  int64
	CostPerDayUSD   float64
	CostPerMonthUSD float64
}

// RateLimit caps one sandbox's request and token rates. Zero is
// unlimited. Tokens are charged when a call ends, so one large call may
// overdraw the minute; the next calls then wait for the bucket to refill.
type RateLimit struct {
	RequestsPerMinute int
	TokensPerMinute   int
	// Concurrent bounds the sandbox's requests in flight; zero means
	// DefaultConcurrent. One sandbox must not hold every provider
	// connection (or every budget reservation) on its own.
	Concurrent int
}

// DefaultConcurrent is the per-sandbox bound on requests in flight when
// the blueprint sets no rate_limit concurrent.
const DefaultConcurrent = 32

// Limits are a sandbox's budget and rate limits.
type Limits struct {
	Budget    Budget
	RateLimit RateLimit
}

// refusal says why a request was refused and when to retry.
type refusal struct {
	reason     string // budget or rate_limit
	message    string
	retryAfter time.Duration
}

// meter holds a sandbox's running totals for budgets and its rate-limit
// buckets. Totals are resumed from the UsageStore at router start, so a
// restart does not reset a budget.
type meter struct {
	mu     sync.Mutex
	limits Limits

	day, month           string
	dayTokens, monTokens int64
	dayCost, monCost     float64

	// reservedTokens and reservedCost are held by calls in flight: a call
	// reserves its worst case before it starts and settles after, so
	// concurrent calls cannot overshoot a budget by more than their own
	// estimation error.
	reservedTokens int64
	reservedCost   float64
	inflight       int

	reqBucket, tokBucket float64
	lastRefill           time.Time
}

func newMeter(l Limits, now time.Time) *meter {
	m := &meter{limits: l, lastRefill: now}
	m.reqBucket = float64(l.RateLimit.RequestsPerMinute)
	m.tokBucket = float64(l.RateLimit.TokensPerMinute)
	m.roll(now)
	return m
}

func (m *meter) setLimits(l Limits) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.limits = l
	m.reqBucket = min(m.reqBucket, float64(l.RateLimit.RequestsPerMinute))
	m.tokBucket = min(m.tokBucket, float64(l.RateLimit.TokensPerMinute))
}

// seed adds usage recorded before this router started.
func (m *meter) seed(dayTokens, monTokens int64, dayCost, monCost float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dayTokens += dayTokens
	m.monTokens += monTokens
	m.dayCost += dayCost
	m.monCost += monCost
}

func (m *meter) roll(now time.Time) {
	now = now.UTC()
	if d := now.Format("2006-01-02"); d != m.day {
		m.day, m.dayTokens, m.dayCost = d, 0, 0
	}
	if mo := now.Format("2006-01"); mo != m.month {
		m.month, m.monTokens, m.monCost = mo, 0, 0
	}
}

func (m *meter) refill(now time.Time) {
	el := now.Sub(m.lastRefill).Minutes()
	if el <= 0 {
		return
	}
	m.lastRefill = now
	rl := m.limits.RateLimit
	m.reqBucket = min(float64(rl.RequestsPerMinute), m.reqBucket+el*float64(rl.RequestsPerMinute))
	m.tokBucket = min(float64(rl.TokensPerMinute), m.tokBucket+el*float64(rl.TokensPerMinute))
}

// reservation is what a call holds against the budget while in flight.
type reservation struct {
	tokens int64
	cost   float64
}

// concurrency is the effective in-flight bound.
func (l RateLimit) concurrency() int {
	if l.Concurrent > 0 {
		return l.Concurrent
	}
	return DefaultConcurrent
}

// room is how many tokens the sandbox may still reserve today and this
// month (math.MaxInt64 without a token budget), and how many dollars (-1
// without a cost budget).
func (m *meter) room(now time.Time) (int64, float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.roll(now)
	room := int64(math.MaxInt64)
	b := m.limits.Budget
	if b.TokensPerDay > 0 {
		room = min(room, b.TokensPerDay-m.dayTokens-m.reservedTokens)
	}
	if b.TokensPerMonth > 0 {
		room = min(room, b.TokensPerMonth-m.monTokens-m.reservedTokens)
	}
	cost := -1.0
	if b.CostPerDayUSD > 0 {
		cost = max(b.CostPerDayUSD-m.dayCost-m.reservedCost, 0)
	}
	if b.CostPerMonthUSD > 0 {
		c := max(b.CostPerMonthUSD-m.monCost-m.reservedCost, 0)
		if cost < 0 || c < cost {
			cost = c
		}
	}
	return max(room, 0), cost
}

// admit checks budgets (with want reserved on top of what is used and
// reserved), the in-flight bound and rate limits; nil means go ahead, and
// the caller must settle want exactly once.
func (m *meter) admit(now time.Time, want reservation) *refusal {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.roll(now)
	b := m.limits.Budget
	utc := now.UTC()
	nextDay := time.Date(utc.Year(), utc.Month(), utc.Day()+1, 0, 0, 0, 0, time.UTC)
	nextMonth := time.Date(utc.Year(), utc.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	const fix = "raise the budget in the blueprint's inference block, lower max_tokens, or wait"
	dayT, monT := m.dayTokens+m.reservedTokens, m.monTokens+m.reservedTokens
	dayC, monC := m.dayCost+m.reservedCost, m.monCost+m.reservedCost
	held := ""
	if m.reservedTokens > 0 {
		held = fmt.Sprintf(" (%d of them reserved by requests in flight)", m.reservedTokens)
	}
	switch {
	case b.TokensPerDay > 0 && (dayT >= b.TokensPerDay || dayT+want.tokens > b.TokensPerDay):
		return &refusal{"budget", fmt.Sprintf("daily token budget exhausted: %d of %d tokens used today%s and this request reserves %d more; it resets at %s (%s)", dayT, b.TokensPerDay, held, want.tokens, nextDay.Format(time.RFC3339), fix), nextDay.Sub(now)}
	case b.TokensPerMonth > 0 && (monT >= b.TokensPerMonth || monT+want.tokens > b.TokensPerMonth):
		return &refusal{"budget", fmt.Sprintf("monthly token budget exhausted: %d of %d tokens used this month%s and this request reserves %d more; it resets at %s (%s)", monT, b.TokensPerMonth, held, want.tokens, nextMonth.Format(time.RFC3339), fix), nextMonth.Sub(now)}
	case b.CostPerDayUSD > 0 && (dayC >= b.CostPerDayUSD || dayC+want.cost > b.CostPerDayUSD):
		return &refusal{"budget", fmt.Sprintf("daily cost budget exhausted: $%.4f of $%.2f spent or reserved today and this request reserves up to $%.4f; it resets at %s (%s)", dayC, b.CostPerDayUSD, want.cost, nextDay.Format(time.RFC3339), fix), nextDay.Sub(now)}
	case b.CostPerMonthUSD > 0 && (monC >= b.CostPerMonthUSD || monC+want.cost > b.CostPerMonthUSD):
		return &refusal{"budget", fmt.Sprintf("monthly cost budget exhausted: $%.4f of $%.2f spent or reserved this month and this request reserves up to $%.4f; it resets at %s (%s)", monC, b.CostPerMonthUSD, want.cost, nextMonth.Format(time.RFC3339), fix), nextMonth.Sub(now)}
	}
	rl := m.limits.RateLimit
	if c := rl.concurrency(); m.inflight >= c {
		return &refusal{"rate_limit", fmt.Sprintf("rate limit: this sandbox may have %d inference requests in flight at once; retry when one finishes (raise rate_limit concurrent in the blueprint's inference block)", c), time.Second}
	}
	if rl.RequestsPerMinute > 0 || rl.TokensPerMinute > 0 {
		m.refill(now)
	}
	if rl.RequestsPerMinute > 0 && m.reqBucket < 1 {
		wait := time.Duration((1 - m.reqBucket) / float64(rl.RequestsPerMinute) * float64(time.Minute))
		return &refusal{"rate_limit", fmt.Sprintf("rate limit: this sandbox may send %d requests per minute; retry in %s", rl.RequestsPerMinute, wait.Round(time.Second)), wait}
	}
	if rl.TokensPerMinute > 0 && m.tokBucket <= 0 {
		wait := time.Duration((1 - m.tokBucket) / float64(rl.TokensPerMinute) * float64(time.Minute))
		return &refusal{"rate_limit", fmt.Sprintf("rate limit: this sandbox may use %d tokens per minute; retry in %s", rl.TokensPerMinute, wait.Round(time.Second)), wait}
	}
	if rl.RequestsPerMinute > 0 {
		m.reqBucket--
	}
	m.inflight++
	m.reservedTokens += want.tokens
	m.reservedCost += want.cost
	return nil
}

// settle releases an admitted call's reservation; its actual usage is
// charged separately (charge), before or after.
func (m *meter) settle(held reservation) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inflight--
	m.reservedTokens -= held.tokens
	m.reservedCost -= held.cost
}

// charge adds a finished call's usage.
func (m *meter) charge(now time.Time, tokens int64, cost float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.roll(now)
	m.dayTokens += tokens
	m.monTokens += tokens
	m.dayCost += cost
	m.monCost += cost
	if m.limits.RateLimit.TokensPerMinute > 0 {
		m.refill(now)
		m.tokBucket -= float64(tokens)
	}
}

// BudgetStatus is a sandbox's use against its budget.
type BudgetStatus struct {
	Budget         Budget  `json:"budget"`
	TokensToday    int64   `json:"tokens_today"`
	TokensMonth    int64   `json:"tokens_month"`
	CostTodayUSD   float64 `json:"cost_today_usd"`
	CostMonthUSD   float64 `json:"cost_month_usd"`
	RateLimit      RateLimit
	RequestsBucket float64 `json:"requests_available"`
	// ReservedTokens are held by requests in flight.
	ReservedTokens int64 `json:"reserved_tokens,omitempty"`
	InFlight       int   `json:"in_flight,omitempty"`
}

func (m *meter) status(now time.Time) BudgetStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.roll(now)
	return BudgetStatus{Budget: m.limits.Budget, TokensToday: m.dayTokens, TokensMonth: m.monTokens, CostTodayUSD: m.dayCost, CostMonthUSD: m.monCost, RateLimit: m.limits.RateLimit, RequestsBucket: m.reqBucket, ReservedTokens: m.reservedTokens, InFlight: m.inflight}
}
