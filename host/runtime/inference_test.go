package runtime

import (
	"context"
	"strings"
	"testing"

	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
	"github.com/nemoclave/nemoclave/host/config"
)

func defaultRoute(t *testing.T, r *Runtime, sandbox string) *pb.Route {
	t.Helper()
	v, err := r.InferenceStatus(context.Background(), sandbox)
	if err != nil {
		t.Fatal(err)
	}
	st := v.Live[0]
	for _, rt := range st.Routes {
		if rt.Alias == st.Default {
			return rt
		}
	}
	t.Fatalf("no route for the default alias %q: %+v", st.Default, st)
	return nil
}

// inference set takes the provider as the blueprint names it (replay,
// llm.replay or plugin.llm.replay), asks the provider plugin for its models
// and refuses a provider or model the sandbox does not have, naming the
// choices, without changing the route.
func TestInferenceSetChecksProviderAndModel(t *testing.T) {
	t.Parallel()
	r, ctx := upRuntime(t)
	runDetached(ctx, t, r, withModel(oneAgent))
	_, err := r.InferenceSet(ctx, "box", "main", "replay")
	if err == nil || !strings.Contains(err.Error(), `no llm provider "main"`) || !strings.Contains(err.Error(), "replay") {
		t.Fatalf("unknown provider: %v", err)
	}
	_, err = r.InferenceSet(ctx, "box", "replay", "gpt-nonexistent")
	if err == nil || !strings.Contains(err.Error(), `does not list model "gpt-nonexistent"`) || !strings.Contains(err.Error(), "replay") {
		t.Fatalf("unknown model: %v", err)
	}
	if rt := defaultRoute(t, r, "box"); rt.Model != "replayed" {
		t.Fatalf("a refused set changed the route: %+v", rt)
	}
	for _, name := range []string{"replay", "llm.replay", "plugin.llm.replay"} {
		if _, err := r.InferenceSet(ctx, "", name, "replay"); err != nil {
			t.Fatalf("provider %q: %v", name, err)
		}
		if rt := defaultRoute(t, r, "box"); rt.Provider != "plugin.llm.replay" || rt.Model != "replay" {
			t.Fatalf("after set with %q: %+v", name, rt)
		}
	}
	if _, err := r.DeleteSandbox(ctx, "box"); err != nil {
		t.Fatal(err)
	}
}

// config.yaml's default (inference set without --sandbox) is applied to a
// new run whose blueprint loads that provider, and ignored by one that
// does not.
func TestConfigDefaultAppliesToNewRuns(t *testing.T) {
	t.Parallel()
	r, ctx := upRuntime(t)
	if err := config.Save(r.opts.Home, &config.Config{Inference: config.Inference{Provider: "replay", Model: "replay"}}); err != nil {
		t.Fatal(err)
	}
	runDetached(ctx, t, r, withModel(oneAgent))
	if rt := defaultRoute(t, r, "box"); rt.Provider != "plugin.llm.replay" || rt.Model != "replay" {
		t.Fatalf("config.yaml's default was not applied: %+v", rt)
	}
	if _, err := r.DeleteSandbox(ctx, "box"); err != nil {
		t.Fatal(err)
	}
	if err := config.Save(r.opts.Home, &config.Config{Inference: config.Inference{Provider: "nvidia", Model: "x"}}); err != nil {
		t.Fatal(err)
	}
	runDetached(ctx, t, r, withModel(oneAgent))
	if rt := defaultRoute(t, r, "box"); rt.Provider != "plugin.llm.replay" || rt.Model != "replayed" {
		t.Fatalf("a default for a provider the blueprint lacks changed its route: %+v", rt)
	}
	if _, err := r.DeleteSandbox(ctx, "box"); err != nil {
		t.Fatal(err)
	}
}
