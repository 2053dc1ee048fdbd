package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

// exportLine is one memory in `export` output. The format is stable: it is
// what backups and migrations to memory-postgres read.
type exportLine struct {
	ID        string         `json:"id"`
	Agent     string         `json:"agent"`
	User      string         `json:"user"`
	Session   string         `json:"session"`
	Text      string         `json:"text"`
	Metadata  map[string]any `json:"metadata"`
	CreatedAt time.Time      `json:"created_at"`
}

// runExport is `nemoclave-plugin-memory-sqlite export`: every memory (or
// one agent's, or one user's) as JSON lines, oldest first. It is a command
// for operators rather than an agent tool because a tool call carries no
// user, so it could not be held to one user's memories.
func runExport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbPath := fs.String("db", "", "memory database file (required), e.g. ~/.nemoclave/plugins/state/<name>/memory.db")
	agent := fs.String("agent", "", "export only this agent's memories")
	user := fs.String("user", "", "export only this user's memories (with -agent)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dbPath == "" {
		fmt.Fprintln(stderr, "export: -db is required (the memory database file)")
		return 2
	}
	if _, err := os.Stat(*dbPath); err != nil {
		fmt.Fprintf(stderr, "export: %v\n", err)
		return 1
	}
	if err := export(context.Background(), *dbPath, *agent, *user, stdout); err != nil {
		fmt.Fprintf(stderr, "export: %v\n", err)
		return 1
	}
	return 0
}

func export(ctx context.Context, path, agent, user string, w io.Writer) error {
	db, err := openDB(path)
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT rowid, id, agent, user, session, text, metadata, created_ms FROM memories
		WHERE (? = '' OR agent = ?) AND (? = '' OR user = ?) ORDER BY rowid`, agent, agent, user, user)
	if err != nil {
		return fmt.Errorf("read %s: %w (is it a memory-sqlite database?)", path, err)
	}
	ms, _, err := scanMemories(rows)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	for _, m := range ms {
		if err := enc.Encode(exportLine{ID: m.ID, Agent: m.Scope.Agent, User: m.Scope.User, Session: m.Scope.Session,
			Text: m.Text, Metadata: m.Metadata, CreatedAt: m.CreatedAt.UTC()}); err != nil {
			return err
		}
	}
	return nil
}
