package plugin

import (
	"io"
	"path/filepath"
	"sync"

	"github.com/nemoclave/nemoclave/sdk/embeddings"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// Store holds what a plugin's Configure opened (a database, an index) and
// lends it to calls. The host may configure a plugin again while it runs
// (a blueprint edit, a re-run): Swap opens the new one and closes the old
// only when no call holds it, so a call never sees its store closed under
// it and no write lands in a store that is being replaced.
//
// A memory or retrieval plugin keeps one Store and writes each method as
//
//	s, release, err := p.store.Acquire()
//	if err != nil {
//		return nil, err
//	}
//	defer release()
//	return s.Recall(ctx, ...)
type Store[S io.Closer] struct {
	// Name is the plugin's name, for the error a call gets before the
	// host configured it.
	Name string

	mu  sync.RWMutex
	cur S
	set bool
}

// Swap replaces the store with what open returns, waiting for calls in
// flight to finish first. With closeFirst the old store is closed before
// open runs: required when both would use one file and each would hold its
// own copy of the data (an in-memory vector index) that would drift apart.
// Otherwise the new store is opened first and the old one kept when open
// fails.
func (s *Store[S]) Swap(closeFirst bool, open func() (S, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if closeFirst && s.set {
		s.cur.Close()
		var zero S
		s.cur, s.set = zero, false
	}
	n, err := open()
	if err != nil {
		return err
	}
	if s.set {
		s.cur.Close()
	}
	s.cur, s.set = n, true
	return nil
}

// Acquire lends the current store; the caller must call release when its
// call is done. Before the first Swap it answers Unavailable.
func (s *Store[S]) Acquire() (S, func(), error) {
	s.mu.RLock()
	if !s.set {
		s.mu.RUnlock()
		var zero S
		return zero, func() {}, status.Errorf(status.Unavailable, "%s is not configured yet; the host configures it before use", s.Name)
	}
	return s.cur, s.mu.RUnlock, nil
}

// Close closes the current store, if any (the plugin is shutting down).
func (s *Store[S]) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.set {
		return nil
	}
	var zero S
	err := s.cur.Close()
	s.cur, s.set = zero, false
	return err
}

// WiredEmbeddings returns the embeddings plugin the blueprint wired to
// attribute attr, or nil when the config leaves attr unset.
func (c Config) WiredEmbeddings(host Host, attr string) (embeddings.Embedder, error) {
	for _, w := range c.Wirings {
		if w.Attribute == attr {
			return host.Embeddings(attr)
		}
	}
	return nil, nil
}

// StatePath resolves a configured file path: a relative one is under the
// plugin's state directory, the one place a confined plugin may write.
func (c Config) StatePath(path string) (string, error) {
	if filepath.IsAbs(path) {
		return path, nil
	}
	if c.StateDir == "" {
		return "", status.Errorf(status.InvalidArgument, "path %q is relative and the host gave no state dir; set an absolute path", path)
	}
	return filepath.Join(c.StateDir, path), nil
}
