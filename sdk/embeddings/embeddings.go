package embeddings

import (
	"context"

	"github.com/nemoclave/nemoclave/sdk/status"
)

// Embedder turns texts into vectors. Implementations must be safe for
// concurrent use and return exactly one vector per input, in order.
type Embedder interface {
	Embed(ctx context.Context, req *EmbedRequest) (*EmbedResponse, error)
	// Dimensions reports the vector length for model ("" for the default).
	Dimensions(ctx context.Context, model string) (int, error)
}

// EmbedRequest is a batch of texts.
type EmbedRequest struct {
	Model  string
	Inputs []string
	// Dimensions asks for shorter vectors where the model supports it; 0
	// means the model's own size.
	Dimensions int
}

// EmbedResponse holds one vector per input.
type EmbedResponse struct {
	Model       string
	Vectors     [][]float32
	InputTokens int64
}

// NotSupported can be embedded to satisfy Embedder while implementing
// only part of it; each method returns status.ErrNotSupported.
type NotSupported struct{}

func (NotSupported) Embed(context.Context, *EmbedRequest) (*EmbedResponse, error) {
	return nil, status.ErrNotSupported
}

func (NotSupported) Dimensions(context.Context, string) (int, error) {
	return 0, status.ErrNotSupported
}
