package retrieval

import (
	"context"

	"google.golang.org/grpc"

	pb "github.com/nemoclave/nemoclave/sdk/internal/pb/retrievalv1"
	"github.com/nemoclave/nemoclave/sdk/internal/structconv"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// Resolver returns the implementation that should serve a call. The plugin
// side always returns its own implementation; the host side routes a wired
// call to the target plugin.
type Resolver = func(ctx context.Context) (Store, error)

// RegisterServer serves the Retrieval service on s.
func RegisterServer(s grpc.ServiceRegistrar, resolve Resolver) {
	pb.RegisterRetrievalServer(s, &server{resolve: resolve})
}

type server struct {
	pb.UnimplementedRetrievalServer
	resolve Resolver
}

func (s *server) ListCollections(ctx context.Context, _ *pb.ListCollectionsRequest) (*pb.ListCollectionsResponse, error) {
	impl, err := s.resolve(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	cs, err := impl.ListCollections(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	out := &pb.ListCollectionsResponse{Collections: make([]*pb.Collection, len(cs))}
	for i, c := range cs {
		out.Collections[i] = collectionToPB(c)
	}
	return out, nil
}

func (s *server) CreateCollection(ctx context.Context, req *pb.CreateCollectionRequest) (*pb.CreateCollectionResponse, error) {
	impl, err := s.resolve(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	c, err := impl.CreateCollection(ctx, req.Name, int(req.Dimensions))
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	return &pb.CreateCollectionResponse{Collection: collectionToPB(c)}, nil
}

func (s *server) DeleteCollection(ctx context.Context, req *pb.DeleteCollectionRequest) (*pb.DeleteCollectionResponse, error) {
	impl, err := s.resolve(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	if err := impl.DeleteCollection(ctx, req.Name); err != nil {
		return nil, status.ToGRPC(err)
	}
	return &pb.DeleteCollectionResponse{}, nil
}

func (s *server) Upsert(ctx context.Context, req *pb.UpsertRequest) (*pb.UpsertResponse, error) {
	impl, err := s.resolve(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	docs := make([]Document, len(req.Documents))
	for i, d := range req.Documents {
		docs[i] = documentFromPB(d)
	}
	n, err := impl.Upsert(ctx, req.Collection, docs)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	return &pb.UpsertResponse{Upserted: int64(n)}, nil
}

func (s *server) Query(ctx context.Context, req *pb.QueryRequest) (*pb.QueryResponse, error) {
	impl, err := s.resolve(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	ms, err := impl.Query(ctx, &QueryRequest{
		Collection: req.Collection, Text: req.Text, Vector: req.Vector, TopK: int(req.TopK),
		Filters: filtersFromPB(req.Filters), IncludeVectors: req.IncludeVectors,
	})
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	out := &pb.QueryResponse{Matches: make([]*pb.Match, len(ms))}
	for i, m := range ms {
		d, err := documentToPB(m.Document)
		if err != nil {
			return nil, status.ToGRPC(status.Errorf(status.Internal, "retrieval plugin returned %v", err))
		}
		out.Matches[i] = &pb.Match{Document: d, Score: m.Score}
	}
	return out, nil
}

func (s *server) Delete(ctx context.Context, req *pb.DeleteRequest) (*pb.DeleteResponse, error) {
	impl, err := s.resolve(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	n, err := impl.Delete(ctx, &DeleteRequest{Collection: req.Collection, IDs: req.Ids, Filters: filtersFromPB(req.Filters)})
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	return &pb.DeleteResponse{Deleted: int64(n)}, nil
}

// NewClient returns a Store that calls the service over conn.
func NewClient(conn grpc.ClientConnInterface) Store {
	return &client{c: pb.NewRetrievalClient(conn)}
}

type client struct{ c pb.RetrievalClient }

func (c *client) ListCollections(ctx context.Context) ([]Collection, error) {
	resp, err := c.c.ListCollections(ctx, &pb.ListCollectionsRequest{})
	if err != nil {
		return nil, status.FromGRPC(err)
	}
	out := make([]Collection, len(resp.Collections))
	for i, col := range resp.Collections {
		out[i] = collectionFromPB(col)
	}
	return out, nil
}

func (c *client) CreateCollection(ctx context.Context, name string, dimensions int) (Collection, error) {
	resp, err := c.c.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: name, Dimensions: int32(dimensions)})
	if err != nil {
		return Collection{}, status.FromGRPC(err)
	}
	return collectionFromPB(resp.Collection), nil
}

func (c *client) DeleteCollection(ctx context.Context, name string) error {
	_, err := c.c.DeleteCollection(ctx, &pb.DeleteCollectionRequest{Name: name})
	return status.FromGRPC(err)
}

func (c *client) Upsert(ctx context.Context, collection string, docs []Document) (int, error) {
	req := &pb.UpsertRequest{Collection: collection, Documents: make([]*pb.Document, len(docs))}
	for i, d := range docs {
		pd, err := documentToPB(d)
		if err != nil {
			return 0, status.Errorf(status.InvalidArgument, "upsert: %v", err)
		}
		req.Documents[i] = pd
	}
	resp, err := c.c.Upsert(ctx, req)
	if err != nil {
		return 0, status.FromGRPC(err)
	}
	return int(resp.Upserted), nil
}

func (c *client) Query(ctx context.Context, req *QueryRequest) ([]Match, error) {
	fs, err := filtersToPB(req.Filters)
	if err != nil {
		return nil, err
	}
	resp, err := c.c.Query(ctx, &pb.QueryRequest{
		Collection: req.Collection, Text: req.Text, Vector: req.Vector, TopK: int32(req.TopK),
		Filters: fs, IncludeVectors: req.IncludeVectors,
	})
	if err != nil {
		return nil, status.FromGRPC(err)
	}
	out := make([]Match, len(resp.Matches))
	for i, m := range resp.Matches {
		out[i] = Match{Document: documentFromPB(m.Document), Score: m.Score}
	}
	return out, nil
}

func (c *client) Delete(ctx context.Context, req *DeleteRequest) (int, error) {
	fs, err := filtersToPB(req.Filters)
	if err != nil {
		return 0, err
	}
	resp, err := c.c.Delete(ctx, &pb.DeleteRequest{Collection: req.Collection, Ids: req.IDs, Filters: fs})
	if err != nil {
		return 0, status.FromGRPC(err)
	}
	return int(resp.Deleted), nil
}

func collectionToPB(c Collection) *pb.Collection {
	return &pb.Collection{Name: c.Name, Dimensions: int32(c.Dimensions), Count: c.Count}
}

func collectionFromPB(c *pb.Collection) Collection {
	return Collection{Name: c.GetName(), Dimensions: int(c.GetDimensions()), Count: c.GetCount()}
}

func documentToPB(d Document) (*pb.Document, error) {
	md, err := structconv.ToStruct(d.Metadata)
	if err != nil {
		return nil, status.Errorf(status.InvalidArgument, "document %q: %v", d.ID, err)
	}
	return &pb.Document{Id: d.ID, Text: d.Text, Vector: d.Vector, Metadata: md}, nil
}

func documentFromPB(d *pb.Document) Document {
	if d == nil {
		return Document{}
	}
	return Document{ID: d.Id, Text: d.Text, Vector: d.Vector, Metadata: structconv.FromStruct(d.Metadata)}
}

// filtersToPB checks filters on the caller's side, so a malformed one is
// reported before the call, with the same error every store would give.
func filtersToPB(fs []Filter) ([]*pb.Filter, error) {
	out := make([]*pb.Filter, len(fs))
	for i, f := range fs {
		if err := f.Validate(); err != nil {
			return nil, err
		}
		v, err := structconv.ToValue(f.Value)
		if err != nil {
			return nil, status.Errorf(status.InvalidArgument, "filter %s: %v", f.Field, err)
		}
		out[i] = &pb.Filter{Field: f.Field, Op: string(f.Op), Value: v}
	}
	return out, nil
}

// filtersFromPB maps an absent value to nil, which for exists means true.
func filtersFromPB(fs []*pb.Filter) []Filter {
	out := make([]Filter, len(fs))
	for i, f := range fs {
		out[i] = Filter{Field: f.Field, Op: Op(f.Op), Value: structconv.FromValue(f.Value)}
	}
	return out
}
