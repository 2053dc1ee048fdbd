package sdktest

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// Launcher starts the plugin binary at path and completes the handshake.
// The default (plugin.Launch of path as a plain child process with a
// minimal environment) is what a plugin author's test uses; a host passes
// its own to run the suite through its real launch path (verification,
// sandbox).
type Launcher func(ctx context.Context, t *testing.T, path string) (*plugin.Launched, error)

// WithLauncher replaces how RunBinary starts the binary.
func WithLauncher(l Launcher) Option { return func(o *options) { o.launcher = l } }

// WithEnv adds KEY=VALUE entries to the environment of a binary started
// by RunBinary's default launcher (which passes only PATH and a fresh
// HOME: the test's environment is not inherited, as the host's is not).
func WithEnv(env ...string) Option { return func(o *options) { o.env = append(o.env, env...) } }

// binaryTarget is a plugin binary under test.
type binaryTarget struct {
	path     string
	launcher Launcher
}

// launch starts a fresh process of the binary for one suite (or one
// subtest of Common) and kills it when the test ends.
func (b *binaryTarget) launch(t *testing.T, ctx context.Context) *plugin.Client {
	t.Helper()
	l, err := b.launcher(ctx, t, b.path)
	if err != nil {
		t.Fatalf("sdktest: launch %s: %v", b.path, err)
	}
	t.Cleanup(l.Kill)
	return l.Client
}

// RunBinary runs the conformance suites against a built plugin binary of
// any language: it launches the binary through go-plugin as the host does
// (handshake, peer credentials, a process of its own), reads the kinds it
// declares in its Info, and runs Common and the suite of each of those
// kinds, each as a subtest named after it. Options are those of the
// suites (WithConfig, WithToolSample, WithDimensions, ...) plus
// WithLauncher and WithEnv. Each suite starts its own process, so a
// plugin must not rely on state kept between processes unless its
// StateDir is fixed with WithStateDir.
func RunBinary(t *testing.T, path string, opts ...Option) {
	t.Helper()
	o := collect(opts)
	if o.launcher == nil {
		o.launcher = defaultLauncher(o.env)
	}
	bin := &binaryTarget{path: path, launcher: o.launcher}
	ctx, cancel := context.WithTimeout(t.Context(), o.timeout)
	defer cancel()
	first := bin.launch(t, ctx)
	info, err := first.Info(ctx)
	if err != nil {
		t.Fatalf("sdktest: GetInfo of %s: %v", path, err)
	}
	opts = append(append([]Option(nil), opts...), func(o *options) { o.binary = bin })
	t.Run("common", func(t *testing.T) { Common(t, nil, opts...) })
	for _, k := range info.Kinds {
		suite, ok := suites[k]
		if !ok {
			t.Errorf("%s declares kind %q, which this SDK does not know (known: %v)", path, k, plugin.Kinds())
			continue
		}
		t.Run(string(k), func(t *testing.T) { suite(t, nil, opts...) })
	}
}

// suites maps each kind to its conformance suite.
var suites = map[plugin.Kind]func(*testing.T, plugin.Plugin, ...Option){
	plugin.KindLLM:        LLM,
	plugin.KindEmbeddings: Embeddings,
	plugin.KindRetrieval:  Retrieval,
	plugin.KindMemory:     Memory,
	plugin.KindTools:      Tools,
	plugin.KindDataProc:   DataProc,
}

func defaultLauncher(extra []string) Launcher {
	return func(ctx context.Context, t *testing.T, path string) (*plugin.Launched, error) {
		env := append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, extra...)
		return plugin.Launch(ctx, plugin.LaunchOptions{
			Path:   path,
			Env:    env,
			Logger: hclog.New(&hclog.LoggerOptions{Name: "plugin", Output: newTestWriter(t), Level: hclog.Debug}),
			// A failure bound only: an interpreter starting on a loaded
			// machine can take seconds.
			StartTimeout: time.Minute,
		})
	}
}

// testWriter sends the plugin's log lines to the test log, shown when a
// test fails or with -v. Lines after the test ended (the process being
// killed) are dropped: t.Log then panics.
type testWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func newTestWriter(t *testing.T) *testWriter {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
