package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/nemoclave/nemoclave/sdk/dataproc"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
	"github.com/nemoclave/nemoclave/sdk/status"
)

const version = "0.1.0"

type config struct {
	// MaxBytes bounds an input document; decompressed parts of DOCX and
	// XLSX are bounded by unzipFactor times it.
	MaxBytes int64 `json:"max_bytes"`
	// ChunkSize and ChunkOverlap are the chunk defaults, in characters.
	ChunkSize    int `json:"chunk_size"`
	ChunkOverlap int `json:"chunk_overlap"`
}

func defaultConfig() config { return config{MaxBytes: 50 << 20, ChunkSize: 1000, ChunkOverlap: 150} }

func parseConfig(raw json.RawMessage) (config, error) {
	c := defaultConfig()
	if len(raw) == 0 {
		return c, nil
	}
	var in struct {
		MaxBytes     *float64 `json:"max_bytes"`
		ChunkSize    *float64 `json:"chunk_size"`
		ChunkOverlap *float64 `json:"chunk_overlap"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if in.MaxBytes != nil {
		c.MaxBytes = int64(*in.MaxBytes)
	}
	if in.ChunkSize != nil {
		c.ChunkSize = int(*in.ChunkSize)
	}
	if in.ChunkOverlap != nil {
		c.ChunkOverlap = int(*in.ChunkOverlap)
	}
	return c, nil
}

func (c config) validate() []plugin.Diagnostic {
	var ds []plugin.Diagnostic
	if c.MaxBytes < 1024 || c.MaxBytes > 1<<30 {
		ds = append(ds, plugin.Errorf([]string{"max_bytes"}, "max_bytes must be between 1024 and 1073741824, got %d", c.MaxBytes))
	}
	if c.ChunkSize < minChunk || c.ChunkSize > maxChunk {
		ds = append(ds, plugin.Errorf([]string{"chunk_size"}, "chunk_size must be between %d and %d characters, got %d", minChunk, maxChunk, c.ChunkSize))
	}
	if c.ChunkOverlap < 0 || c.ChunkOverlap >= c.ChunkSize/2 {
		ds = append(ds, plugin.Errorf([]string{"chunk_overlap"}, "chunk_overlap must be at least 0 and less than half of chunk_size (%d), got %d", c.ChunkSize/2, c.ChunkOverlap))
	}
	return ds
}

type docsPlugin struct {
	plugin.Base
	mu  sync.RWMutex
	cfg config
}

var _ dataproc.Processor = (*docsPlugin)(nil)

func (*docsPlugin) Info() plugin.Info {
	return plugin.Info{
		Name:        "dataproc-docs",
		Version:     version,
		Description: "Extract text from text, Markdown, HTML, PDF, DOCX and XLSX; chunk with overlap; generate and convert XLSX and CSV.",
		Kinds:       []plugin.Kind{plugin.KindDataProc},
	}
}

func (*docsPlugin) ConfigSchema() *schema.Schema {
	return &schema.Schema{Block: schema.Block{
		Description: "Document extraction, chunking and table generation. Operations: extract_text, chunk, generate, convert.",
		Attributes: []schema.Attribute{
			{Name: "max_bytes", Type: "number", Default: json.RawMessage("52428800"), Description: "Largest input document, in bytes."},
			{Name: "chunk_size", Type: "number", Default: json.RawMessage("1000"), Description: "Default chunk length in characters (an operation's options may override it)."},
			{Name: "chunk_overlap", Type: "number", Default: json.RawMessage("150"), Description: "Default overlap between consecutive chunks, in characters."},
		},
	}}
}

func (*docsPlugin) ValidateConfig(_ context.Context, raw json.RawMessage) []plugin.Diagnostic {
	c, err := parseConfig(raw)
	if err != nil {
		return []plugin.Diagnostic{plugin.Errorf(nil, "%v", err)}
	}
	return c.validate()
}

func (p *docsPlugin) Configure(_ context.Context, cfg plugin.Config, _ plugin.Host) error {
	c, err := parseConfig(cfg.JSON) // the SDK ran ValidateConfig already
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.cfg = c
	p.mu.Unlock()
	return nil
}

func (p *docsPlugin) config() config {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.cfg
}

func (p *docsPlugin) ListOperations(context.Context) ([]dataproc.Operation, error) {
	return operations, nil
}

func (p *docsPlugin) Transform(ctx context.Context, req *dataproc.TransformRequest) (*dataproc.TransformResponse, error) {
	c := p.config()
	if int64(len(req.Input.Data)) > c.MaxBytes {
		return nil, status.Errorf(status.InvalidArgument, "input %q is %d bytes, more than max_bytes (%d); split it or raise max_bytes in the plugin config", req.Input.Name, len(req.Input.Data), c.MaxBytes)
	}
	switch req.Operation {
	case dataproc.OpExtractText:
		var o struct{}
		if err := decodeOptions(req.Options, &o); err != nil {
			return nil, err
		}
		text, err := extractText(ctx, c, req.Input)
		if err != nil {
			return nil, err
		}
		return &dataproc.TransformResponse{Text: text}, nil
	case dataproc.OpChunk:
		return chunkOp(ctx, c, req)
	case dataproc.OpGenerate:
		return generateOp(c, req)
	case dataproc.OpConvert:
		return convertOp(ctx, c, req)
	}
	return nil, status.Errorf(status.NotFound, "operation %q: this plugin offers extract_text, chunk, generate and convert", req.Operation)
}

// decodeOptions unmarshals an operation's options, refusing unknown
// fields so a misspelt option is reported rather than ignored.
func decodeOptions(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytesReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return status.Errorf(status.InvalidArgument, "options: %v; see the operation's options schema (ListOperations)", err)
	}
	return nil
}

func main() {
	plugin.Serve(&docsPlugin{cfg: defaultConfig()})
}
