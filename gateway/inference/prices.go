package inference

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

//go:embed data/prices.json
var defaultPricesJSON []byte

// Price is USD per million tokens. CachedInput applies to the cached part
// of the input; zero means the input price.
type Price struct {
	Input       float64 `json:"input"`
	CachedInput float64 `json:"cached_input,omitempty"`
	Output      float64 `json:"output"`
}

// PriceTable maps provider model names to prices. A name matches exactly,
// else the longest key that is its prefix (so "gpt-4o-2024-08-06" is
// priced as "gpt-4o"), else it has no price and costs nothing (a cost
// budget cannot limit an unpriced model: give it a price).
type PriceTable map[string]Price

// DefaultPrices returns the shipped table (gateway/inference/data/prices.json).
func DefaultPrices() PriceTable {
	t, err := parsePrices(defaultPricesJSON)
	if err != nil {
		panic(fmt.Sprintf("embedded price table: %v", err)) // caught by tests
	}
	return t
}

func parsePrices(b []byte) (PriceTable, error) {
	var f struct {
		Models PriceTable `json:"models"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	return f.Models, nil
}

// LoadPrices reads a price file of the embedded format ({"models": {name:
// {input, cached_input, output}}}) and overlays it on the defaults.
func LoadPrices(path string) (PriceTable, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read price table: %w", err)
	}
	over, err := parsePrices(b)
	if err != nil {
		return nil, fmt.Errorf("price table %s: %w (expected {\"models\": {\"<model>\": {\"input\": 2.5, \"output\": 10}}})", path, err)
	}
	t := DefaultPrices()
	for k, v := range over {
		t[k] = v
	}
	return t, nil
}

// Lookup finds the price of model.
func (t PriceTable) Lookup(model string) (Price, bool) {
	if p, ok := t[model]; ok {
		return p, true
	}
	best := ""
	for k := range t {
		if strings.HasPrefix(model, k) && len(k) > len(best) {
			best = k
		}
	}
	if best == "" {
		return Price{}, false
	}
	return t[best], true
}

// Cost prices a call in USD.
func (t PriceTable) Cost(model string, in, cached, out int64) float64 {
	p, ok := t.Lookup(model)
	if !ok {
		return 0
	}
	cachedPrice := p.CachedInput
	if cachedPrice == 0 {
		cachedPrice = p.Input
	}
	return (float64(in-cached)*p.Input + float64(cached)*cachedPrice + float64(out)*p.Output) / 1e6
}
