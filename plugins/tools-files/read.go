package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/nemoclave/nemoclave/sdk/tools"
)

// defaultReadLines is how many lines read_file returns when the model does
// not say; max_bytes still applies.
const defaultReadLines = 2000

var readFileTool = tools.Tool{
	Name:        "read_file",
	Description: "Read a text file from the workspace. Long files are returned a window of lines at a time; the result says how to continue.",
	InputSchema: json.RawMessage(`{"type":"object","properties":{` +
		`"path":{"type":"string","description":"File to read, relative to the workspace."},` +
		`"offset":{"type":"integer","minimum":1,"description":"First line to return, counting from 1 (default 1)."},` +
		`"limit":{"type":"integer","minimum":1,"description":"Maximum number of lines to return (default 2000)."}` +
		`},"required":["path"],"additionalProperties":false}`),
	ReadOnly: true,
}

func (w *workspace) readFile(ctx context.Context, raw json.RawMessage) *tools.CallResult {
	var args struct {
		Path   string `json:"path"`
		Offset int    `json:"offset"`
		Limit  int    `json:"limit"`
	}
	if res := decodeArgs(raw, &args); res != nil {
		return res
	}
	if args.Path == "" {
		return tools.ErrorResult("path is required")
	}
	if args.Offset < 0 || args.Limit < 0 {
		return tools.ErrorResult("offset and limit must be positive")
	}
	if args.Offset == 0 {
		args.Offset = 1
	}
	if args.Limit == 0 {
		args.Limit = defaultReadLines
	}
	rel, err := w.resolve(args.Path)
	if err != nil {
		return tools.ErrorResult(err.Error())
	}
	// wsfs refuses FIFOs, sockets and devices before reading (a FIFO
	// would otherwise block this call forever) and bounds the call by a
	// deadline; the line loop below bounds what is returned.
	f, err := w.dir.Open(ctx, rel)
	if errors.Is(err, fs.ErrInvalid) {
		return tools.ErrorResult(fmt.Sprintf("%s is a directory; use list_files to see its entries", args.Path))
	}
	if err != nil {
		return tools.ErrorResult(explain(args.Path, err))
	}
	defer f.Close()
	info := struct{ size int64 }{f.Size}

	r := bufio.NewReaderSize(f, 64<<10)
	if head, _ := r.Peek(8192); looksBinary(head) {
		return tools.ErrorResult(fmt.Sprintf("%s looks like a binary file (%d bytes); read_file returns text only", args.Path, info.size))
	}
	var out strings.Builder
	line, shown, first := 0, 0, 0
	more := false
	for {
		s, err := r.ReadString('\n')
		if s != "" {
			line++
			if line >= args.Offset {
				if shown == args.Limit || int64(out.Len()+len(s)) > w.cfg.MaxBytes {
					more = true
					break
				}
				if shown == 0 {
					first = line
				}
				out.WriteString(s)
				shown++
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return tools.ErrorResult(explain(args.Path, err))
		}
	}
	text := out.String()
	switch {
	case shown == 0 && line == 0:
		text = "(empty file)"
	case shown == 0 && more:
		return tools.ErrorResult(fmt.Sprintf("%s: line %d alone is longer than max_bytes (%d); this file cannot be read as text here", args.Path, args.Offset, w.cfg.MaxBytes))
	case shown == 0:
		return tools.ErrorResult(fmt.Sprintf("%s has %d lines; offset %d is past the end", args.Path, line, args.Offset))
	case more:
		last := first + shown - 1
		text += fmt.Sprintf("\n[showing lines %d-%d; the file continues: call read_file with offset=%d to read more]", first, last, last+1)
	}
	return &tools.CallResult{Content: []tools.Content{tools.TextContent(text)}}
}
