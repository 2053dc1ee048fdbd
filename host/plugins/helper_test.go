package plugins

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nemoclave/nemoclave/sandbox/pluginbox"
	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// The test binary doubles as the plugins and hosts under test, in the style
// of go-plugin's helper processes: when helperEnv is set, TestMain runs the
// helper instead of the tests.
const (
	helperEnv  = "NEMOCLAVE_TEST_HELPER"
	pidFileEnv = "NEMOCLAVE_TEST_PIDFILE"
	// releaseFileEnv names a file the test creates once it has received
	// the chunk a "crash-mid-stream" helper sends before dying.
	releaseFileEnv = "NEMOCLAVE_TEST_RELEASE"
	binDirEnv      = "NEMOCLAVE_TEST_BINDIR"
)

// helperName is the builtin name the test binary is exposed under.
const helperName = "embeddings-helper"

func TestMain(m *testing.M) {
	// Re-executed as a plugin box's init stage (python_test.go), this
	// binary builds the box and execs the plugin; it never returns then.
	pluginbox.MaybeInit()
	mode := os.Getenv(helperEnv)
	if mode == "" && os.Getenv(plugin.Handshake.MagicCookieKey) == plugin.Handshake.MagicCookieValue {
		mode = "serve" // launched as a plugin without a mode: by Install's probe, inspect or list
	}
	if mode == "" {
		os.Exit(m.Run())
	}
	if f := os.Getenv(pidFileEnv); f != "" {
		_ = os.WriteFile(f, []byte(strconv.Itoa(os.Getpid())), 0o600)
	}
	switch mode {
	case "serve":
		profileHelper()
		plugin.Serve(&helperPlugin{})
	case "noise":
		fmt.Println("hello from a chatty plugin")
		plugin.Serve(&helperPlugin{})
	case "bad-handshake":
		fmt.Println("9|1|unix|/nonexistent.sock|grpc|")
		time.Sleep(time.Minute)
	case "debug":
		plugin.Serve(&helperPlugin{}, plugin.WithDebug())
	case "slow":
		time.Sleep(time.Minute)
		plugin.Serve(&helperPlugin{})
	case "ignore-shutdown":
		plugin.Serve(&helperPlugin{})
		time.Sleep(time.Hour) // Serve returned on the host's shutdown request; refuse to exit
	case "host":
		helperHost()
	case "raw-host":
		helperRawHost()
	case "close-host":
		helperCloseHost()
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", helperEnv, mode)
		os.Exit(2)
	}
	os.Exit(0)
}

// profileHelper writes a CPU profile of the helper plugin's first
// NEMOCLAVE_TEST_CPUPROFILE_SECONDS (default 10) to the file named by
// NEMOCLAVE_TEST_CPUPROFILE, for profiling the plugin side of the hop:
//
//	NEMOCLAVE_TEST_CPUPROFILE=/tmp/plugin.pprof go test -run '^$' -bench PluginHop ./host/plugins
func profileHelper() {
	path := os.Getenv("NEMOCLAVE_TEST_CPUPROFILE")
	if path == "" {
		return
	}
	secs, err := strconv.Atoi(os.Getenv("NEMOCLAVE_TEST_CPUPROFILE_SECONDS"))
	if err != nil || secs <= 0 {
		secs = 10
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid()))
	if err != nil || pprof.StartCPUProfile(f) != nil {
		return
	}
	time.AfterFunc(time.Duration(secs)*time.Second, func() { pprof.StopCPUProfile(); f.Close() })
}

// helperPlugin is an embeddings and llm plugin whose Embed crashes on "crash",
// returns a plugin-level Unavailable on "unavailable", and forwards to its
// wired embeddings plugin for model "via-wire". Info's description carries
// its environment so tests can see exactly what reached it.
type helperPlugin struct {
	llm.NotSupported // ChatStream overrides; Chat and ListModels are not needed
	mu               sync.Mutex
	scale            float32
	host             plugin.Host
}

type helperConfig struct {
	Scale float32 `json:"scale"`
}

func (*helperPlugin) Info() plugin.Info {
	return plugin.Info{
		Name: helperName, Version: "1.2.3",
		Description: environJSON(),
		Kinds:       []plugin.Kind{plugin.KindEmbeddings, plugin.KindLLM},
	}
}

func (*helperPlugin) ConfigSchema() *schema.Schema {
	return &schema.Schema{Block: schema.Block{Attributes: []schema.Attribute{
		{Name: "scale", Type: "number", Default: json.RawMessage("1"), Description: "Multiplies every vector."},
		{Name: "embeddings", PluginKind: "embeddings", Description: "Used for model via-wire."},
	}}}
}

func (*helperPlugin) ValidateConfig(_ context.Context, raw json.RawMessage) []plugin.Diagnostic {
	c := helperConfig{Scale: 1}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &c); err != nil {
			return []plugin.Diagnostic{plugin.Errorf(nil, "%v", err)}
		}
	}
	if c.Scale <= 0 {
		return []plugin.Diagnostic{plugin.Errorf([]string{"scale"}, "scale must be positive, got %v", c.Scale)}
	}
	return nil
}

func (p *helperPlugin) Configure(_ context.Context, cfg plugin.Config, host plugin.Host) error {
	c := helperConfig{Scale: 1}
	if err := cfg.Decode(&c); err != nil {
		return err
	}
	p.mu.Lock()
	p.scale, p.host = c.Scale, host
	p.mu.Unlock()
	hclog.New(&hclog.LoggerOptions{Name: helperName, JSONFormat: true, Output: os.Stderr}).Info("configured", "scale", c.Scale)
	return nil
}

func (p *helperPlugin) Embed(ctx context.Context, req *embeddings.EmbedRequest) (*embeddings.EmbedResponse, error) {
	p.mu.Lock()
	scale, host := p.scale, p.host
	p.mu.Unlock()
	if req.Model == "via-wire" {
		e, err := host.Embeddings("embeddings")
		if err != nil {
			return nil, err
		}
		return e.Embed(ctx, &embeddings.EmbedRequest{Inputs: req.Inputs})
	}
	out := &embeddings.EmbedResponse{Model: "helper", Vectors: make([][]float32, len(req.Inputs))}
	for i, in := range req.Inputs {
		switch in {
		case "crash":
			os.Exit(3)
		case "panic":
			panic("helper plugin panicked on purpose")
		case "unavailable":
			return nil, status.Errorf(status.Unavailable, "upstream down")
		}
		out.Vectors[i] = helperVector(in, scale)
	}
	return out, nil
}

// ChatStream streams the last message's text one byte per chunk; for
// "crash-mid-stream" it sends one chunk and dies once the test has it (the
// file $NEMOCLAVE_TEST_RELEASE exists: gRPC writes a sent message later, on
// its own goroutine, so exiting at once, or after a fixed pause on a loaded
// machine, could lose it), for "stall-mid-stream" it sends one chunk and
// then nothing until cancelled.
func (*helperPlugin) ChatStream(ctx context.Context, req *llm.ChatRequest, send func(*llm.ChatChunk) error) error {
	text := req.Messages[len(req.Messages)-1].Text()
	for i := range len(text) {
		if err := send(&llm.ChatChunk{DeltaText: text[i : i+1]}); err != nil {
			return err
		}
		if text == "stall-mid-stream" {
			<-ctx.Done() // a provider that stops sending
			return ctx.Err()
		}
		if text == "crash-mid-stream" {
			release := os.Getenv(releaseFileEnv)
			for deadline := time.Now().Add(time.Minute); release != "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if _, err := os.Stat(release); err == nil {
					break
				}
			}
			os.Exit(3)
		}
	}
	return send(&llm.ChatChunk{FinishReason: llm.FinishStop})
}

// Forward answers with an event stream of n events ("events=n" as the
// query, 50 by default), each about 150 bytes, handed over one by one as
// a provider reading an upstream's stream does.
func (*helperPlugin) Forward(ctx context.Context, req *llm.ForwardRequest, send func(*llm.ForwardChunk) error) error {
	n := 50
	if v, ok := strings.CutPrefix(req.Query, "events="); ok {
		n, _ = strconv.Atoi(v)
	}
	if err := send(&llm.ForwardChunk{Status: 200, Headers: map[string]string{"content-type": "text/event-stream"}}); err != nil {
		return err
	}
	for i := range n {
		ev := fmt.Sprintf("data: {\"id\":\"chatcmpl-helper\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"w%03d \"}}]}\n\n", i)
		if err := send(&llm.ForwardChunk{Data: []byte(ev)}); err != nil {
			return err
		}
	}
	return send(&llm.ForwardChunk{Data: []byte("data: [DONE]\n\n")})
}

func (*helperPlugin) Dimensions(context.Context, string) (int, error) { return helperDims, nil }

const helperDims = 64

// environJSON is the process environment as a JSON list (values may hold
// newlines: the AutoMTLS certificate does).
func environJSON() string {
	b, _ := json.Marshal(os.Environ())
	return string(b)
}

// helperVector hashes byte trigrams into helperDims buckets: a little real
// work, the same in and out of process.
func helperVector(s string, scale float32) []float32 {
	v := make([]float32, helperDims)
	for i := 0; i+3 <= len(s); i++ {
		h := fnv.New32a()
		h.Write([]byte(s[i : i+3]))
		v[h.Sum32()%helperDims] += scale
	}
	return v
}

// helperHost is a host process: it starts a supervised helper plugin,
// prints its pid and waits to be killed.
func helperHost() {
	m, err := New(Options{BinDir: os.Getenv(binDirEnv), Home: os.Getenv("NEMOCLAVE_TEST_HOME"), StartTimeout: time.Minute})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s, err := m.Start(context.Background(), Spec{Source: "builtin/" + helperName, Env: map[string]string{helperEnv: "serve"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("pid=%d\n", s.Pid())
	time.Sleep(time.Minute)
}

// helperRawHost starts the helper plugin by hand, without Pdeathsig, so
// only the plugin's own parent watch can end it when this host dies.
func helperRawHost() {
	exe, _ := os.Executable()
	cmd := exec.Command(exe)
	cmd.Env = []string{helperEnv + "=serve", plugin.Handshake.MagicCookieKey + "=" + plugin.Handshake.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS=" + strconv.Itoa(plugin.ProtocolVersion), "PLUGIN_MIN_PORT=0", "PLUGIN_MAX_PORT=0",
		// The plugin is orphaned on purpose and exits through its parent
		// watch, which leaves its socket: keep it in the test's home, not
		// /tmp (issue #12: the intermittent /tmp/plugin* socket of make test).
		"TMPDIR=" + os.Getenv("NEMOCLAVE_TEST_HOME")}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil { // the handshake: Serve is running
		fmt.Fprintln(os.Stderr, "no handshake:", err)
		os.Exit(1)
	}
	fmt.Printf("pid=%d\n", cmd.Process.Pid)
	time.Sleep(time.Minute)
}

// helperBinDir is a bin directory holding the test binary as the builtin
// nemoclave-plugin-embeddings-helper (a symlink: hashing follows it).
func helperBinDir(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(exe, filepath.Join(dir, BinaryPrefix+helperName)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// copyTestBinary copies the test binary to dir/name, for tests that modify
// the plugin file.
func copyTestBinary(t testing.TB, dir, name string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(dir, name)
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// syncBuffer is an io.Writer safe for the host logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testManager is a Manager over a fresh home and the helper bin dir, with
// its log captured.
func testManager(t testing.TB, opts Options) (*Manager, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	if opts.Home == "" {
		opts.Home = t.TempDir()
	}
	if opts.BinDir == "" {
		opts.BinDir = helperBinDir(t)
	}
	if opts.StartTimeout == 0 {
		// A failure bound only: launches of the race-built test binary
		// queue behind each other on a loaded 2-core machine.
		opts.StartTimeout = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug})
	}
	if opts.Reattach == nil && opts.LookupEnv == nil {
		opts.Reattach = map[string]plugin.ReattachInfo{}
	}
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m, logs
}

func helperSpec(mode string, extra ...string) Spec {
	env := map[string]string{helperEnv: mode}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return Spec{Source: "builtin/" + helperName, Kind: plugin.KindEmbeddings, Name: "test", Env: env}
}

// processGone reports whether pid no longer runs (absent, or a zombie
// waiting for a reaper that is not its old parent).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// state is the field after the parenthesised command name
	if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] == 'Z' || b[i+2] == 'X'
	}
	return false
}

// goneWithin bounds waitGone. It is a failure bound only, not a timing
// claim: an exiting race-built helper's threads queue for a CPU on a loaded
// 2-core machine (and a parent-watch exit polls every 200ms first).
const goneWithin = time.Minute

// waitGone polls until pid is gone or goneWithin has passed.
func waitGone(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(goneWithin)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running %v later", pid, goneWithin)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopProcess stops pid with SIGSTOP and returns once every thread of it is
// stopped. kill(2) only queues the signal and wakes one thread, which starts
// the group stop when it next runs: on a loaded machine the plugin's other
// threads can go on serving calls until then, so a test that needs a hung
// plugin must wait for the stop itself.
func stopProcess(t testing.TB, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for !allThreadsStopped(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d not stopped a minute after SIGSTOP", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// allThreadsStopped reports whether every thread of pid is in the stopped
// state ('T') of /proc/<pid>/task/<tid>/stat.
func allThreadsStopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			return false
		}
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return true
}

// readPid reads a pid file written by a helper, waiting for it to appear.
func readPid(t testing.TB, path string) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		b, err := os.ReadFile(path)
		if err == nil && len(b) > 0 {
			pid, err := strconv.Atoi(string(b))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("helper never wrote its pid to %s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startDebugPlugin starts the helper as a developer would under dlv (its
// own socket in a directory of the test) and returns the reattach value it
// prints and its process, killed when the test ends.
func startDebugPlugin(t *testing.T) (string, *exec.Cmd) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = []string{helperEnv + "=debug", "DEBUG_MARK=by-hand", "TMPDIR=" + t.TempDir()} // its socket goes with the test
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, v, ok := strings.Cut(sc.Text(), "export "+plugin.ReattachEnv+"="); ok {
			return strings.Trim(v, "'"), cmd
		}
	}
	t.Fatalf("debug plugin printed no reattach line (%v)", sc.Err())
	return "", nil
}

// helperCloseHost is a host that starts the helper plugin (or attaches to
// the debug plugin NEMOCLAVE_REATTACH_PLUGINS names), makes one call,
// closes its manager (with NEMOCLAVE_TEST_STALE, after a dead daemon's
// socket directory appeared next to its own) and prints the unix sockets
// under its temp dir while
// the plugin ran ("during=...") and after Close ("after=..."), and what
// else is left at the top of its temp dir ("entries=...").
func helperCloseHost() {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	m, err := New(Options{BinDir: os.Getenv(binDirEnv), Home: os.Getenv("NEMOCLAVE_TEST_HOME"), StartTimeout: time.Minute})
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	spec := Spec{Source: "builtin/" + helperName, Name: "debug", Env: map[string]string{helperEnv: "serve"}}
	s, err := m.Start(ctx, spec)
	if err != nil {
		fail(err)
	}
	if _, err := s.Embeddings().Embed(ctx, &embeddings.EmbedRequest{Inputs: []string{"abcd"}}); err != nil {
		fail(err)
	}
	list := func() string {
		var out []string
		_ = filepath.WalkDir(os.TempDir(), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type()&os.ModeSocket != 0 {
				out = append(out, p)
			}
			return nil
		})
		return strings.Join(out, ",")
	}
	if os.Getenv("NEMOCLAVE_TEST_STALE") != "" {
		// A daemon that died (SIGKILL) after this one started: pid_max
		// is below 2^22.
		m.mu.Lock()
		stale := filepath.Join(filepath.Dir(m.sockets), "4194305.1")
		m.mu.Unlock()
		if err := os.Mkdir(stale, 0o700); err != nil {
			fail(err)
		}
	}
	fmt.Printf("during=%s\n", list())
	m.Close()
	fmt.Printf("after=%s\n", list())
	var entries []string
	ents, _ := os.ReadDir(os.TempDir())
	for _, e := range ents {
		entries = append(entries, e.Name())
	}
	fmt.Printf("entries=%s\n", strings.Join(entries, ","))
}
