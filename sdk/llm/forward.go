package llm

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"

	pb "github.com/nemoclave/nemoclave/sdk/internal/pb/llmv1"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// Wire dialects a Forwarder may speak.
const (
	// DialectOpenAI is the OpenAI API: /chat/completions, /responses,
	// relative to a root that includes /v1.
	DialectOpenAI = "openai"
	// DialectAnthropic is the Anthropic API: /messages,
	// /messages/count_tokens, relative to a root that includes /v1.
	DialectAnthropic = "anthropic"
)

// Forwarder is implemented by providers that can send an agent's request
// in the provider's own wire dialect unchanged. The gateway uses it when
// the agent speaks the provider's dialect, so fields, headers and content
// blocks the neutral types do not model (prompt-cache markers, beta
// features, reasoning settings) reach the provider as the agent wrote them.
//
// It is optional: a provider without it, or one answering
// status.ErrNotSupported (also what plugins built before Forward existed
// answer over gRPC), gets the neutral Chat and ChatStream calls instead.
type Forwarder interface {
	// Forward sends req and calls send with the answer: the first chunk
	// carries Status and Headers, later ones only Data. A non-2xx answer
	// from the provider is returned as a classified error before send is
	// called, so the gateway may fall back. Return the error send returns.
	Forward(ctx context.Context, req *ForwardRequest, send func(*ForwardChunk) error) error
}

// ForwardRequest is one request in a provider dialect. The gateway has
// already set the provider's model name in Body; the provider adds its
// credentials.
type ForwardRequest struct {
	// Dialect is DialectOpenAI or DialectAnthropic; a provider answers
	// status.ErrNotSupported for one it does not speak.
	Dialect string
	// Path is relative to the provider's API root, e.g. "/messages".
	Path string
	// Query is the raw query string without "?".
	Query string
	// Headers are protocol headers from the agent (anthropic-version,
	// anthropic-beta, openai-beta); never credentials.
	Headers map[string]string
	Body    []byte
	// Stream is true when the answer is an event stream.
	Stream bool
	// Method is the HTTP method: "" or "POST" sends Body; "GET" and
	// "DELETE" (a stored object such as "/responses/{id}") send none.
	Method string
}

// HTTPMethod is the request's method, POST when unset.
func (r *ForwardRequest) HTTPMethod() string {
	if r.Method == "" {
		return "POST"
	}
	return r.Method
}

// ForwardChunk is a piece of the answer.
type ForwardChunk struct {
	// Status and Headers are set on the first chunk only.
	Status  int
	Headers map[string]string
	Data    []byte
}

func (s *server) Forward(req *pb.ForwardRequest, stream grpc.ServerStreamingServer[pb.ForwardChunk]) error {
	ctx := incoming(stream.Context())
	impl, err := s.resolve(ctx)
	if err != nil {
		return status.ToGRPC(err)
	}
	f, ok := impl.(Forwarder)
	if !ok {
		return status.ToGRPC(status.Errorf(status.NotSupported, "this llm plugin does not forward requests in a provider dialect"))
	}
	in := &ForwardRequest{Dialect: req.Dialect, Path: req.Path, Query: req.Query, Headers: req.Headers, Body: req.Body, Stream: req.Stream, Method: req.Method}
	if coalesceOff {
		err = f.Forward(ctx, in, func(c *ForwardChunk) error {
			if c == nil {
				return nil
			}
			return stream.Send(&pb.ForwardChunk{Status: int32(c.Status), Headers: c.Headers, Data: c.Data})
		})
		return status.ToGRPC(err)
	}
	co := newForwardCoalescer(stream.Send)
	err = f.Forward(ctx, in, func(c *ForwardChunk) error {
		if c == nil {
			return nil
		}
		return co.add(forwardPB(c))
	})
	// What the provider sent before it returned (an error included) still
	// reaches the host, in order.
	if cerr := co.close(); err == nil {
		err = cerr
	}
	return status.ToGRPC(err)
}

// Forward calls the plugin's Forward; it cancels the call when send
// fails so the plugin stops reading from the provider.
func (c *client) Forward(ctx context.Context, req *ForwardRequest, send func(*ForwardChunk) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.c.Forward(outgoing(ctx), &pb.ForwardRequest{Dialect: req.Dialect, Path: req.Path, Query: req.Query, Headers: req.Headers, Body: req.Body, Stream: req.Stream, Method: req.Method})
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
		if err := send(&ForwardChunk{Status: int(chunk.Status), Headers: chunk.Headers, Data: chunk.Data}); err != nil {
			return err
		}
	}
}

var _ Forwarder = (*client)(nil)
