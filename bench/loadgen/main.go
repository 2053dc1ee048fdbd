// Command loadgen measures chat-completion latency, time to first token
// and throughput against several targets for bench/inference.sh. Targets
// are measured in alternation, round after round, so drift on a noisy
// machine hits all of them; it prints one JSON object per (round, target,
// mode) and a markdown summary of the medians across rounds.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Target is one endpoint to measure.
type Target struct {
	Name    string            `json:"name"`
	URL     string            `json:"url"` // full chat completions URL
	Headers map[string]string `json:"headers"`
}

// Result is one measurement run.
type Result struct {
	Round    int     `json:"round"`
	Target   string  `json:"target"`
	Mode     string  `json:"mode"` // unary or stream
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	RPS      float64 `json:"rps"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	// TTFT is the time to the first content chunk (stream mode).
	TTFTP50ms float64 `json:"ttft_p50_ms,omitempty"`
	TTFTP99ms float64 `json:"ttft_p99_ms,omitempty"`
	// Overhead is the gateway's own X-Nemoclave-Overhead-Ms, when sent.
	OverheadP50ms float64 `json:"overhead_p50_ms,omitempty"`
	OverheadP99ms float64 `json:"overhead_p99_ms,omitempty"`
	FirstErr      string  `json:"first_error,omitempty"`
	// CPUus is the CPU time (user+sys) each watched process spent per
	// request during this run, in µs ("loadgen" is this process).
	CPUus map[string]float64 `json:"cpu_us_per_request,omitempty"`
}

func main() {
	targetsFile := flag.String("targets", "", "JSON file: [{name, url, headers}]")
	conc := flag.Int("c", 64, "concurrent clients")
	dur := flag.Duration("d", 5*time.Second, "measured duration per run")
	warm := flag.Duration("warmup", 2*time.Second, "unmeasured warm-up per target before round 1")
	rounds := flag.Int("rounds", 3, "rounds")
	model := flag.String("model", "gpt-test", "model field")
	modesFlag := flag.String("modes", "unary,stream", "which modes to measure: unary, stream or both")
	cpuFlag := flag.String("cpu", "", "name=pid,… of processes whose CPU time per request to report (user+sys from /proc/<pid>/stat, sampled around each measured run); loadgen's own is added")
	flag.Parse()
	procs, err := parseProcs(*cpuFlag)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen: -cpu:", err)
		os.Exit(2)
	}
	b, err := os.ReadFile(*targetsFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	var targets []Target
	if err := json.Unmarshal(b, &targets); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen: targets:", err)
		os.Exit(1)
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4 * *conc,
		MaxIdleConnsPerHost: 2 * *conc,
		IdleConnTimeout:     time.Minute,
	}, Timeout: 30 * time.Second}
	var modes []bool
	for _, m := range strings.Split(*modesFlag, ",") {
		switch strings.TrimSpace(m) {
		case "unary":
			modes = append(modes, false)
		case "stream":
			modes = append(modes, true)
		default:
			fmt.Fprintf(os.Stderr, "loadgen: -modes: %q is neither unary nor stream\n", m)
			os.Exit(2)
		}
	}
	for _, t := range targets {
		for _, mode := range modes {
			measure(client, t, *model, mode, *conc, *warm)
		}
	}
	var all []Result
	for r := 1; r <= *rounds; r++ {
		for _, mode := range modes {
			for _, t := range targets {
				before := cpuSample(procs)
				res := measure(client, t, *model, mode, *conc, *dur)
				res.CPUus = cpuPerRequest(procs, before, cpuSample(procs), res.Requests+res.Errors)
				res.Round = r
				out, _ := json.Marshal(res)
				fmt.Println(string(out))
				all = append(all, res)
			}
		}
	}
	summarise(all, targets)
	if len(procs) > 0 {
		summariseCPU(all, targets, procs, *conc)
	}
}

func measure(client *http.Client, t Target, model string, stream bool, conc int, d time.Duration) Result {
	body := []byte(fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"benchmark"}],"stream":%v}`, model, stream))
	var mu sync.Mutex
	var lat, ttft, over []time.Duration
	errs, firstErr := 0, ""
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				l, f, o, err := one(client, t, body, stream)
				mu.Lock()
				if err != nil {
					errs++
					if firstErr == "" {
						firstErr = err.Error()
					}
				} else {
					lat = append(lat, l)
					if stream {
						ttft = append(ttft, f)
					}
					if o >= 0 {
						over = append(over, o)
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	mode := "unary"
	if stream {
		mode = "stream"
	}
	res := Result{Target: t.Name, Mode: mode, Requests: len(lat), Errors: errs, RPS: float64(len(lat)) / el.Seconds(),
		P50ms: pct(lat, 50), P99ms: pct(lat, 99), FirstErr: firstErr}
	if stream {
		res.TTFTP50ms, res.TTFTP99ms = pct(ttft, 50), pct(ttft, 99)
	}
	res.OverheadP50ms, res.OverheadP99ms = pct(over, 50), pct(over, 99)
	return res
}

// one sends a request and returns its latency, its time to first
// content chunk (streams) and the gateway's overhead header (-1 if none).
func one(client *http.Client, t Target, body []byte, stream bool) (time.Duration, time.Duration, time.Duration, error) {
	req, _ := http.NewRequest(http.MethodPost, t.URL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range t.Headers {
		req.Header.Set(k, v)
	}
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	over := time.Duration(-1)
	if h := resp.Header.Get("X-Nemoclave-Overhead-Ms"); h != "" {
		if ms, err := strconv.ParseFloat(h, 64); err == nil {
			over = time.Duration(ms * float64(time.Millisecond))
		}
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return 0, 0, 0, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	if !stream {
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil || n < 1000 {
			return 0, 0, 0, fmt.Errorf("short body (%d bytes): %v", n, err)
		}
		return time.Since(t0), 0, over, nil
	}
	var first time.Duration
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if first == 0 && strings.Contains(sc.Text(), `"content":"`) && !strings.Contains(sc.Text(), `"content":""`) {
			first = time.Since(t0)
		}
	}
	if first == 0 {
		return 0, 0, 0, fmt.Errorf("stream had no content chunk")
	}
	return time.Since(t0), first, over, sc.Err()
}

func pct(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return float64(s[i].Microseconds()) / 1000
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func summarise(all []Result, targets []Target) {
	type key struct{ target, mode string }
	by := map[key][]Result{}
	for _, r := range all {
		by[key{r.Target, r.Mode}] = append(by[key{r.Target, r.Mode}], r)
	}
	med := func(k key, f func(Result) float64) float64 {
		var xs []float64
		for _, r := range by[k] {
			xs = append(xs, f(r))
		}
		return median(xs)
	}
	base := targets[0].Name
	fmt.Println()
	fmt.Println("| target | mode | p50 ms | p99 ms | added p50 ms | added p99 ms | TTFT p50 ms | added TTFT p50 ms | req/s | errors | gateway's own overhead p50/p99 ms |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	for _, mode := range []string{"unary", "stream"} {
		b := key{base, mode}
		for _, t := range targets {
			k := key{t.Name, mode}
			if len(by[k]) == 0 {
				continue // a mode not measured (-modes)
			}
			p50, p99 := med(k, func(r Result) float64 { return r.P50ms }), med(k, func(r Result) float64 { return r.P99ms })
			ttft := med(k, func(r Result) float64 { return r.TTFTP50ms })
			errs := 0
			for _, r := range by[k] {
				errs += r.Errors
			}
			added := func(x, y float64) string {
				if t.Name == base {
					return "—"
				}
				return fmt.Sprintf("%+.2f", x-y)
			}
			ttftS, addTTFT := "—", "—"
			if mode == "stream" {
				ttftS = fmt.Sprintf("%.2f", ttft)
				addTTFT = added(ttft, med(b, func(r Result) float64 { return r.TTFTP50ms }))
			}
			// Any error makes the row a failure to measure: figures from
			// the requests that happened to succeed (say, past a rate
			// limiter refusing half of them) describe something else.
			if errs > 0 {
				ok, first := 0, ""
				for _, r := range by[k] {
					ok += r.Requests
					if first == "" {
						first = r.FirstErr
					}
				}
				fmt.Printf("| %s | %s | failed: %d errors of %d requests, e.g. %s | | | | | | | | |\n", t.Name, mode, errs, ok+errs, first)
				continue
			}
			ov := "—"
			if o50 := med(k, func(r Result) float64 { return r.OverheadP50ms }); o50 > 0 {
				ov = fmt.Sprintf("%.3f / %.3f", o50, med(k, func(r Result) float64 { return r.OverheadP99ms }))
			}
			fmt.Printf("| %s | %s | %.2f | %.2f | %s | %s | %s | %s | %.0f | %d | %s |\n", t.Name, mode, p50, p99,
				added(p50, med(b, func(r Result) float64 { return r.P50ms })), added(p99, med(b, func(r Result) float64 { return r.P99ms })),
				ttftS, addTTFT, med(k, func(r Result) float64 { return r.RPS }), errs, ov)
		}
	}
}
