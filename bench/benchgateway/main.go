// Command benchgateway serves one sandbox's inference router for
// bench/inference.sh: the real llm-openai plugin binary, launched over
// go-plugin, pointed at an upstream, with the SQLite usage store and
// Prometheus metrics on, as the daemon runs it. It prints
// "listening on <url>".
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nemoclave/nemoclave/gateway/inference"
	"github.com/nemoclave/nemoclave/plugins/llm-openai/openaiplugin"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/plugin"
)

func main() {
	upstream := flag.String("upstream", "", "OpenAI-compatible API root including /v1")
	key := flag.String("key", "", "upstream API key (given to the plugin only)")
	pluginPath := flag.String("plugin", "bin/nemoclave-plugin-llm-openai", "llm-openai plugin binary")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	inProcess := flag.Bool("inprocess", false, "diagnostic: call the llm-openai provider in-process instead of launching the plugin (no gRPC hop)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the gateway here until it exits")
	var pluginEnv []string
	flag.Func("plugin-env", "KEY=VALUE added to the plugin's environment (repeatable), e.g. GOMAXPROCS=1 to measure the plugin on one P", func(v string) error {
		if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
			return fmt.Errorf("%q: want KEY=VALUE", v)
		}
		pluginEnv = append(pluginEnv, v)
		return nil
	})
	concurrent := flag.Int("concurrent", 1024, "the sandbox's bound on inference requests in flight (a blueprint's rate_limit concurrent); above the load generator's clients, so the bench measures the gateway, not the limiter")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	if err := run(*upstream, *key, *pluginPath, *addr, *inProcess, *concurrent, pluginEnv); err != nil {
		fmt.Fprintln(os.Stderr, "benchgateway:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(upstream, key, pluginPath, addr string, inProcess bool, concurrent int, pluginEnv []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, _ := json.Marshal(map[string]any{"base_url": upstream, "api_key": key})
	var provider llm.Provider
	if inProcess {
		p := openaiplugin.New()
		if err := p.Configure(ctx, plugin.Config{JSON: cfg}, nil); err != nil {
			return err
		}
		provider = p
	} else {
		p, err := plugin.Launch(ctx, plugin.LaunchOptions{Path: pluginPath, Env: pluginEnv})
		if err != nil {
			return fmt.Errorf("launch %s: %w", pluginPath, err)
		}
		defer p.Kill()
		if diags, err := p.Configure(ctx, plugin.ConfigureOptions{Config: cfg}); err != nil || len(diags) > 0 {
			return fmt.Errorf("configure plugin: %v %v", err, diags)
		}
		provider = p.LLM()
	}
	dir, err := os.MkdirTemp("", "benchgateway-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	store, err := inference.OpenSQLiteUsage(filepath.Join(dir, inference.UsageFileName))
	if err != nil {
		return err
	}
	defer store.Close()
	metrics, err := inference.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		return err
	}
	r, err := inference.New(ctx, inference.Config{
		Sandbox:   "bench",
		Routes:    inference.Routes{Default: "gpt", Models: map[string]inference.Route{"gpt": {Provider: "openai", Model: "gpt-test"}}},
		Providers: map[string]llm.Provider{"openai": provider},
		Usage:     store,
		Metrics:   metrics,
		// As a blueprint's `rate_limit { concurrent = N }`: the default (32)
		// would refuse half of 64 concurrent clients with 429.
		Limits: inference.Limits{RateLimit: inference.RateLimit{Concurrent: concurrent}},
	})
	if err != nil {
		return err
	}
	defer r.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: r}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
