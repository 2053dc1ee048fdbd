package plugins

import (
	"fmt"

	"github.com/nemoclave/nemoclave/sdk/dataproc"
	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/llm"
	"github.com/nemoclave/nemoclave/sdk/memory"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/retrieval"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

// The kind accessors return clients over Conn: unlike Client().LLM() and
// friends, which are bound to one process and fail for good once it
// crashes, these follow every restart. Take them once and keep them. They
// do not check that the plugin declared the kind; Start checked the kind it
// was started for.

// LLM is the plugin's llm Provider, valid across restarts.
func (s *Supervised) LLM() llm.Provider { return llm.NewClient(s.conn) }

// Embeddings is the plugin's Embedder, valid across restarts.
func (s *Supervised) Embeddings() embeddings.Embedder { return embeddings.NewClient(s.conn) }

// Retrieval is the plugin's retrieval Store, valid across restarts.
func (s *Supervised) Retrieval() retrieval.Store { return retrieval.NewClient(s.conn) }

// Memory is the plugin's memory Store, valid across restarts.
func (s *Supervised) Memory() memory.Store { return memory.NewClient(s.conn) }

// Tools is the plugin's tools Provider, valid across restarts.
func (s *Supervised) Tools() tools.Provider { return tools.NewClient(s.conn) }

// DataProc is the plugin's Processor, valid across restarts.
func (s *Supervised) DataProc() dataproc.Processor { return dataproc.NewClient(s.conn) }

// KindClient returns the client for kind as any (llm.Provider,
// embeddings.Embedder, ...), valid across restarts.
func (s *Supervised) KindClient(kind plugin.Kind) (any, error) {
	switch kind {
	case plugin.KindLLM:
		return s.LLM(), nil
	case plugin.KindEmbeddings:
		return s.Embeddings(), nil
	case plugin.KindRetrieval:
		return s.Retrieval(), nil
	case plugin.KindMemory:
		return s.Memory(), nil
	case plugin.KindTools:
		return s.Tools(), nil
	case plugin.KindDataProc:
		return s.DataProc(), nil
	}
	return nil, fmt.Errorf("unknown plugin kind %q (known: %v)", kind, plugin.Kinds())
}
