package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"strings"

	"github.com/nemoclave/nemoclave/sdk/tools"
)

const (
	defaultMaxResults = 100
	maxMaxResults     = 1000
	// maxLineChars bounds one matching line as shown; minified files would
	// otherwise put megabytes on one line.
	maxLineChars = 300
)

var searchFilesTool = tools.Tool{
	Name:        "search_files",
	Description: "Search the contents of text files in the workspace for a regular expression (RE2 syntax) or a literal string. Results are 'path:line: text'. Binary files, symlinks, .git and files larger than max_bytes are skipped.",
	InputSchema: json.RawMessage(`{"type":"object","properties":{` +
		`"pattern":{"type":"string","description":"RE2 regular expression, or the literal text when literal is true."},` +
		`"literal":{"type":"boolean","description":"Treat pattern as plain text (default false)."},` +
		`"case_insensitive":{"type":"boolean","description":"Ignore case (default false)."},` +
		`"path":{"type":"string","description":"Directory (or file) to search, relative to the workspace (default: the workspace root)."},` +
		`"glob":{"type":"string","description":"Only files matching this glob ('*.go', 'docs/**/*.md')."},` +
		`"max_results":{"type":"integer","minimum":1,"maximum":1000,"description":"Stop after this many matching lines (default 100)."}` +
		`},"required":["pattern"],"additionalProperties":false}`),
	ReadOnly: true,
}

func (w *workspace) searchFiles(ctx context.Context, raw json.RawMessage) *tools.CallResult {
	var args struct {
		Pattern         string `json:"pattern"`
		Literal         bool   `json:"literal"`
		CaseInsensitive bool   `json:"case_insensitive"`
		Path            string `json:"path"`
		Glob            string `json:"glob"`
		MaxResults      int    `json:"max_results"`
	}
	if res := decodeArgs(raw, &args); res != nil {
		return res
	}
	if args.Pattern == "" {
		return tools.ErrorResult("pattern is required")
	}
	if args.MaxResults <= 0 {
		args.MaxResults = defaultMaxResults
	}
	args.MaxResults = min(args.MaxResults, maxMaxResults)
	expr := args.Pattern
	if args.Literal {
		expr = regexp.QuoteMeta(expr)
	}
	if args.CaseInsensitive {
		expr = "(?i)" + expr
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return tools.ErrorResult(fmt.Sprintf("pattern is not a valid RE2 regular expression: %v (set literal=true to search for the text as is)", err))
	}
	rel, err := w.resolve(args.Path)
	if err != nil {
		return tools.ErrorResult(err.Error())
	}
	m, err := newMatcher(args.Glob)
	if err != nil {
		return tools.ErrorResult(err.Error())
	}

	var hits []string
	full := false
	skippedLarge := 0
	fsys := w.root.FS()
	err = fs.WalkDir(fsys, rel, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == rel {
				return err
			}
			return nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if d.IsDir() {
			if p != rel && skipDirs[d.Name()] {
				return fs.SkipDir
			}
			return nil
		}
		// Symlinks are skipped rather than followed: a link to a file
		// inside the workspace is searched under its real path anyway.
		if !d.Type().IsRegular() || !m.match(p) {
			return nil
		}
		if info, err := d.Info(); err != nil || info.Size() > w.cfg.MaxBytes {
			skippedLarge++
			return nil
		}
		// Read through wsfs: the entry may have been swapped for a FIFO
		// or a link since the walk saw it, or have grown.
		data, err := w.dir.ReadFile(ctx, p, w.cfg.MaxBytes)
		if err != nil || looksBinary(data) {
			return nil
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 0, 64<<10), int(w.cfg.MaxBytes)+1)
		for n := 1; sc.Scan(); n++ {
			line := sc.Bytes()
			if !re.Match(line) {
				continue
			}
			if len(hits) == args.MaxResults {
				full = true
				return fs.SkipAll
			}
			hits = append(hits, fmt.Sprintf("%s:%d: %s", p, n, clip(string(line))))
		}
		return nil
	})
	if err != nil && err != fs.SkipAll {
		return tools.ErrorResult(explain(display(args.Path, rel), err))
	}
	var out strings.Builder
	if len(hits) == 0 {
		out.WriteString("no matches")
	} else {
		out.WriteString(strings.Join(hits, "\n"))
	}
	if full {
		fmt.Fprintf(&out, "\n[stopped after %d matches; narrow the search with path or glob, or raise max_results]", args.MaxResults)
	}
	if skippedLarge > 0 {
		fmt.Fprintf(&out, "\n[%d file(s) larger than max_bytes (%d) were not searched]", skippedLarge, w.cfg.MaxBytes)
	}
	return &tools.CallResult{Content: []tools.Content{tools.TextContent(out.String())}}
}

func clip(s string) string {
	s = strings.TrimRight(s, "\r")
	if len(s) <= maxLineChars {
		return s
	}
	cut := maxLineChars
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
