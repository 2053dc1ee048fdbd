package llm

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	pb "github.com/nemoclave/nemoclave/sdk/internal/pb/llmv1"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// Resolver returns the implementation that should serve a call. The plugin
// side always returns its own implementation; the host side routes a wired
// call to the target plugin.
type Resolver = func(ctx context.Context) (Provider, error)

// RegisterServer serves the LLM service on s.
func RegisterServer(s grpc.ServiceRegistrar, resolve Resolver) {
	pb.RegisterLLMServer(s, &server{resolve: resolve})
}

type server struct {
	pb.UnimplementedLLMServer
	resolve Resolver
}

func (s *server) ListModels(ctx context.Context, _ *pb.ListModelsRequest) (*pb.ListModelsResponse, error) {
	impl, err := s.resolve(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	models, err := impl.ListModels(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	out := &pb.ListModelsResponse{Models: make([]*pb.Model, len(models))}
	for i, m := range models {
		out.Models[i] = &pb.Model{Id: m.ID, OwnedBy: m.OwnedBy, ContextWindow: m.ContextWindow, Capabilities: m.Capabilities}
	}
	return out, nil
}

func (s *server) Chat(ctx context.Context, req *pb.ChatRequest) (*pb.ChatResponse, error) {
	ctx = incoming(ctx)
	impl, err := s.resolve(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	resp, err := impl.Chat(ctx, requestFromPB(req))
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	if resp == nil {
		return nil, status.ToGRPC(status.Errorf(status.Internal, "llm plugin returned neither a response nor an error"))
	}
	return &pb.ChatResponse{Id: resp.ID, Model: resp.Model, Message: messageToPB(resp.Message),
		FinishReason: resp.FinishReason, Usage: usageToPB(&resp.Usage)}, nil
}

func (s *server) ChatStream(req *pb.ChatRequest, stream grpc.ServerStreamingServer[pb.ChatChunk]) error {
	ctx := incoming(stream.Context())
	impl, err := s.resolve(ctx)
	if err != nil {
		return status.ToGRPC(err)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if coalesceOff || !wantsBatches(md) {
		err = impl.ChatStream(ctx, requestFromPB(req), func(c *ChatChunk) error {
			if c == nil {
				return nil
			}
			return stream.Send(chunkToPB(c))
		})
		return status.ToGRPC(err)
	}
	co := newChatCoalescer(stream.Send)
	err = impl.ChatStream(ctx, requestFromPB(req), func(c *ChatChunk) error {
		if c == nil {
			return nil
		}
		return co.add(chunkToPB(c))
	})
	// What the provider sent before it returned (an error included) still
	// reaches the host, in order.
	if cerr := co.close(); err == nil {
		err = cerr
	}
	return status.ToGRPC(err)
}

// NewClient returns a Provider that calls the service over conn.
func NewClient(conn grpc.ClientConnInterface) Provider {
	return &client{c: pb.NewLLMClient(conn)}
}

type client struct{ c pb.LLMClient }

func (c *client) ListModels(ctx context.Context) ([]Model, error) {
	resp, err := c.c.ListModels(ctx, &pb.ListModelsRequest{})
	if err != nil {
		return nil, status.FromGRPC(err)
	}
	out := make([]Model, len(resp.Models))
	for i, m := range resp.Models {
		out[i] = Model{ID: m.Id, OwnedBy: m.OwnedBy, ContextWindow: m.ContextWindow, Capabilities: m.Capabilities}
	}
	return out, nil
}

func (c *client) Chat(ctx context.Context, req *ChatRequest) (*ChatResponse, error) {
	resp, err := c.c.Chat(outgoing(ctx), requestToPB(req))
	if err != nil {
		return nil, status.FromGRPC(err)
	}
	out := &ChatResponse{ID: resp.Id, Model: resp.Model, Message: messageFromPB(resp.Message), FinishReason: resp.FinishReason}
	if u := usageFromPB(resp.Usage); u != nil {
		out.Usage = *u
	}
	return out, nil
}

// ChatStream cancels the call when send fails, so the plugin sees its
// context done and stops generating (and billing) tokens.
func (c *client) ChatStream(ctx context.Context, req *ChatRequest, send func(*ChatChunk) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// This host unpacks ChatChunk.more: the plugin may send the chunks it
	// has waiting in one message.
	stream, err := c.c.ChatStream(metadata.AppendToOutgoingContext(outgoing(ctx), chunksHeader, "batch"), requestToPB(req))
	if err != nil {
		return status.FromGRPC(err)
	}
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			return status.FromGRPC(err)
		}
		if err := send(chunkFromPB(chunk)); err != nil {
			return err
		}
		for _, more := range chunk.More {
			if err := send(chunkFromPB(more)); err != nil {
				return err
			}
		}
	}
}

func requestToPB(r *ChatRequest) *pb.ChatRequest {
	if r == nil {
		return &pb.ChatRequest{}
	}
	out := &pb.ChatRequest{
		Model: r.Model, System: r.System, ToolChoice: r.ToolChoice,
		Temperature: r.Temperature, TopP: r.TopP, MaxTokens: r.MaxTokens,
		Stop: r.Stop, User: r.User, ExtraJson: r.Extra,
	}
	for _, m := range r.Messages {
		out.Messages = append(out.Messages, messageToPB(m))
	}
	for _, t := range r.Tools {
		out.Tools = append(out.Tools, &pb.Tool{Name: t.Name, Description: t.Description, ParametersJson: t.Parameters})
	}
	return out
}

func requestFromPB(r *pb.ChatRequest) *ChatRequest {
	out := &ChatRequest{
		Model: r.Model, System: r.System, ToolChoice: r.ToolChoice,
		Temperature: r.Temperature, TopP: r.TopP, MaxTokens: r.MaxTokens,
		Stop: r.Stop, User: r.User, Extra: nilIfEmpty(r.ExtraJson),
	}
	for _, m := range r.Messages {
		out.Messages = append(out.Messages, messageFromPB(m))
	}
	for _, t := range r.Tools {
		out.Tools = append(out.Tools, Tool{Name: t.Name, Description: t.Description, Parameters: nilIfEmpty(t.ParametersJson)})
	}
	return out
}

func messageToPB(m Message) *pb.Message {
	out := &pb.Message{Role: m.Role, ToolCallId: m.ToolCallID, Name: m.Name}
	for _, p := range m.Content {
		if p.Image != nil {
			out.Content = append(out.Content, &pb.ContentPart{Part: &pb.ContentPart_Image{Image: &pb.Image{MimeType: p.Image.MIMEType, Data: p.Image.Data, Url: p.Image.URL}}})
			continue
		}
		out.Content = append(out.Content, &pb.ContentPart{Part: &pb.ContentPart_Text{Text: p.Text}})
	}
	for _, tc := range m.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, &pb.ToolCall{Id: tc.ID, Name: tc.Name, ArgumentsJson: tc.Arguments})
	}
	return out
}

func messageFromPB(m *pb.Message) Message {
	if m == nil {
		return Message{}
	}
	out := Message{Role: m.Role, ToolCallID: m.ToolCallId, Name: m.Name}
	for _, p := range m.Content {
		if img := p.GetImage(); img != nil {
			out.Content = append(out.Content, ContentPart{Image: &Image{MIMEType: img.MimeType, Data: nilIfEmpty(img.Data), URL: img.Url}})
			continue
		}
		out.Content = append(out.Content, ContentPart{Text: p.GetText()})
	}
	for _, tc := range m.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, ToolCall{ID: tc.Id, Name: tc.Name, Arguments: tc.ArgumentsJson})
	}
	return out
}

func chunkToPB(c *ChatChunk) *pb.ChatChunk {
	out := &pb.ChatChunk{Id: c.ID, Model: c.Model, DeltaText: c.DeltaText, FinishReason: c.FinishReason, Usage: usageToPB(c.Usage)}
	for _, d := range c.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, &pb.ToolCallDelta{Index: int32(d.Index), Id: d.ID, Name: d.Name, ArgumentsDelta: d.ArgumentsDelta})
	}
	return out
}

func chunkFromPB(c *pb.ChatChunk) *ChatChunk {
	out := &ChatChunk{ID: c.Id, Model: c.Model, DeltaText: c.DeltaText, FinishReason: c.FinishReason, Usage: usageFromPB(c.Usage)}
	for _, d := range c.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, ToolCallDelta{Index: int(d.Index), ID: d.Id, Name: d.Name, ArgumentsDelta: d.ArgumentsDelta})
	}
	return out
}

func usageToPB(u *Usage) *pb.Usage {
	if u == nil {
		return nil
	}
	return &pb.Usage{InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, CachedInputTokens: u.CachedInputTokens}
}

func usageFromPB(u *pb.Usage) *Usage {
	if u == nil {
		return nil
	}
	return &Usage{InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, CachedInputTokens: u.CachedInputTokens}
}

// nilIfEmpty keeps "absent" and "empty" the same on both sides of the
// wire, as proto3 does, so callers can test len() or nil alike.
func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
