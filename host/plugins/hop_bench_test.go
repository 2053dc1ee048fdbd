package plugins

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// Issue 20, the plugin hop: the same helper plugin launched three ways and
// called in turn in one loop, so machine noise hits all alike:
//
//   - before: AutoMTLS on the socket, every stream chunk its own gRPC
//     message (NEMOCLAVE_PLUGIN_COALESCE=off), as hosts and SDKs were;
//   - peercred: SO_PEERCRED instead of TLS, chunks still one by one;
//   - after: SO_PEERCRED and the chunks waiting in the plugin merged;
//   - after1p: after, with the plugin at GOMAXPROCS=1 (a diagnostic: most
//     of a plugin's CPU per call is the Go scheduler waking and polling).
//
// Each is measured on a 1 KB unary Embed and on a 50-event Forward
// stream (about 150 bytes per event, the shape of a chat completion
// stream). BenchmarkPluginHop reports every variant's min, p50 and p99
// latency, its plugin process's CPU per call and the host's (getrusage around
// each call of the sequential loop); the parallel benchmark
// runs 8 callers at once (a loaded gateway) and reports the same.

type hopVariant struct {
	name string
	l    *plugin.Launched
	fw   llm.Forwarder
	pid  int
}

func launchHopVariants(b *testing.B) []*hopVariant {
	b.Helper()
	m, _ := testManager(b, Options{})
	bin, err := m.Resolve("builtin/" + helperName)
	if err != nil {
		b.Fatal(err)
	}
	env := []string{helperEnv + "=serve", "PATH=" + os.Getenv("PATH")}
	for _, k := range []string{"NEMOCLAVE_TEST_CPUPROFILE", "NEMOCLAVE_TEST_CPUPROFILE_SECONDS"} {
		if v := os.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	var out []*hopVariant
	for _, v := range []struct {
		name     string
		tls      bool
		coalesce bool
		procs1   bool
	}{{"before", true, false, false}, {"peercred", false, false, false}, {"after", false, true, false}, {"after1p", false, true, true}} {
		e := env
		if !v.coalesce {
			e = append(e, "NEMOCLAVE_PLUGIN_COALESCE=off")
		}
		if v.procs1 {
			e = append(e, "GOMAXPROCS=1")
		}
		l, err := plugin.Launch(context.Background(), plugin.LaunchOptions{Path: bin.Path, Env: e, TLS: v.tls, StartTimeout: time.Minute, SocketDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(l.Kill)
		if _, err := l.Configure(context.Background(), plugin.ConfigureOptions{Config: []byte(`{"scale":1}`), StateDir: b.TempDir()}); err != nil {
			b.Fatal(err)
		}
		out = append(out, &hopVariant{name: v.name, l: l, fw: l.LLM().(llm.Forwarder), pid: l.Pid()})
	}
	return out
}

// forward50 runs one 50-event Forward and checks that every byte arrived.
func forward50(ctx context.Context, b *testing.B, f llm.Forwarder) int {
	var got bytes.Buffer
	msgs := 0
	err := f.Forward(ctx, &llm.ForwardRequest{Dialect: llm.DialectOpenAI, Path: "/chat/completions", Query: "events=50", Stream: true}, func(c *llm.ForwardChunk) error {
		msgs++
		got.Write(c.Data)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if n := strings.Count(got.String(), "data: "); n != 51 || !strings.HasSuffix(got.String(), "data: [DONE]\n\n") {
		b.Fatalf("got %d events, want 50 and [DONE]:\n%s", n, got.String())
	}
	return msgs
}

// cpuNanos is the CPU time pid's threads have used, in ns (the sum of
// /proc/<pid>/task/*/schedstat; threads that ended are not counted, and
// a Go plugin's threads live as long as it does).
func cpuNanos(pid int) int64 {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var sum int64
	for _, e := range ents {
		raw, err := os.ReadFile(dir + "/" + e.Name() + "/schedstat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(raw))
		if len(f) > 0 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			sum += n
		}
	}
	return sum
}

// selfCPU is the CPU time this process has used (all its threads):
// around one call of a sequential loop, what that call cost the host.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkPluginHop(b *testing.B) {
	vs := launchHopVariants(b)
	ctx := context.Background()
	for _, op := range []string{"unary", "stream50"} {
		b.Run(op, func(b *testing.B) {
			call := func(v *hopVariant) int {
				if op == "unary" {
					embedPayload(ctx, b, v.l.Embeddings())
					return 1
				}
				return forward50(ctx, b, v.fw)
			}
			lat := make([]latencies, len(vs))
			msgs := make([]int, len(vs))
			cpu0 := make([]int64, len(vs))
			for i, v := range vs {
				call(v) // warm up
				cpu0[i] = cpuNanos(v.pid)
			}
			hostCPU := make([]time.Duration, len(vs))
			n := 0
			for b.Loop() {
				for i, v := range vs {
					c0 := selfCPU()
					t0 := time.Now()
					msgs[i] += call(v)
					lat[i] = append(lat[i], time.Since(t0))
					hostCPU[i] += selfCPU() - c0
				}
				n++
			}
			b.StopTimer()
			for i, v := range vs {
				lat[i].report(b, v.name+"-")
				b.ReportMetric(float64(hostCPU[i].Nanoseconds())/float64(n), v.name+"-host-cpu-ns")
				b.ReportMetric(float64(cpuNanos(v.pid)-cpu0[i])/float64(n), v.name+"-plugin-cpu-ns")
				if op != "unary" {
					b.ReportMetric(float64(msgs[i])/float64(n), v.name+"-msgs")
				}
			}
		})
	}
}

// BenchmarkPluginHopParallel is the stream of BenchmarkPluginHop with 8
// callers at once, each cycling through the variants.
func BenchmarkPluginHopParallel(b *testing.B) {
	vs := launchHopVariants(b)
	ctx := context.Background()
	for _, v := range vs {
		forward50(ctx, b, v.fw)
	}
	var mu sync.Mutex
	lat := make([]latencies, len(vs))
	msgs := make([]int, len(vs))
	calls := make([]int, len(vs))
	cpu0 := make([]int64, len(vs))
	for i, v := range vs {
		cpu0[i] = cpuNanos(v.pid)
	}
	b.SetParallelism(4) // 8 callers on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			v := vs[i%len(vs)]
			t0 := time.Now()
			m := forward50(ctx, b, v.fw)
			d := time.Since(t0)
			mu.Lock()
			lat[i%len(vs)] = append(lat[i%len(vs)], d)
			msgs[i%len(vs)] += m
			calls[i%len(vs)]++
			mu.Unlock()
			i++
		}
	})
	b.StopTimer()
	for i, v := range vs {
		if calls[i] == 0 {
			continue
		}
		lat[i].report(b, v.name+"-")
		b.ReportMetric(float64(cpuNanos(v.pid)-cpu0[i])/float64(calls[i]), v.name+"-plugin-cpu-ns")
		b.ReportMetric(float64(msgs[i])/float64(calls[i]), v.name+"-msgs")
	}
}
