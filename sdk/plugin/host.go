package plugin

import (
	"context"
	"sort"
	"sync"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/nemoclave/nemoclave/sdk/dataproc"
	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/internal/pb/pluginv1"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/status"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// wiringKey is the gRPC metadata key naming the wired attribute a call to
// the host's kind services is meant for.
const wiringKey = "nemoclave-wiring"

// Host is what a plugin can ask of the host that launched it.
type Host interface {
	// Log writes a structured line to the host's log for this plugin
	// (nemoclave logs --source plugin). Plain stderr works too; Log keeps
	// fields typed and survives stderr being redirected.
	Log(ctx context.Context, level, msg string, fields map[string]string) error
	// Embeddings returns the embeddings plugin wired to attribute attr.
	Embeddings(attr string) (embeddings.Embedder, error)
	// LLM returns the LLM provider wired to attribute attr.
	LLM(attr string) (llm.Provider, error)
	// DataProc returns the data processor wired to attribute attr.
	DataProc(attr string) (dataproc.Processor, error)
	// Retrieval returns the retrieval store wired to attribute attr.
	Retrieval(attr string) (retrieval.Store, error)
	// Memory returns the memory store wired to attribute attr.
	Memory(attr string) (memory.Store, error)
	// Tools returns the tools provider wired to attribute attr.
	Tools(attr string) (tools.Provider, error)
}

// hostClient is the plugin-side Host over the broker connection.
type hostClient struct {
	conn *grpc.ClientConn
	log  pluginv1.HostClient

	mu      sync.Mutex
	wirings map[string]Wiring
}

func newHostClient(conn *grpc.ClientConn) *hostClient {
	return &hostClient{conn: conn, log: pluginv1.NewHostClient(conn)}
}

func (h *hostClient) setWirings(ws []Wiring) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.wirings = map[string]Wiring{}
	for _, w := range ws {
		h.wirings[w.Attribute] = w
	}
}

func (h *hostClient) Log(ctx context.Context, level, msg string, fields map[string]string) error {
	if h.log == nil {
		return status.Errorf(status.Unavailable, "no host services in this harness")
	}
	_, err := h.log.Log(ctx, &pluginv1.LogRequest{Level: level, Message: msg, Fields: fields})
	return status.FromGRPC(err)
}

// wired returns a client for the kind service of the plugin wired to attr.
func (h *hostClient) wired(attr string, kind Kind) (any, error) {
	h.mu.Lock()
	w, ok := h.wirings[attr]
	h.mu.Unlock()
	switch {
	case !ok:
		return nil, status.Errorf(status.NotFound, "no plugin is wired to attribute %q; set it in the blueprint (%s = plugin.%s.<name>)", attr, attr, kind)
	case w.Kind != kind:
		return nil, status.Errorf(status.InvalidArgument, "attribute %q is wired to a %s plugin, not %s", attr, w.Kind, kind)
	case h.conn == nil:
		return nil, status.Errorf(status.Unavailable, "no host services in this harness")
	}
	return kindBindings[kind].client(wiredConn{ClientConnInterface: h.conn, attr: attr}), nil
}

func (h *hostClient) Embeddings(attr string) (embeddings.Embedder, error) {
	v, err := h.wired(attr, KindEmbeddings)
	if err != nil {
		return nil, err
	}
	return v.(embeddings.Embedder), nil
}

func (h *hostClient) LLM(attr string) (llm.Provider, error) {
	v, err := h.wired(attr, KindLLM)
	if err != nil {
		return nil, err
	}
	return v.(llm.Provider), nil
}

func (h *hostClient) Tools(attr string) (tools.Provider, error) {
	v, err := h.wired(attr, KindTools)
	if err != nil {
		return nil, err
	}
	return v.(tools.Provider), nil
}

func (h *hostClient) Memory(attr string) (memory.Store, error) {
	v, err := h.wired(attr, KindMemory)
	if err != nil {
		return nil, err
	}
	return v.(memory.Store), nil
}

func (h *hostClient) Retrieval(attr string) (retrieval.Store, error) {
	v, err := h.wired(attr, KindRetrieval)
	if err != nil {
		return nil, err
	}
	return v.(retrieval.Store), nil
}

func (h *hostClient) DataProc(attr string) (dataproc.Processor, error) {
	v, err := h.wired(attr, KindDataProc)
	if err != nil {
		return nil, err
	}
	return v.(dataproc.Processor), nil
}

// wiredConn tags every call with the wiring attribute.
type wiredConn struct {
	grpc.ClientConnInterface
	attr string
}

func (c wiredConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return c.ClientConnInterface.Invoke(metadata.AppendToOutgoingContext(ctx, wiringKey, c.attr), method, args, reply, opts...)
}

func (c wiredConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.ClientConnInterface.NewStream(metadata.AppendToOutgoingContext(ctx, wiringKey, c.attr), desc, method, opts...)
}

// HostWiring is a wiring as the host knows it: with the target's client.
type HostWiring struct {
	Wiring
	// Plugin is the connected target plugin.
	Plugin *Client
}

// hostServer serves the Host service and the wired kind services on the
// broker, once per plugin connection.
type hostServer struct {
	pluginv1.UnimplementedHostServer
	logger hclog.Logger

	mu      sync.Mutex
	wirings map[string]HostWiring
}

func (h *hostServer) Log(_ context.Context, req *pluginv1.LogRequest) (*pluginv1.LogResponse, error) {
	keys := make([]string, 0, len(req.Fields))
	for k := range req.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, req.Fields[k])
	}
	h.logger.Log(hclog.LevelFromString(req.Level), req.Message, args...)
	return &pluginv1.LogResponse{}, nil
}

func (h *hostServer) setWirings(ws []HostWiring) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.wirings = map[string]HostWiring{}
	for _, w := range ws {
		h.wirings[w.Attribute] = w
	}
}

// resolver routes a call on the host's kind service to the wired target.
func (h *hostServer) resolver(kind Kind) func(context.Context) (any, error) {
	return func(ctx context.Context) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		attrs := md.Get(wiringKey)
		if len(attrs) != 1 {
			return nil, status.Errorf(status.InvalidArgument, "call to host %s service without a wiring attribute", kind)
		}
		h.mu.Lock()
		w, ok := h.wirings[attrs[0]]
		h.mu.Unlock()
		if !ok || w.Kind != kind || w.Plugin == nil {
			return nil, status.Errorf(status.NotFound, "attribute %q is not wired to a %s plugin", attrs[0], kind)
		}
		return w.Plugin.Kind(kind)
	}
}

func (h *hostServer) register(s *grpc.Server) {
	pluginv1.RegisterHostServer(s, h)
	for k, b := range kindBindings {
		b.register(s, h.resolver(k))
	}
}
