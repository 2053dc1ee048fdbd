package replayplugin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/nemoclave/nemoclave/internal/boundedread"
	"github.com/nemoclave/nemoclave/sdk/llm"
)

// Cassette is the file format (version 1):
//
//	{"version": 1, "description": "...", "interactions": [Interaction, ...]}
type Cassette struct {
	Version      int           `json:"version"`
	Description  string        `json:"description,omitempty"`
	Interactions []Interaction `json:"interactions"`
}

// Interaction is one recorded exchange and the rule that selects it.
type Interaction struct {
	Name  string `json:"name,omitempty"`
	Match Match  `json:"match"`
	// Request is the normalised request that was recorded; informative
	// except for fingerprint matches, where it documents what matched.
	Request *NormalRequest `json:"request,omitempty"`
	// Response is the answer. Its text may use {{last_user}} and
	// {{last_tool_result}}, replaced from the request at replay time.
	Response Response `json:"response"`
	// Chunks, when present, are replayed as they are for streams;
	// otherwise the response is cut into chunks of a few words.
	Chunks []Chunk `json:"chunks,omitempty"`
}

// Match selects requests. Exactly one of Fingerprint, LastUser,
// LastUserContains or Default should be set; Step applies to the last
// three. See the README for the order in which rules are tried.
type Match struct {
	// Fingerprint is "sha256:<hex>" of the normalised request (model,
	// sampling parameters and tool call IDs excluded).
	Fingerprint string `json:"fingerprint,omitempty"`
	// LastUser matches the last user message, ignoring case, runs of
	// white space and trailing punctuation.
	LastUser string `json:"last_user,omitempty"`
	// LastUserContains matches when the normalised last user message
	// contains this normalised text.
	LastUserContains string `json:"last_user_contains,omitempty"`
	// Default matches any request (at Step, when set).
	Default bool `json:"default,omitempty"`
	// Step is the number of assistant turns since the last user message:
	// 0 answers the question, 1 answers after the first round of tool
	// results, and so on. Nil matches any step.
	Step *int `json:"step,omitempty"`
}

// Response is a recorded answer.
type Response struct {
	ID           string     `json:"id,omitempty"`
	Model        string     `json:"model,omitempty"`
	Text         string     `json:"text,omitempty"`
	ToolCalls    []ToolCall `json:"tool_calls,omitempty"`
	FinishReason string     `json:"finish_reason,omitempty"`
	Usage        *Usage     `json:"usage,omitempty"`
}

// ToolCall is a recorded call. A name the request's tools do not have is
// matched to the one tool whose name ends with it after a separator
// ("files__list_files", "files.list_files"), so namespaced tools work.
type ToolCall struct {
	ID        string `json:"id,omitempty"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// Usage is recorded token usage.
type Usage struct {
	InputTokens       int64 `json:"input_tokens"`
	OutputTokens      int64 `json:"output_tokens"`
	CachedInputTokens int64 `json:"cached_input_tokens,omitempty"`
}

// Chunk is one recorded stream chunk.
type Chunk struct {
	Text         string          `json:"text,omitempty"`
	ToolCalls    []ToolCallDelta `json:"tool_calls,omitempty"`
	FinishReason string          `json:"finish_reason,omitempty"`
	Usage        *Usage          `json:"usage,omitempty"`
}

// ToolCallDelta is one recorded tool call increment.
type ToolCallDelta struct {
	Index     int    `json:"index"`
	ID        string `json:"id,omitempty"`
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments,omitempty"`
}

// NormalRequest is what a fingerprint covers.
type NormalRequest struct {
	System   string          `json:"system,omitempty"`
	Messages []NormalMessage `json:"messages"`
	Tools    []NormalTool    `json:"tools,omitempty"`
}

// NormalMessage is a message without IDs, with white space collapsed.
type NormalMessage struct {
	Role      string     `json:"role"`
	Text      string     `json:"text,omitempty"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
}

// NormalTool is a tool's name and compacted schema.
type NormalTool struct {
	Name       string          `json:"name"`
	Parameters json.RawMessage `json:"parameters,omitempty"`
}

// Normalise reduces a request to what identifies the conversation: the
// model (an alias can change), sampling parameters and tool call IDs
// (they differ between runs) are left out.
func Normalise(req *llm.ChatRequest) *NormalRequest {
	n := &NormalRequest{System: collapse(req.System), Messages: []NormalMessage{}}
	for _, m := range req.Messages {
		nm := NormalMessage{Role: m.Role, Text: collapse(m.Text())}
		for _, tc := range m.ToolCalls {
			nm.ToolCalls = append(nm.ToolCalls, ToolCall{Name: tc.Name, Arguments: compactJSON(tc.Arguments)})
		}
		n.Messages = append(n.Messages, nm)
	}
	for _, t := range req.Tools {
		n.Tools = append(n.Tools, NormalTool{Name: t.Name, Parameters: json.RawMessage(compactJSON(string(t.Parameters)))})
	}
	return n
}

// Fingerprint is "sha256:" and the hex digest of the normalised request.
func Fingerprint(req *llm.ChatRequest) string {
	b, _ := json.Marshal(Normalise(req))
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

func compactJSON(s string) string {
	var buf bytes.Buffer
	if json.Compact(&buf, []byte(s)) != nil {
		return collapse(s)
	}
	return buf.String()
}

// MaxCassetteBytes bounds a cassette file: a cassette pointing at
// /dev/zero or a huge file must fail with a message, not grow the plugin
// without bound.
const MaxCassetteBytes = 64 << 20

// LoadCassette reads a cassette; a missing file is an empty cassette only
// when allowMissing (record mode).
func LoadCassette(path string, allowMissing bool) (*Cassette, error) {
	b, err := boundedread.ReadFile(path, MaxCassetteBytes)
	if errors.Is(err, fs.ErrNotExist) && allowMissing {
		return &Cassette{Version: 1}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read cassette: %w (record one with mode = \"record\")", err)
	}
	var c Cassette
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("cassette %s is not valid: %w (format: plugins/llm-replay/README.md)", path, err)
	}
	if c.Version != 1 {
		return nil, fmt.Errorf("cassette %s has version %d; this plugin reads version 1", path, c.Version)
	}
	for i, it := range c.Interactions {
		m := it.Match
		n := 0
		for _, set := range []bool{m.Fingerprint != "", m.LastUser != "", m.LastUserContains != "", m.Default} {
			if set {
				n++
			}
		}
		if n != 1 {
			return nil, fmt.Errorf("cassette %s: interactions[%d] (%s): match must set exactly one of fingerprint, last_user, last_user_contains, default", path, i, it.Name)
		}
	}
	return &c, nil
}

// Save writes the cassette atomically.
func (c *Cassette) Save(path string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("save cassette: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("save cassette: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save cassette: %w", err)
	}
	return nil
}
