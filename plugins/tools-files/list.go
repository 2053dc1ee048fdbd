package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/nemoclave/nemoclave/sdk/tools"
)

// maxListEntries bounds one list_files result so a recursive listing of a
// large tree cannot flood the model's context.
const maxListEntries = 2000

var listFilesTool = tools.Tool{
	Name:        "list_files",
	Description: "List files and directories in the workspace. Directories end with '/'; files show their size in bytes. Recursive listings skip .git.",
	InputSchema: json.RawMessage(`{"type":"object","properties":{` +
		`"path":{"type":"string","description":"Directory to list, relative to the workspace (default: the workspace root)."},` +
		`"recursive":{"type":"boolean","description":"List the whole tree below path (default false)."},` +
		`"glob":{"type":"string","description":"Only entries matching this glob: '*.go' matches base names at any depth, 'src/**/*.ts' matches paths; '**' spans directories."}` +
		`},"additionalProperties":false}`),
	ReadOnly: true,
}

// skipDirs are not descended into by recursive walks: they are large and
// rarely what the model is looking for. Listing them directly still works.
var skipDirs = map[string]bool{".git": true}

func (w *workspace) listFiles(ctx context.Context, raw json.RawMessage) *tools.CallResult {
	var args struct {
		Path      string `json:"path"`
		Recursive bool   `json:"recursive"`
		Glob      string `json:"glob"`
	}
	if res := decodeArgs(raw, &args); res != nil {
		return res
	}
	rel, err := w.resolve(args.Path)
	if err != nil {
		return tools.ErrorResult(err.Error())
	}
	m, err := newMatcher(args.Glob)
	if err != nil {
		return tools.ErrorResult(err.Error())
	}
	fsys := w.root.FS()
	info, err := fs.Stat(fsys, rel)
	if err != nil {
		return tools.ErrorResult(explain(display(args.Path, rel), err))
	}
	if !info.IsDir() {
		return &tools.CallResult{Content: []tools.Content{tools.TextContent(entryLine(rel, info.IsDir(), info.Mode(), info.Size()))}}
	}
	var lines []string
	truncated := false
	add := func(p string, d fs.DirEntry) error {
		if !m.match(p) {
			return nil
		}
		if len(lines) >= maxListEntries {
			truncated = true
			return fs.SkipAll
		}
		var size int64
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				size = fi.Size()
			}
		}
		lines = append(lines, entryLine(p, d.IsDir(), d.Type(), size))
		return nil
	}
	if args.Recursive {
		err = fs.WalkDir(fsys, rel, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if p == rel {
					return err
				}
				return nil // an unreadable subdirectory is left out, not fatal
			}
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			if p == rel {
				return nil
			}
			if d.IsDir() && skipDirs[d.Name()] {
				return fs.SkipDir
			}
			return add(p, d)
		})
	} else {
		var entries []fs.DirEntry
		entries, err = fs.ReadDir(fsys, rel)
		for _, d := range entries {
			if add(path.Join(rel, d.Name()), d) != nil {
				break
			}
		}
	}
	if err != nil && !errors.Is(err, fs.SkipAll) {
		return tools.ErrorResult(explain(display(args.Path, rel), err))
	}
	if len(lines) == 0 {
		return &tools.CallResult{Content: []tools.Content{tools.TextContent("(no entries)")}}
	}
	out := strings.Join(lines, "\n")
	if truncated {
		out += fmt.Sprintf("\n[listing stopped after %d entries; narrow it with path or glob]", maxListEntries)
	}
	return &tools.CallResult{Content: []tools.Content{tools.TextContent(out)}}
}

func entryLine(p string, dir bool, mode fs.FileMode, size int64) string {
	switch {
	case dir:
		return p + "/"
	case mode&fs.ModeSymlink != 0:
		return p + " (symlink)"
	case !mode.IsRegular():
		return p + " (special file)"
	}
	return fmt.Sprintf("%s  %d", p, size)
}

// display is the path to show in messages: what the model wrote, or the
// workspace root for an empty path.
func display(given, rel string) string {
	if given == "" {
		return rel
	}
	return given
}
