package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nemoclave/nemoclave/internal/wsfs"
	"github.com/nemoclave/nemoclave/sdk/tools"
)

var writeFileTool = tools.Tool{
	Name:        "write_file",
	Description: "Write a text file in the workspace, replacing it if it exists (or appending). Missing parent directories are created unless create_dirs is false.",
	InputSchema: json.RawMessage(`{"type":"object","properties":{` +
		`"path":{"type":"string","description":"File to write, relative to the workspace."},` +
		`"content":{"type":"string","description":"The complete new content (or the text to append)."},` +
		`"append":{"type":"boolean","description":"Append to the file instead of replacing it (default false)."},` +
		`"create_dirs":{"type":"boolean","description":"Create missing parent directories (default true)."}` +
		`},"required":["path","content"],"additionalProperties":false}`),
	Destructive: true,
}

func (w *workspace) writeFile(ctx context.Context, raw json.RawMessage) *tools.CallResult {
	var args struct {
		Path       string  `json:"path"`
		Content    *string `json:"content"`
		Append     bool    `json:"append"`
		CreateDirs *bool   `json:"create_dirs"`
	}
	if res := decodeArgs(raw, &args); res != nil {
		return res
	}
	if args.Path == "" || args.Content == nil {
		return tools.ErrorResult("path and content are required")
	}
	if int64(len(*args.Content)) > w.cfg.MaxBytes {
		return tools.ErrorResult(fmt.Sprintf("content is %d bytes, more than max_bytes (%d); write the file in parts with append=true", len(*args.Content), w.cfg.MaxBytes))
	}
	rel, err := w.resolve(args.Path)
	if err != nil {
		return tools.ErrorResult(err.Error())
	}
	if rel == "." {
		return tools.ErrorResult("path names the workspace itself; give a file name")
	}
	// wsfs writes without following any symlink, refuses FIFOs and
	// devices, and refuses protected paths (.git and the configured list)
	// as the sandbox refuses a direct write.
	noMkdir := args.CreateDirs != nil && !*args.CreateDirs
	if _, err := w.dir.WriteFile(ctx, rel, []byte(*args.Content), wsfs.WriteOptions{Append: args.Append, NoMkdir: noMkdir}); err != nil {
		return tools.ErrorResult(explain(args.Path, err))
	}
	n := len(*args.Content)
	verb := "wrote"
	if args.Append {
		verb = "appended"
	}
	return &tools.CallResult{Content: []tools.Content{tools.TextContent(fmt.Sprintf("%s %d bytes to %s", verb, n, args.Path))}}
}
