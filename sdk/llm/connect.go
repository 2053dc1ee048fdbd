package llm

import (
	"context"
	"strconv"
	"time"

	"google.golang.org/grpc/metadata"
)

// connectKey carries the connect timeout in a context.
type connectKey struct{}

// connectMD is the gRPC metadata key that carries the connect timeout
// across the plugin boundary, in milliseconds.
const connectMD = "nemoclave-connect-timeout-ms"

// WithConnectTimeout returns ctx carrying d, the longest a provider may
// take to accept a connection for calls made with it (a route's
// timeouts.connect). The gateway sets it; a plugin applies it where it
// dials its provider (ConnectTimeout). Zero or less leaves ctx as it is.
func WithConnectTimeout(ctx context.Context, d time.Duration) context.Context {
	if d <= 0 {
		return ctx
	}
	return context.WithValue(ctx, connectKey{}, d)
}

// ConnectTimeout reports the connect timeout ctx carries, if any. Plugins
// use it as their dialer's timeout for the call.
func ConnectTimeout(ctx context.Context) (time.Duration, bool) {
	d, ok := ctx.Value(connectKey{}).(time.Duration)
	return d, ok && d > 0
}

// outgoing adds ctx's connect timeout to a call's gRPC metadata.
func outgoing(ctx context.Context) context.Context {
	if d, ok := ConnectTimeout(ctx); ok {
		return metadata.AppendToOutgoingContext(ctx, connectMD, strconv.FormatInt(d.Milliseconds(), 10))
	}
	return ctx
}

// incoming restores the connect timeout a call's gRPC metadata carries.
func incoming(ctx context.Context) context.Context {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return ctx
	}
	v := md.Get(connectMD)
	if len(v) == 0 {
		return ctx
	}
	ms, err := strconv.ParseInt(v[len(v)-1], 10, 64)
	if err != nil || ms <= 0 {
		return ctx
	}
	return WithConnectTimeout(ctx, time.Duration(ms)*time.Millisecond)
}
