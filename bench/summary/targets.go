package main

// A target is one measure a row of the performance targets holds us to. Row
// names the row of the targets table (area and what) so a reader can find it;
// Better says which direction wins; Peers are the baselines measured beside
// ours, and RatioTo names the one the ratio is taken against.
type target struct {
	Name    string
	Row     string
	Unit    string
	Target  float64
	Better  string // "lower" or "higher"
	RatioTo string // the peer the ratio is taken against ("" when none)
	Note    string
	// Scale, when set, is the size the target is stated for: a value
	// measured at a smaller size (a quick run's smaller store) is not
	// compared with the target at all.
	Scale *scale
}

// A scale is the size a target is stated for: the measure's Extra[Key]
// must be at least Min, else the figure was taken at another scale.
type scale struct {
	Key  string // the Extra field holding the measured size
	Min  float64
	What string // what the size counts, for the message ("vectors")
}

// targets is the targets table of docs/architecture.md's performance section
// (PERFORMANCE.md in the design notes), one entry per figure. A row with two
// thresholds (p50 and p99) has two entries. Never lower a target here to make
// a number pass.
var targets = []target{
	{Name: "sandbox_create_exec_exit_ratio_bwrap", Row: "sandbox | create → agent exec'd → exit", Unit: "×", Target: 1.5, Better: "lower",
		Note: "median of nemoclave local sandbox (every protection on) / median of bwrap with equivalent namespaces; value is the ratio"},
	{Name: "sandbox_create_exec_exit_p50_ms", Row: "sandbox | create → agent exec'd → exit", Unit: "ms", Target: 20, Better: "lower", RatioTo: "bwrap",
		Note: "absolute median (earlier target, kept for trend)"},
	{Name: "sandbox_concurrent50_p99_ms", Row: "sandbox | 50 sandboxes created concurrently", Unit: "ms", Target: 500, Better: "lower"},
	{Name: "gateway_added_p50_ms_c64", Row: "inference gateway | added latency, non-streaming, 1 KB responses, 64 concurrent clients", Unit: "ms", Target: 1, Better: "lower", RatioTo: "portkey"},
	{Name: "gateway_added_p99_ms_c64", Row: "inference gateway | added latency, non-streaming, 1 KB responses, 64 concurrent clients", Unit: "ms", Target: 5, Better: "lower", RatioTo: "portkey"},
	{Name: "gateway_ttft_added_p50_ms_c1", Row: "inference gateway | time to first token added, streaming", Unit: "ms", Target: 1, Better: "lower"},
	{Name: "gateway_ttft_added_p50_ms_c64", Row: "inference gateway | time to first token added, streaming", Unit: "ms", Target: 1, Better: "lower"},
	{Name: "gateway_throughput_rps_c64", Row: "inference gateway | throughput on 2 cores", Unit: "req/s", Target: 5000, Better: "higher", RatioTo: "portkey"},
	{Name: "egress_connect_added_p50_us", Row: "egress proxy | CONNECT setup added latency", Unit: "µs", Target: 150, Better: "lower", RatioTo: "squid"},
	{Name: "egress_bulk_pct_of_direct", Row: "egress proxy | bulk transfer through a CONNECT tunnel", Unit: "%", Target: 80, Better: "higher", RatioTo: "squid"},
	{Name: "plugin_roundtrip_p50_us", Row: "plugins | unary round trip host → plugin → host", Unit: "µs", Target: 40, Better: "lower", RatioTo: "in_process"},
	{Name: "plugin_cold_start_p50_ms", Row: "plugins | plugin cold start", Unit: "ms", Target: 30, Better: "lower"},
	{Name: "retrieval_exact_p50_ms", Row: "retrieval | top-10 query over 100k 384-dim vectors", Unit: "ms", Target: 5, Better: "lower", RatioTo: "plain_loop",
		Note: "exact search; recall@10 must be 1.0; the target is for 100k vectors (see vectors)", Scale: &scale{"vectors", 100_000, "vectors"}},
	{Name: "retrieval_approx_p50_ms", Row: "retrieval | top-10 query over 100k 384-dim vectors", Unit: "ms", Target: 5, Better: "lower",
		Note: "HNSW at the default ef_search; the target is for 1M vectors at recall@10 ≥ 0.95 (see vectors and recall)", Scale: &scale{"vectors", 1_000_000, "vectors"}},
	{Name: "memory_recall_10k_p50_ms", Row: "memory | recall over 10k memories with embeddings", Unit: "ms", Target: 3, Better: "lower",
		Scale: &scale{"memories", 10_000, "memories"}},
	{Name: "run_cold_ms", Row: "runtime | nemoclave run of the quickstart", Unit: "ms", Target: 500, Better: "lower"},
	{Name: "run_warm_ms", Row: "runtime | nemoclave run of the quickstart", Unit: "ms", Target: 150, Better: "lower"},
	{Name: "rss_10_idle_sandboxes_mib", Row: "memory use | daemon plus plugin processes RSS with 10 idle sandboxes", Unit: "MiB", Target: 200, Better: "lower",
		Note: "the daemon's whole process tree: daemon, plugin processes, every sandbox's init and agent"},
	{Name: "binary_size_mb", Row: "footprint | size of the default local nemoclave binary", Unit: "MB", Target: 60, Better: "lower"},
}
