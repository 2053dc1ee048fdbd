package inference

import (
	"fmt"
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
}

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

// admit checks budgets and rate limits and takes one request from the
// bucket; nil means go ahead.
func (m *meter) admit(now time.Time) *refusal {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.roll(now)
	b := m.limits.Budget
	utc := now.UTC()
	nextDay := time.Date(utc.Year(), utc.Month(), utc.Day()+1, 0, 0, 0, 0, time.UTC)
	nextMonth := time.Date(utc.Year(), utc.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	const fix = "raise the budget in the blueprint's inference block, or wait"
	switch {
	case b.TokensPerDay > 0 && m.dayTokens >= b.TokensPerDay:
		return &refusal{"budget", fmt.Sprintf("daily token budget exhausted: %d of %d tokens used today; it resets at %s (%s)", m.dayTokens, b.TokensPerDay, nextDay.Format(time.RFC3339), fix), nextDay.Sub(now)}
	case b.TokensPerMonth > 0 && m.monTokens >= b.TokensPerMonth:
		return &refusal{"budget", fmt.Sprintf("monthly token budget exhausted: %d of %d tokens used this month; it resets at %s (%s)", m.monTokens, b.TokensPerMonth, nextMonth.Format(time.RFC3339), fix), nextMonth.Sub(now)}
	case b.CostPerDayUSD > 0 && m.dayCost >= b.CostPerDayUSD:
		return &refusal{"budget", fmt.Sprintf("daily cost budget exhausted: $%.4f of $%.2f spent today; it resets at %s (%s)", m.dayCost, b.CostPerDayUSD, nextDay.Format(time.RFC3339), fix), nextDay.Sub(now)}
	case b.CostPerMonthUSD > 0 && m.monCost >= b.CostPerMonthUSD:
		return &refusal{"budget", fmt.Sprintf("monthly cost budget exhausted: $%.4f of $%.2f spent this month; it resets at %s (%s)", m.monCost, b.CostPerMonthUSD, nextMonth.Format(time.RFC3339), fix), nextMonth.Sub(now)}
	}
	rl := m.limits.RateLimit
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
	return nil
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
}

func (m *meter) status(now time.Time) BudgetStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.roll(now)
	return BudgetStatus{Budget: m.limits.Budget, TokensToday: m.dayTokens, TokensMonth: m.monTokens, CostTodayUSD: m.dayCost, CostMonthUSD: m.monCost, RateLimit: m.limits.RateLimit, RequestsBucket: m.reqBucket}
}
