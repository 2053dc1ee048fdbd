package main

import (
	_ "embed"
	"encoding/json"
	"fmt"
)

// missedEntry is what bench/summary/missed.json says about one measure: what
// was tried (with the commit or BENCHMARKS.md section), the figures that show
// where it stands (with the load they were taken at), and what would close
// the gap. Pending, when set, says the entry predates work still being merged
// and must be updated from its results.
type missedEntry struct {
	Tried    string `json:"tried"`
	Measured string `json:"measured"`
	Needed   string `json:"needed"`
	Pending  string `json:"pending,omitempty"`
}

//go:embed missed.json
var missedJSON []byte

// missed is missed.json, one entry per target name; TestMissedEntries
// checks every target has one, so a target that a run misses is never
// reported without them.
var missed = func() map[string]missedEntry {
	var m map[string]missedEntry
	if err := json.Unmarshal(missedJSON, &m); err != nil {
		panic(fmt.Sprintf("bench/summary/missed.json: %v", err))
	}
	return m
}()

// missedFor is the entry for a measure not met, or one that says it is
// missing (never nothing: a miss is never silent).
func missedFor(name string) *missedEntry {
	if e, ok := missed[name]; ok {
		return &e
	}
	return &missedEntry{Needed: "no entry for " + name + " in bench/summary/missed.json: add what was tried, what was measured and what would be needed"}
}
