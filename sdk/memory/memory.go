package memory

import (
	"context"
	"time"

	"github.com/nemoclave/nemoclave/sdk/status"
)

// Store keeps memories for agents. Implementations must be safe for
// concurrent use and must never return a memory outside the caller's
// scope: the host passes the scope of the agent, user and session that
// asked, and isolation between users rests on the store honouring it.
type Store interface {
	// Remember stores text (which must not be empty; that is
	// status.InvalidArgument) in scope and returns the stored memory with
	// its ID and creation time.
	Remember(ctx context.Context, scope Scope, text string, metadata map[string]any) (Memory, error)
	// Recall returns up to limit memories visible in scope (Scope.Sees)
	// most relevant to query, best first, with Score >= minScore. Scores
	// are higher-is-better and should lie in [0, 1] (cosine similarity
	// for embedding stores) so one minScore means the same across stores.
	// limit <= 0 means the store's default.
	Recall(ctx context.Context, scope Scope, query string, limit int, minScore float64) ([]Scored, error)
	// List pages through the memories visible in scope in a stable order
	// (newest first is recommended). pageToken is "" for the first page
	// and an opaque token the store returned otherwise; an empty
	// NextPageToken means the last page. limit <= 0 means the default.
	List(ctx context.Context, scope Scope, limit int, pageToken string) (Page, error)
	// Forget deletes the memories with the given ids, or with all every
	// memory, that scope owns (Scope.Owns), and reports how many went.
	// Ids outside the scope are ignored, not errors, so a caller cannot
	// probe other users' ids. Neither ids nor all is
	// status.InvalidArgument.
	Forget(ctx context.Context, scope Scope, ids []string, all bool) (int, error)
}

// Scope is whose memory it is. Empty fields are values, not wildcards:
// a memory with no user belongs to the agent alone.
type Scope struct {
	Agent string
	User  string
	// Session is empty for memories shared across the user's sessions.
	Session string
}

// Sees reports whether a reader in scope s may see a memory stored in
// scope m: same agent and user, and the memory is either shared (no
// session) or from s's own session. Every store uses this rule so agents
// behave the same whichever store a blueprint picks.
func (s Scope) Sees(m Scope) bool {
	return s.Agent == m.Agent && s.User == m.User && (m.Session == "" || m.Session == s.Session)
}

// Owns reports whether Forget in scope s may delete a memory stored in
// scope m: same agent and user, and either s names no session (the user
// forgets everything, every session included) or m is from s's session.
// A session can therefore not delete the user's shared memories.
func (s Scope) Owns(m Scope) bool {
	return s.Agent == m.Agent && s.User == m.User && (s.Session == "" || m.Session == s.Session)
}

// Memory is one stored memory.
type Memory struct {
	ID    string
	Scope Scope
	Text  string
	// Metadata is JSON-compatible; numbers come back as float64 after
	// crossing the wire.
	Metadata map[string]any
	// CreatedAt crosses the wire with millisecond precision.
	CreatedAt time.Time
}

// Scored is a recalled memory with its relevance.
type Scored struct {
	Memory Memory
	Score  float64
}

// Page is one page of List.
type Page struct {
	Memories      []Memory
	NextPageToken string
}

// NotSupported can be embedded to satisfy Store while implementing only
// part of it; each method returns status.ErrNotSupported.
type NotSupported struct{}

func (NotSupported) Remember(context.Context, Scope, string, map[string]any) (Memory, error) {
	return Memory{}, status.ErrNotSupported
}

func (NotSupported) Recall(context.Context, Scope, string, int, float64) ([]Scored, error) {
	return nil, status.ErrNotSupported
}

func (NotSupported) List(context.Context, Scope, int, string) (Page, error) {
	return Page{}, status.ErrNotSupported
}

func (NotSupported) Forget(context.Context, Scope, []string, bool) (int, error) {
	return 0, status.ErrNotSupported
}
