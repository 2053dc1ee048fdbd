package main

import (
	"testing"

	"github.com/nemoclave/nemoclave/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	sdktest.Common(t, newPlugin())
	t.Run("vectors", func(t *testing.T) {
		sdktest.Retrieval(t, newPlugin(), sdktest.WithDimensions(8))
	})
	t.Run("bm25 text queries without an embedder", func(t *testing.T) {
		sdktest.Retrieval(t, newPlugin(), sdktest.WithDimensions(8), sdktest.WithTextQueries())
	})
	t.Run("through the HNSW index", func(t *testing.T) {
		sdktest.Retrieval(t, newPlugin(), sdktest.WithDimensions(8), sdktest.WithConfig(`{"hnsw_threshold":1}`))
	})
}
