package memory

import (
	"context"
	"time"

	"google.golang.org/grpc"

	pb "github.com/nemoclave/nemoclave/sdk/internal/pb/memoryv1"
	"github.com/nemoclave/nemoclave/sdk/internal/structconv"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// Resolver returns the implementation that should serve a call. The plugin
// side always returns its own implementation; the host side routes a wired
// call to the target plugin.
type Resolver = func(ctx context.Context) (Store, error)

// RegisterServer serves the Memory service on s.
func RegisterServer(s grpc.ServiceRegistrar, resolve Resolver) {
	pb.RegisterMemoryServer(s, &server{resolve: resolve})
}

type server struct {
	pb.UnimplementedMemoryServer
	resolve Resolver
}

func (s *server) Remember(ctx context.Context, req *pb.RememberRequest) (*pb.RememberResponse, error) {
	impl, err := s.resolve(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	m, err := impl.Remember(ctx, scopeFromPB(req.Scope), req.Text, structconv.FromStruct(req.Metadata))
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	out, err := memoryToPB(m)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	return &pb.RememberResponse{Memory: out}, nil
}

func (s *server) Recall(ctx context.Context, req *pb.RecallRequest) (*pb.RecallResponse, error) {
	impl, err := s.resolve(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	got, err := impl.Recall(ctx, scopeFromPB(req.Scope), req.Query, int(req.Limit), req.MinScore)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	out := &pb.RecallResponse{Memories: make([]*pb.ScoredMemory, len(got))}
	for i, sm := range got {
		m, err := memoryToPB(sm.Memory)
		if err != nil {
			return nil, status.ToGRPC(err)
		}
		out.Memories[i] = &pb.ScoredMemory{Memory: m, Score: sm.Score}
	}
	return out, nil
}

func (s *server) List(ctx context.Context, req *pb.ListRequest) (*pb.ListResponse, error) {
	impl, err := s.resolve(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	page, err := impl.List(ctx, scopeFromPB(req.Scope), int(req.Limit), req.PageToken)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	out := &pb.ListResponse{NextPageToken: page.NextPageToken, Memories: make([]*pb.MemoryItem, len(page.Memories))}
	for i, m := range page.Memories {
		if out.Memories[i], err = memoryToPB(m); err != nil {
			return nil, status.ToGRPC(err)
		}
	}
	return out, nil
}

func (s *server) Forget(ctx context.Context, req *pb.ForgetRequest) (*pb.ForgetResponse, error) {
	impl, err := s.resolve(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	n, err := impl.Forget(ctx, scopeFromPB(req.Scope), req.Ids, req.All)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	return &pb.ForgetResponse{Forgotten: int64(n)}, nil
}

// NewClient returns a Store that calls the service over conn.
func NewClient(conn grpc.ClientConnInterface) Store {
	return &client{c: pb.NewMemoryClient(conn)}
}

type client struct{ c pb.MemoryClient }

func (c *client) Remember(ctx context.Context, scope Scope, text string, metadata map[string]any) (Memory, error) {
	md, err := structconv.ToStruct(metadata)
	if err != nil {
		return Memory{}, status.Errorf(status.InvalidArgument, "remember: %v", err)
	}
	resp, err := c.c.Remember(ctx, &pb.RememberRequest{Scope: scopeToPB(scope), Text: text, Metadata: md})
	if err != nil {
		return Memory{}, status.FromGRPC(err)
	}
	return memoryFromPB(resp.Memory), nil
}

func (c *client) Recall(ctx context.Context, scope Scope, query string, limit int, minScore float64) ([]Scored, error) {
	resp, err := c.c.Recall(ctx, &pb.RecallRequest{Scope: scopeToPB(scope), Query: query, Limit: int32(limit), MinScore: minScore})
	if err != nil {
		return nil, status.FromGRPC(err)
	}
	out := make([]Scored, len(resp.Memories))
	for i, sm := range resp.Memories {
		out[i] = Scored{Memory: memoryFromPB(sm.Memory), Score: sm.Score}
	}
	return out, nil
}

func (c *client) List(ctx context.Context, scope Scope, limit int, pageToken string) (Page, error) {
	resp, err := c.c.List(ctx, &pb.ListRequest{Scope: scopeToPB(scope), Limit: int32(limit), PageToken: pageToken})
	if err != nil {
		return Page{}, status.FromGRPC(err)
	}
	out := Page{NextPageToken: resp.NextPageToken, Memories: make([]Memory, len(resp.Memories))}
	for i, m := range resp.Memories {
		out.Memories[i] = memoryFromPB(m)
	}
	return out, nil
}

func (c *client) Forget(ctx context.Context, scope Scope, ids []string, all bool) (int, error) {
	resp, err := c.c.Forget(ctx, &pb.ForgetRequest{Scope: scopeToPB(scope), Ids: ids, All: all})
	if err != nil {
		return 0, status.FromGRPC(err)
	}
	return int(resp.Forgotten), nil
}

func scopeToPB(s Scope) *pb.Scope {
	return &pb.Scope{Agent: s.Agent, User: s.User, Session: s.Session}
}

func scopeFromPB(s *pb.Scope) Scope {
	return Scope{Agent: s.GetAgent(), User: s.GetUser(), Session: s.GetSession()}
}

func memoryToPB(m Memory) (*pb.MemoryItem, error) {
	md, err := structconv.ToStruct(m.Metadata)
	if err != nil {
		return nil, status.Errorf(status.Internal, "memory plugin returned metadata for %q that cannot cross the wire: %v", m.ID, err)
	}
	out := &pb.MemoryItem{Id: m.ID, Scope: scopeToPB(m.Scope), Text: m.Text, Metadata: md}
	if !m.CreatedAt.IsZero() {
		out.CreatedUnixMs = m.CreatedAt.UnixMilli()
	}
	return out, nil
}

func memoryFromPB(m *pb.MemoryItem) Memory {
	if m == nil {
		return Memory{}
	}
	out := Memory{ID: m.Id, Scope: scopeFromPB(m.Scope), Text: m.Text, Metadata: structconv.FromStruct(m.Metadata)}
	if m.CreatedUnixMs != 0 {
		out.CreatedAt = time.UnixMilli(m.CreatedUnixMs).UTC()
	}
	return out
}
