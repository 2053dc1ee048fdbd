package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/nemoclave/nemoclave/sdk/dataproc"
	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/internal/pb/pluginv1"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/status"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// Client is the host's handle on one plugin connection.
type Client struct {
	conn   *grpc.ClientConn
	broker *goplugin.GRPCBroker
	pc     pluginv1.PluginClient

	// peer authenticates the plugin's callbacks to the host services
	// (nil: the connection uses TLS, whose options go-plugin passes).
	peer *PeerCred

	hostOnce sync.Once
	hostID   uint32
	host     *hostServer
	// hostDone is closed when the host services' broker server has
	// stopped and its listener (a unix socket file) is removed; nil until
	// Configure serves them.
	hostDone chan struct{}
	// hostAccepted is closed once the broker listens for the host
	// services and has told the plugin where (or failed to): see
	// quiesceHost.
	hostAccepted chan struct{}
}

func newClient(conn *grpc.ClientConn, broker *goplugin.GRPCBroker) *Client {
	return &Client{conn: conn, broker: broker, pc: pluginv1.NewPluginClient(conn)}
}

// RemoteInfo is Info as reported over the wire, with protocol versions.
type RemoteInfo struct {
	Info
	ProtocolVersions []int
}

// Info asks the plugin who it is.
func (c *Client) Info(ctx context.Context) (*RemoteInfo, error) {
	in, err := c.pc.GetInfo(ctx, &pluginv1.GetInfoRequest{})
	if err != nil {
		return nil, status.FromGRPC(err)
	}
	out := &RemoteInfo{Info: Info{Name: in.Name, Version: in.Version, Description: in.Description, Capabilities: in.Capabilities}}
	for _, k := range in.Kinds {
		out.Kinds = append(out.Kinds, Kind(k))
	}
	for _, v := range in.ProtocolVersions {
		out.ProtocolVersions = append(out.ProtocolVersions, int(v))
	}
	return out, nil
}

// Schema asks the plugin for its config schema.
func (c *Client) Schema(ctx context.Context) (*schema.Schema, error) {
	resp, err := c.pc.GetSchema(ctx, &pluginv1.GetSchemaRequest{})
	if err != nil {
		return nil, status.FromGRPC(err)
	}
	return &schema.Schema{Block: schemaFromPB(resp.Block)}, nil
}

// ValidateConfig asks the plugin to check a decoded config.
func (c *Client) ValidateConfig(ctx context.Context, config json.RawMessage) ([]Diagnostic, error) {
	resp, err := c.pc.ValidateConfig(ctx, &pluginv1.ValidateConfigRequest{ConfigJson: config})
	if err != nil {
		return nil, status.FromGRPC(err)
	}
	return diagsFromPB(resp.Diagnostics), nil
}

// ConfigureOptions is what the host passes to Configure.
type ConfigureOptions struct {
	Config   json.RawMessage
	StateDir string
	Wirings  []HostWiring
	// Logger receives the plugin's Host.Log lines.
	Logger hclog.Logger
}

// Configure configures the plugin. The host services are served on the
// broker the first time and reused afterwards; wirings are replaced.
func (c *Client) Configure(ctx context.Context, opts ConfigureOptions) ([]Diagnostic, error) {
	c.hostOnce.Do(func() {
		logger := opts.Logger
		if logger == nil {
			logger = hclog.NewNullLogger()
		}
		c.host = &hostServer{logger: logger}
		if c.broker != nil {
			c.hostID = c.broker.NextId()
			c.hostDone = make(chan struct{})
			c.hostAccepted = make(chan struct{})
			go func() {
				defer close(c.hostDone)
				c.broker.AcceptAndServe(c.hostID, func(o []grpc.ServerOption) *grpc.Server {
					// Called once Accept listens and has sent the plugin
					// the address.
					close(c.hostAccepted)
					if c.peer != nil {
						o = append(o, grpc.Creds(c.peer))
					}
					s := grpc.NewServer(o...)
					c.host.register(s)
					return s
				})
			}()
		}
	})
	if c.host == nil {
		return nil, errors.New("plugin connection closed")
	}
	c.host.setWirings(opts.Wirings)
	req := &pluginv1.ConfigureRequest{ConfigJson: opts.Config, StateDir: opts.StateDir, HostBrokerId: c.hostID}
	for _, w := range opts.Wirings {
		req.Wirings = append(req.Wirings, &pluginv1.Wiring{Attribute: w.Attribute, Kind: string(w.Kind), Target: w.Target})
	}
	resp, err := c.pc.Configure(ctx, req)
	if err != nil {
		return nil, status.FromGRPC(err)
	}
	return diagsFromPB(resp.Diagnostics), nil
}

// hostStopWait bounds how long closeHost waits for calls the plugin still
// has in flight on the host services (a wired stream, say).
const hostStopWait = 5 * time.Second

// closeHost stops the host services served on the broker and waits (up to
// hostStopWait) until their listener is closed, which removes its socket
// file: a process that exits first leaves the file behind. go-plugin does
// this itself only for a plugin it launched, when the plugin is killed.
func (c *Client) closeHost() {
	if c.broker == nil {
		return
	}
	c.quiesceHost()
	_ = c.broker.Close()
	c.waitHost()
}

// quiesceHost makes sure that closing the broker cannot leave a socket
// file behind: no Configure starts serving the host services after it,
// and one that did has finished the broker's Accept. go-plugin's Accept
// creates the unix socket and then sends its address to the plugin; when
// that send fails because the broker was closed meanwhile, it returns the
// error without closing the listener, and the socket file outlives the
// process (issue #12: a test that closed a client right after a Configure
// the plugin rejected left /tmp/plugin* sockets under load). Call it
// before anything closes the broker (go-plugin's Client.Kill and Close
// do).
func (c *Client) quiesceHost() {
	c.hostOnce.Do(func() {}) // no Configure can start serving after this
	if c.hostAccepted == nil {
		return
	}
	// The send only blocks while the plugin's connection lives; on a dead
	// one it fails at once (and the listener leaks into the directory
	// the broker was given, which a launched plugin's Kill removes).
	select {
	case <-c.hostAccepted:
	case <-c.hostDone:
	case <-time.After(hostStopWait):
	}
}

// waitHost waits (up to hostStopWait) for the host services' server to
// stop once the broker is closed.
func (c *Client) waitHost() {
	if c.hostDone == nil {
		return
	}
	select {
	case <-c.hostDone:
	case <-time.After(hostStopWait):
	}
}

// Kind returns the plugin's implementation of kind over this connection.
// It does not check that the plugin declared the kind; Info does.
func (c *Client) Kind(kind Kind) (any, error) {
	b, ok := kindBindings[kind]
	if !ok {
		return nil, fmt.Errorf("unknown plugin kind %q", kind)
	}
	return b.client(c.conn), nil
}

// Embeddings returns the plugin's Embedder.
func (c *Client) Embeddings() embeddings.Embedder {
	return kindBindings[KindEmbeddings].client(c.conn).(embeddings.Embedder)
}

// LLM returns the plugin's LLM provider.
func (c *Client) LLM() llm.Provider {
	return kindBindings[KindLLM].client(c.conn).(llm.Provider)
}

// Tools returns the plugin's tools provider.
func (c *Client) Tools() tools.Provider {
	return kindBindings[KindTools].client(c.conn).(tools.Provider)
}

// Memory returns the plugin's memory store.
func (c *Client) Memory() memory.Store {
	return kindBindings[KindMemory].client(c.conn).(memory.Store)
}

// Retrieval returns the plugin's retrieval store.
func (c *Client) Retrieval() retrieval.Store {
	return kindBindings[KindRetrieval].client(c.conn).(retrieval.Store)
}

// DataProc returns the plugin's data processor.
func (c *Client) DataProc() dataproc.Processor {
	return kindBindings[KindDataProc].client(c.conn).(dataproc.Processor)
}

// Conn exposes the underlying connection for health checks.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }
