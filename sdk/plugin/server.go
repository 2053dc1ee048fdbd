package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"sync"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/nemoclave/nemoclave/sdk/internal/pb/pluginv1"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// grpcPlugin is the go-plugin GRPCPlugin for both sides: on the plugin side
// impl is set and GRPCServer registers the services; on the host side
// GRPCClient returns a *Client.
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	impl Plugin
}

func (g *grpcPlugin) GRPCServer(broker *goplugin.GRPCBroker, s *grpc.Server) error {
	if err := checkKinds(g.impl); err != nil {
		return err
	}
	pluginv1.RegisterPluginServer(s, &pluginServer{impl: g.impl, broker: broker})
	self := func(context.Context) (any, error) { return g.impl, nil }
	for _, k := range g.impl.Info().Kinds {
		kindBindings[k].register(s, self)
	}
	return nil
}

func (g *grpcPlugin) GRPCClient(_ context.Context, broker *goplugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return newClient(conn, broker), nil
}

// pluginServer serves the common Plugin service inside the plugin process.
type pluginServer struct {
	pluginv1.UnimplementedPluginServer
	impl   Plugin
	broker *goplugin.GRPCBroker

	mu   sync.Mutex
	host *hostClient // dialled once per connection, on the first Configure
}

func (s *pluginServer) GetInfo(context.Context, *pluginv1.GetInfoRequest) (*pluginv1.Info, error) {
	info := s.impl.Info()
	out := &pluginv1.Info{
		Name: info.Name, Version: info.Version, Description: info.Description,
		Capabilities: info.Capabilities, ProtocolVersions: []int32{ProtocolVersion},
	}
	for _, k := range info.Kinds {
		out.Kinds = append(out.Kinds, string(k))
	}
	return out, nil
}

func (s *pluginServer) GetSchema(context.Context, *pluginv1.GetSchemaRequest) (*pluginv1.GetSchemaResponse, error) {
	sc := s.impl.ConfigSchema()
	if sc == nil {
		return &pluginv1.GetSchemaResponse{Block: &pluginv1.Block{}}, nil
	}
	return &pluginv1.GetSchemaResponse{Block: schemaToPB(&sc.Block)}, nil
}

func (s *pluginServer) ValidateConfig(ctx context.Context, req *pluginv1.ValidateConfigRequest) (*pluginv1.ValidateConfigResponse, error) {
	return &pluginv1.ValidateConfigResponse{Diagnostics: diagsToPB(s.impl.ValidateConfig(ctx, json.RawMessage(req.ConfigJson)))}, nil
}

func (s *pluginServer) Configure(ctx context.Context, req *pluginv1.ConfigureRequest) (*pluginv1.ConfigureResponse, error) {
	if diags := s.impl.ValidateConfig(ctx, req.ConfigJson); hasErrors(diags) {
		return &pluginv1.ConfigureResponse{Diagnostics: diagsToPB(diags)}, nil
	}
	host, err := s.dialHost(req.HostBrokerId)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	cfg := Config{JSON: req.ConfigJson, StateDir: req.StateDir}
	for _, w := range req.Wirings {
		cfg.Wirings = append(cfg.Wirings, Wiring{Attribute: w.Attribute, Kind: Kind(w.Kind), Target: w.Target})
	}
	host.setWirings(cfg.Wirings)
	if err := s.impl.Configure(ctx, cfg, host); err != nil {
		return &pluginv1.ConfigureResponse{Diagnostics: diagsToPB([]Diagnostic{{Severity: SeverityError, Summary: "configure failed", Detail: err.Error()}})}, nil
	}
	return &pluginv1.ConfigureResponse{}, nil
}

func (s *pluginServer) dialHost(id uint32) (*hostClient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.host != nil {
		return s.host, nil
	}
	if id == 0 {
		// Configured without host services (a bare test harness): calls to
		// wired plugins fail with a clear error instead of hanging.
		s.host = &hostClient{}
		return s.host, nil
	}
	var opts []grpc.DialOption
	if noTLS() {
		// Only the host, of this plugin's uid, may answer on its socket.
		opts = append(opts, grpc.WithTransportCredentials(&PeerCred{Side: "plugin"}))
	}
	conn, err := s.broker.DialWithOptions(id, opts...)
	if err != nil {
		return nil, errors.New("plugin: cannot reach the host's services over the broker: " + err.Error())
	}
	s.host = newHostClient(conn)
	return s.host, nil
}

func hasErrors(ds []Diagnostic) bool {
	for _, d := range ds {
		if d.Severity != SeverityWarning {
			return true
		}
	}
	return false
}
