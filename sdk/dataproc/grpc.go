package dataproc

import (
	"context"

	"google.golang.org/grpc"

	pb "github.com/nemoclave/nemoclave/sdk/internal/pb/dataprocv1"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// Resolver returns the implementation that should serve a call. The plugin
// side always returns its own implementation; the host side routes a wired
// call to the target plugin.
type Resolver = func(ctx context.Context) (Processor, error)

// RegisterServer serves the DataProc service on s.
func RegisterServer(s grpc.ServiceRegistrar, resolve Resolver) {
	pb.RegisterDataProcServer(s, &server{resolve: resolve})
}

type server struct {
	pb.UnimplementedDataProcServer
	resolve Resolver
}

func (s *server) ListOperations(ctx context.Context, _ *pb.ListOperationsRequest) (*pb.ListOperationsResponse, error) {
	impl, err := s.resolve(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	ops, err := impl.ListOperations(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	out := &pb.ListOperationsResponse{Operations: make([]*pb.Operation, len(ops))}
	for i, o := range ops {
		out.Operations[i] = &pb.Operation{Name: o.Name, Description: o.Description, InputTypes: o.InputTypes,
			OutputTypes: o.OutputTypes, OptionsSchemaJson: o.OptionsSchema}
	}
	return out, nil
}

func (s *server) Transform(ctx context.Context, req *pb.TransformRequest) (*pb.TransformResponse, error) {
	impl, err := s.resolve(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	resp, err := impl.Transform(ctx, &TransformRequest{Operation: req.Operation, Input: documentFromPB(req.Input), Options: nilIfEmpty(req.OptionsJson)})
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	if resp == nil {
		return nil, status.ToGRPC(status.Errorf(status.Internal, "dataproc plugin returned neither a response nor an error for %q", req.Operation))
	}
	out := &pb.TransformResponse{Text: resp.Text}
	for _, c := range resp.Chunks {
		out.Chunks = append(out.Chunks, &pb.Chunk{Index: int32(c.Index), Text: c.Text, Start: c.Start, End: c.End})
	}
	for _, d := range resp.Outputs {
		out.Outputs = append(out.Outputs, documentToPB(d))
	}
	return out, nil
}

// NewClient returns a Processor that calls the service over conn.
func NewClient(conn grpc.ClientConnInterface) Processor {
	return &client{c: pb.NewDataProcClient(conn)}
}

type client struct{ c pb.DataProcClient }

func (c *client) ListOperations(ctx context.Context) ([]Operation, error) {
	resp, err := c.c.ListOperations(ctx, &pb.ListOperationsRequest{})
	if err != nil {
		return nil, status.FromGRPC(err)
	}
	out := make([]Operation, len(resp.Operations))
	for i, o := range resp.Operations {
		out[i] = Operation{Name: o.Name, Description: o.Description, InputTypes: o.InputTypes,
			OutputTypes: o.OutputTypes, OptionsSchema: nilIfEmpty(o.OptionsSchemaJson)}
	}
	return out, nil
}

func (c *client) Transform(ctx context.Context, req *TransformRequest) (*TransformResponse, error) {
	resp, err := c.c.Transform(ctx, &pb.TransformRequest{Operation: req.Operation, Input: documentToPB(req.Input), OptionsJson: req.Options})
	if err != nil {
		return nil, status.FromGRPC(err)
	}
	out := &TransformResponse{Text: resp.Text}
	for _, ch := range resp.Chunks {
		out.Chunks = append(out.Chunks, Chunk{Index: int(ch.Index), Text: ch.Text, Start: ch.Start, End: ch.End})
	}
	for _, d := range resp.Outputs {
		out.Outputs = append(out.Outputs, documentFromPB(d))
	}
	return out, nil
}

func documentToPB(d Document) *pb.Document {
	return &pb.Document{Name: d.Name, MimeType: d.MIMEType, Data: d.Data}
}

func documentFromPB(d *pb.Document) Document {
	if d == nil {
		return Document{}
	}
	return Document{Name: d.Name, MIMEType: d.MimeType, Data: nilIfEmpty(d.Data)}
}

// nilIfEmpty keeps "absent" and "empty" the same on both sides of the
// wire, as proto3 does.
func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
