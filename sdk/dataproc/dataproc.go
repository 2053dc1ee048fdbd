package dataproc

import (
	"context"
	"encoding/json"

	"github.com/nemoclave/nemoclave/sdk/status"
)

// Processor transforms documents. Implementations must be safe for
// concurrent use and must not touch the filesystem outside their state
// directory: documents arrive and leave as bytes.
//
// An unknown operation is status.NotFound; an input type the operation
// does not take, or options that do not match its schema, are
// status.InvalidArgument.
type Processor interface {
	// ListOperations reports what the processor can do, so agents and
	// blueprints can pick an operation by name and input type.
	ListOperations(ctx context.Context) ([]Operation, error)
	Transform(ctx context.Context, req *TransformRequest) (*TransformResponse, error)
}

// Well-known operation names. Plugins may add their own; using these for
// the common cases lets the host pick a processor without configuration.
const (
	// OpExtractText fills TransformResponse.Text.
	OpExtractText = "extract_text"
	// OpChunk fills TransformResponse.Chunks.
	OpChunk = "chunk"
	// OpConvert returns the input in another format in Outputs.
	OpConvert = "convert"
	// OpGenerate creates files (xlsx, csv, ...) in Outputs from the input.
	OpGenerate = "generate"
)

// Operation describes one operation.
type Operation struct {
	Name        string
	Description string
	// InputTypes and OutputTypes are MIME types ("text/*" allowed); empty
	// InputTypes means any.
	InputTypes  []string
	OutputTypes []string
	// OptionsSchema is the JSON Schema of TransformRequest.Options.
	OptionsSchema json.RawMessage
}

// Document is a named blob of data.
type Document struct {
	Name     string
	MIMEType string
	Data     []byte
}

// Chunk is a piece of a document's text. Index numbers chunks in order
// from 0. Start and End are byte offsets into the extracted text (End
// exclusive, so Text[Start:End] is the chunk when TransformResponse.Text
// is returned too), so callers can cite sources.
type Chunk struct {
	Index int
	Text  string
	Start int64
	End   int64
}

// TransformRequest runs Operation on Input.
type TransformRequest struct {
	Operation string
	Input     Document
	// Options is a JSON object matching the operation's OptionsSchema
	// (nil means defaults).
	Options json.RawMessage
}

// TransformResponse holds whichever outputs the operation produces.
type TransformResponse struct {
	Text    string
	Chunks  []Chunk
	Outputs []Document
}

// NotSupported can be embedded to satisfy Processor while implementing
// only part of it; each method returns status.ErrNotSupported.
type NotSupported struct{}

func (NotSupported) ListOperations(context.Context) ([]Operation, error) {
	return nil, status.ErrNotSupported
}

func (NotSupported) Transform(context.Context, *TransformRequest) (*TransformResponse, error) {
	return nil, status.ErrNotSupported
}
