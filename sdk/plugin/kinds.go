package plugin

import (
	"context"
	"fmt"

	"google.golang.org/grpc"

	"github.com/nemoclave/nemoclave/sdk/dataproc"
	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// kindBinding ties a Kind to its Go interface and gRPC adapters.
type kindBinding struct {
	// implements reports whether v implements the kind's interface.
	implements func(v any) bool
	// register serves the kind on s; resolve picks the implementation per
	// call (the plugin itself, or on the host the wired target).
	register func(s grpc.ServiceRegistrar, resolve func(context.Context) (any, error))
	// client returns the kind's interface implemented over conn.
	client func(conn grpc.ClientConnInterface) any
}

// bind builds a kindBinding from a kind package's RegisterServer and
// NewClient, so adding a kind is one line in kindBindings.
func bind[T any](register func(grpc.ServiceRegistrar, func(context.Context) (T, error)), newClient func(grpc.ClientConnInterface) T) kindBinding {
	return kindBinding{
		implements: func(v any) bool { _, ok := v.(T); return ok },
		register: func(s grpc.ServiceRegistrar, resolve func(context.Context) (any, error)) {
			register(s, func(ctx context.Context) (T, error) {
				var zero T
				v, err := resolve(ctx)
				if err != nil {
					return zero, err
				}
				t, ok := v.(T)
				if !ok {
					return zero, fmt.Errorf("plugin does not implement %T", zero)
				}
				return t, nil
			})
		},
		client: func(conn grpc.ClientConnInterface) any { return newClient(conn) },
	}
}

var kindBindings = map[Kind]kindBinding{
	KindLLM:        bind(llm.RegisterServer, llm.NewClient),
	KindEmbeddings: bind(embeddings.RegisterServer, embeddings.NewClient),
	KindTools:      bind(tools.RegisterServer, tools.NewClient),
	KindMemory:     bind(memory.RegisterServer, memory.NewClient),
	KindRetrieval:  bind(retrieval.RegisterServer, retrieval.NewClient),
	KindDataProc:   bind(dataproc.RegisterServer, dataproc.NewClient),
}

// Kinds lists every kind this SDK version knows, in a stable order.
func Kinds() []Kind {
	return []Kind{KindLLM, KindEmbeddings, KindRetrieval, KindMemory, KindTools, KindDataProc}
}

// checkKinds verifies that p implements every kind it declares.
func checkKinds(p Plugin) error {
	info := p.Info()
	if len(info.Kinds) == 0 {
		return fmt.Errorf("plugin %q declares no kinds in Info().Kinds", info.Name)
	}
	for _, k := range info.Kinds {
		b, ok := kindBindings[k]
		if !ok {
			return fmt.Errorf("plugin %q declares unknown kind %q (known: %v)", info.Name, k, Kinds())
		}
		if !b.implements(p) {
			return fmt.Errorf("plugin %q declares kind %q but does not implement its interface", info.Name, k)
		}
	}
	return nil
}
