package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// ReattachEnv is the environment variable the host reads to attach to a
// plugin started by hand under a debugger (see WithDebug) instead of
// launching it.
const ReattachEnv = "NEMOCLAVE_REATTACH_PLUGINS"

type serveOptions struct {
	debug  bool
	logger hclog.Logger
}

// ServeOption configures Serve.
type ServeOption func(*serveOptions)

// WithDebug runs the plugin in debug mode: it does not expect to be launched
// by the host, prints a reattach line to stdout
// (NEMOCLAVE_REATTACH_PLUGINS='{...}'), and serves until interrupted. Export
// that line in the shell that runs nemoclave to make the host use this
// process, e.g. one running under dlv.
func WithDebug() ServeOption { return func(o *serveOptions) { o.debug = true } }

// WithLogger replaces the default logger (hclog JSON on stderr).
func WithLogger(l hclog.Logger) ServeOption { return func(o *serveOptions) { o.logger = l } }

// Serve serves p and never returns in normal mode. It owns main: stdout is
// reserved for the go-plugin handshake, so log through the returned logger
// or stderr, never fmt.Println.
func Serve(p Plugin, opts ...ServeOption) {
	o := serveOptions{}
	for _, f := range opts {
		f(&o)
	}
	if err := checkKinds(p); err != nil {
		fmt.Fprintln(os.Stderr, "nemoclave plugin:", err)
		os.Exit(1)
	}
	if o.logger == nil {
		o.logger = stderrLogger(p.Info().Name)
	}
	servedLogger.Store(&o.logger)
	cfg := &goplugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: versionedPlugins(p),
		GRPCServer:       grpcServer,
		Logger:           o.logger,
	}
	if o.debug {
		serveDebug(cfg, p.Info().Name)
		return
	}
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		fmt.Fprintf(os.Stderr, "This binary is a nemoclave plugin. It is started by nemoclave, not by hand.\n"+
			"To run it under a debugger, build it to call plugin.Serve with plugin.WithDebug().\n")
		os.Exit(1)
	}
	go exitWithParent(os.Getppid())
	goplugin.Serve(cfg)
}

// exitWithParent ends the plugin when the host dies, even by SIGKILL: the
// host also sets Pdeathsig, this is the second line for hosts that cannot.
func exitWithParent(ppid int) {
	for range time.Tick(200 * time.Millisecond) {
		if os.Getppid() != ppid {
			os.Exit(2)
		}
	}
}

func serveDebug(cfg *goplugin.ServeConfig, name string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reattachCh := make(chan *goplugin.ReattachConfig, 1)
	closeCh := make(chan struct{})
	cfg.Test = &goplugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattachCh, CloseCh: closeCh}
	go goplugin.Serve(cfg)
	rc := <-reattachCh
	if rc == nil {
		fmt.Fprintln(os.Stderr, "nemoclave plugin: debug server failed to start")
		os.Exit(1)
	}
	line, err := json.Marshal(map[string]ReattachInfo{name: {
		Protocol: string(rc.Protocol), ProtocolVersion: rc.ProtocolVersion,
		Network: rc.Addr.Network(), Address: rc.Addr.String(), Pid: rc.Pid,
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "nemoclave plugin:", err)
		os.Exit(1)
	}
	fmt.Printf("Plugin %s is serving in debug mode. In the shell that runs nemoclave:\n\n\texport %s='%s'\n\n", name, ReattachEnv, line)
	<-closeCh
}

// ReattachInfo is one entry of NEMOCLAVE_REATTACH_PLUGINS.
type ReattachInfo struct {
	Protocol        string `json:"protocol"`
	ProtocolVersion int    `json:"protocol_version"`
	Network         string `json:"network"`
	Address         string `json:"address"`
	Pid             int    `json:"pid"`
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// MaxMessageBytes bounds one gRPC message between host and plugin in both
// directions. gRPC's default (4 MiB) is below the inference router's body
// limit, and a request between the two failed with ResourceExhausted,
// which reads as "rate limited"; this leaves room for the router's limit
// (32 MiB) plus the protobuf framing around it.
const MaxMessageBytes = 48 << 20

// grpcServer is goplugin.DefaultGRPCServer with MaxMessageBytes. Without
// TLS (the host sent no PLUGIN_CLIENT_CERT) only a process of this
// plugin's own uid may connect: the host (PeerCred).
func grpcServer(opts []grpc.ServerOption) *grpc.Server {
	opts = append(opts, grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes))
	if noTLS() {
		opts = append(opts, grpc.Creds(&PeerCred{Side: "plugin"}))
	}
	return grpc.NewServer(opts...)
}

// noTLS reports whether this plugin serves without TLS and checks its
// peers' kernel credentials instead.
func noTLS() bool { return peerCredSupported && os.Getenv("PLUGIN_CLIENT_CERT") == "" }
