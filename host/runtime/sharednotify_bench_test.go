package runtime

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox"
)

var benchSandboxes = []string{"sb0", "sb1", "sb2", "sb3", "sb4"}

// BenchmarkSharedAnswerApplied measures answer-to-applied on PostgreSQL
// state: a request held on replica A, answered on replica B, the time from
// B's AnswerApproval call until the held request's response arrives.
// Two pairs of replicas run side by side, alternated round by round: one
// only polls (the 0.5 s fallback, the way it was before notifications),
// one is notified (LISTEN/NOTIFY). Each answer comes after a random pause
// (0–0.5 s, not timed). Reported: median and max per mode.
// NEMOCLAVE_TEST_POSTGRES_URL as for the tests (scripts/test-postgres.sh).
func BenchmarkSharedAnswerApplied(b *testing.B) {
	const rounds = 20
	ctx := context.Background()
	upl, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		b.Skipf("no 127.0.0.2 to serve the upstream on: %v", err)
	}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	up.Listener.Close()
	up.Listener = upl
	up.Start()
	defer up.Close()
	port := upl.Addr().(*net.TCPAddr).Port
	lo := netip.MustParseAddr("127.0.0.2")

	type pair struct {
		name    string
		a, b    *Runtime
		egressA []string // by sandbox
		took    []time.Duration
	}
	mk := func(name string, noListen bool) *pair {
		stateURL := postgresState(b, "bench_"+name)
		p := &pair{name: name}
		for i := range 2 {
			r, err := New(ctx, Options{Home: b.TempDir(), StateURL: stateURL, Executable: "/bin/true", PluginBinDir: pluginDir,
				Drivers:        map[string]sandbox.Driver{"local": newFakeDriver(0)},
				EgressResolver: nameResolver{"new.test": lo}, UnsafeAllowLoopback: true, sharedNoListen: noListen})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { r.Close(context.Background()) })
			// Approvals are rate-limited per sandbox (a burst of 10):
			// the rounds go round several sandboxes.
			for _, sb := range benchSandboxes {
				pol := &policy.Policy{Name: "bench", Revision: 1, UnknownHosts: policy.UnknownAsk, Filesystem: policy.Filesystem{ReadOnly: []string{"/usr"}}}
				if err := r.egress.SetPolicy(sb, pol); err != nil {
					b.Fatal(err)
				}
				if i != 0 {
					continue
				}
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				sctx, cancel := context.WithCancel(ctx)
				go r.egress.Serve(sctx, ln, sb)
				b.Cleanup(cancel)
				p.egressA = append(p.egressA, ln.Addr().String())
			}
			if i == 0 {
				p.a = r
			} else {
				p.b = r
			}
		}
		deadline := time.Now().Add(60 * time.Second)
		for !noListen && !(p.a.shared.listening.Load() && p.b.shared.listening.Load()) {
			if time.Now().After(deadline) {
				b.Fatal("the replicas do not listen")
			}
			time.Sleep(10 * time.Millisecond)
		}
		return p
	}
	pairs := []*pair{mk("poll", true), mk("notify", false)}
	round := func(p *pair, n int) {
		egressA := p.egressA[n%len(p.egressA)]
		res := make(chan error, 1)
		go func() {
			code, _, err := throughEgress(egressA, fmt.Sprintf("http://new.test:%d/", port))
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("status %d", code)
			}
			res <- err
		}()
		var id string
		deadline := time.Now().Add(60 * time.Second)
		for id == "" {
			list, err := p.b.ListApprovals(ctx, "")
			if err != nil {
				b.Fatal(err)
			}
			if len(list) > 0 {
				id = list[0].Id
			} else if time.Now().After(deadline) {
				b.Fatal("the held request is not listed on B")
			} else {
				time.Sleep(5 * time.Millisecond)
			}
		}
		// Operators answer at any moment, not in step with a poll: a
		// random pause breaks the rounds' phase lock with the ticker.
		time.Sleep(rand.N(sharedSyncInterval))
		start := time.Now()
		if _, err := p.b.AnswerApproval(ctx, id, true, "once"); err != nil {
			b.Fatal(err)
		}
		if err := <-res; err != nil {
			b.Fatal(err)
		}
		p.took = append(p.took, time.Since(start))
	}
	b.ResetTimer()
	for range b.N {
		for n := range rounds {
			for _, p := range pairs {
				round(p, n)
			}
		}
	}
	b.StopTimer()
	for _, p := range pairs {
		slices.Sort(p.took)
		b.ReportMetric(float64(p.took[len(p.took)/2].Microseconds())/1000, p.name+"-p50-ms")
		b.ReportMetric(float64(p.took[len(p.took)-1].Microseconds())/1000, p.name+"-max-ms")
	}
}
