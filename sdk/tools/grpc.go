package tools

import (
	"context"
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/nemoclave/nemoclave/sdk/internal/callctx"
	pb "github.com/nemoclave/nemoclave/sdk/internal/pb/toolsv1"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// Resolver returns the implementation that should serve a call. The plugin
// side always returns its own implementation; the host side routes a wired
// call to the target plugin.
type Resolver = func(ctx context.Context) (Provider, error)

// RegisterServer serves the Tools service on s.
func RegisterServer(s grpc.ServiceRegistrar, resolve Resolver) {
	pb.RegisterToolsServer(s, &server{resolve: resolve})
}

type server struct {
	pb.UnimplementedToolsServer
	resolve Resolver
}

func (s *server) ListTools(ctx context.Context, _ *pb.ListToolsRequest) (*pb.ListToolsResponse, error) {
	impl, err := s.resolve(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	ts, err := impl.ListTools(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	return &pb.ListToolsResponse{Tools: toolsToPB(ts)}, nil
}

func (s *server) CallTool(ctx context.Context, req *pb.CallToolRequest) (*pb.CallToolResponse, error) {
	impl, err := s.resolve(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	// plugin.Logger(ctx) tags the call's lines with the caller's sandbox.
	ctx = callctx.WithSandbox(ctx, req.GetContext().GetSandbox())
	res, err := impl.CallTool(ctx, &CallRequest{Name: req.Name, Arguments: nilIfEmpty(req.ArgumentsJson), Context: CallContext{
		Sandbox: req.GetContext().GetSandbox(), Agent: req.GetContext().GetAgent(), Session: req.GetContext().GetSession(),
	}})
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	if res == nil {
		return nil, status.ToGRPC(status.Errorf(status.Internal, "tools plugin returned neither a result nor an error for %q", req.Name))
	}
	out := &pb.CallToolResponse{IsError: res.IsError, StructuredJson: res.Structured}
	for _, c := range res.Content {
		out.Content = append(out.Content, contentToPB(c))
	}
	return out, nil
}

// WatchTools answers Unimplemented when the provider is not a Watcher, the
// same code a plugin built before watching existed would give, so clients
// handle both alike.
func (s *server) WatchTools(_ *pb.WatchToolsRequest, stream grpc.ServerStreamingServer[pb.ToolsChanged]) error {
	ctx := stream.Context()
	impl, err := s.resolve(ctx)
	if err != nil {
		return status.ToGRPC(err)
	}
	w, ok := impl.(Watcher)
	if !ok {
		return grpcstatus.Error(codes.Unimplemented, "this tools plugin does not announce tool list changes; poll ListTools instead")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A Watcher may call fn from its own goroutines; a gRPC stream allows
	// one sender at a time, and nothing may be sent after we return.
	var mu sync.Mutex
	var sendErr error
	done := false
	err = w.WatchTools(ctx, func(ts []Tool) {
		mu.Lock()
		defer mu.Unlock()
		if done || sendErr != nil {
			return
		}
		if sendErr = stream.Send(&pb.ToolsChanged{Tools: toolsToPB(ts)}); sendErr != nil {
			cancel()
		}
	})
	mu.Lock()
	defer mu.Unlock()
	done = true
	if sendErr != nil {
		return sendErr
	}
	return status.ToGRPC(err)
}

// NewClient returns a Provider that calls the service over conn. The
// result also implements Watcher; against a plugin that does not watch,
// WatchTools returns a status.NotSupported error.
func NewClient(conn grpc.ClientConnInterface) Provider {
	return &client{c: pb.NewToolsClient(conn)}
}

type client struct{ c pb.ToolsClient }

var _ Watcher = (*client)(nil)

func (c *client) ListTools(ctx context.Context) ([]Tool, error) {
	resp, err := c.c.ListTools(ctx, &pb.ListToolsRequest{})
	if err != nil {
		return nil, status.FromGRPC(err)
	}
	return toolsFromPB(resp.Tools), nil
}

func (c *client) CallTool(ctx context.Context, req *CallRequest) (*CallResult, error) {
	resp, err := c.c.CallTool(ctx, &pb.CallToolRequest{Name: req.Name, ArgumentsJson: req.Arguments, Context: &pb.CallContext{
		Sandbox: req.Context.Sandbox, Agent: req.Context.Agent, Session: req.Context.Session,
	}})
	if err != nil {
		return nil, status.FromGRPC(err)
	}
	out := &CallResult{IsError: resp.IsError, Structured: nilIfEmpty(resp.StructuredJson)}
	for _, c := range resp.Content {
		out.Content = append(out.Content, contentFromPB(c))
	}
	return out, nil
}

func (c *client) WatchTools(ctx context.Context, fn func([]Tool)) error {
	stream, err := c.c.WatchTools(ctx, &pb.WatchToolsRequest{})
	if err != nil {
		return status.FromGRPC(err)
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			return status.FromGRPC(err)
		}
		fn(toolsFromPB(msg.Tools))
	}
}

func toolsToPB(ts []Tool) []*pb.Tool {
	out := make([]*pb.Tool, len(ts))
	for i, t := range ts {
		out[i] = &pb.Tool{Name: t.Name, Description: t.Description, InputSchemaJson: t.InputSchema,
			OutputSchemaJson: t.OutputSchema, ReadOnly: t.ReadOnly, Destructive: t.Destructive}
	}
	return out
}

func toolsFromPB(ts []*pb.Tool) []Tool {
	out := make([]Tool, len(ts))
	for i, t := range ts {
		out[i] = Tool{Name: t.Name, Description: t.Description, InputSchema: nilIfEmpty(t.InputSchemaJson),
			OutputSchema: nilIfEmpty(t.OutputSchemaJson), ReadOnly: t.ReadOnly, Destructive: t.Destructive}
	}
	return out
}

func contentToPB(c Content) *pb.Content {
	switch {
	case c.Image != nil:
		return &pb.Content{Content: &pb.Content_Image{Image: blobToPB(c.Image)}}
	case c.Resource != nil:
		return &pb.Content{Content: &pb.Content_Resource{Resource: blobToPB(c.Resource)}}
	}
	return &pb.Content{Content: &pb.Content_Text{Text: c.Text}}
}

func contentFromPB(c *pb.Content) Content {
	switch v := c.Content.(type) {
	case *pb.Content_Image:
		return Content{Image: blobFromPB(v.Image)}
	case *pb.Content_Resource:
		return Content{Resource: blobFromPB(v.Resource)}
	}
	return Content{Text: c.GetText()}
}

func blobToPB(b *Blob) *pb.Blob {
	return &pb.Blob{MimeType: b.MIMEType, Data: b.Data, Uri: b.URI, Name: b.Name}
}

func blobFromPB(b *pb.Blob) *Blob {
	if b == nil {
		return &Blob{}
	}
	return &Blob{MIMEType: b.MimeType, Data: nilIfEmpty(b.Data), URI: b.Uri, Name: b.Name}
}

// nilIfEmpty keeps "absent" and "empty" the same on both sides of the
// wire, as proto3 does.
func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
