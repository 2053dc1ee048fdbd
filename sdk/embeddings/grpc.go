package embeddings

import (
	"context"

	"google.golang.org/grpc"

	pb "github.com/nemoclave/nemoclave/sdk/internal/pb/embeddingsv1"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// Resolver returns the implementation that should serve a call. The plugin
// side always returns its own implementation; the host side routes a wired
// call to the target plugin.
type Resolver = func(ctx context.Context) (Embedder, error)

// RegisterServer serves the Embeddings service on s.
func RegisterServer(s grpc.ServiceRegistrar, resolve Resolver) {
	pb.RegisterEmbeddingsServer(s, &server{resolve: resolve})
}

type server struct {
	pb.UnimplementedEmbeddingsServer
	resolve Resolver
}

func (s *server) Embed(ctx context.Context, req *pb.EmbedRequest) (*pb.EmbedResponse, error) {
	impl, err := s.resolve(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	resp, err := impl.Embed(ctx, &EmbedRequest{Model: req.Model, Inputs: req.Inputs, Dimensions: int(req.Dimensions)})
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	if resp == nil {
		return nil, status.ToGRPC(status.Errorf(status.Internal, "embeddings plugin returned neither a response nor an error"))
	}
	out := &pb.EmbedResponse{Model: resp.Model, InputTokens: resp.InputTokens, Vectors: make([]*pb.Vector, len(resp.Vectors))}
	for i, v := range resp.Vectors {
		out.Vectors[i] = &pb.Vector{Values: v}
	}
	return out, nil
}

func (s *server) Dimensions(ctx context.Context, req *pb.DimensionsRequest) (*pb.DimensionsResponse, error) {
	impl, err := s.resolve(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	d, err := impl.Dimensions(ctx, req.Model)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	return &pb.DimensionsResponse{Dimensions: int32(d)}, nil
}

// NewClient returns an Embedder that calls the service over conn.
func NewClient(conn grpc.ClientConnInterface) Embedder {
	return &client{c: pb.NewEmbeddingsClient(conn)}
}

type client struct{ c pb.EmbeddingsClient }

func (c *client) Embed(ctx context.Context, req *EmbedRequest) (*EmbedResponse, error) {
	resp, err := c.c.Embed(ctx, &pb.EmbedRequest{Model: req.Model, Inputs: req.Inputs, Dimensions: int32(req.Dimensions)})
	if err != nil {
		return nil, status.FromGRPC(err)
	}
	out := &EmbedResponse{Model: resp.Model, InputTokens: resp.InputTokens, Vectors: make([][]float32, len(resp.Vectors))}
	for i, v := range resp.Vectors {
		out.Vectors[i] = v.Values
	}
	return out, nil
}

func (c *client) Dimensions(ctx context.Context, model string) (int, error) {
	resp, err := c.c.Dimensions(ctx, &pb.DimensionsRequest{Model: model})
	if err != nil {
		return 0, status.FromGRPC(err)
	}
	return int(resp.Dimensions), nil
}
