package main

import (
	"context"
	"strings"

	"github.com/nemoclave/nemoclave/sdk/dataproc"
	"github.com/nemoclave/nemoclave/sdk/status"
)

func chunkOp(ctx context.Context, c config, req *dataproc.TransformRequest) (*dataproc.TransformResponse, error) {
	var o struct {
		Size    int    `json:"size"`
		Overlap *int   `json:"overlap"`
		Unit    string `json:"unit"`
	}
	if err := decodeOptions(req.Options, &o); err != nil {
		return nil, err
	}
	mult := 1
	switch o.Unit {
	case "", "chars":
	case "tokens":
		mult = charsPerToken
	default:
		return nil, status.Errorf(status.InvalidArgument, `options.unit must be "chars" or "tokens", got %q`, o.Unit)
	}
	size, overlap := c.ChunkSize, c.ChunkOverlap
	if o.Size > 0 {
		size = o.Size * mult
		if o.Overlap == nil {
			overlap = min(overlap, size/4)
		}
	}
	if o.Overlap != nil {
		overlap = *o.Overlap * mult
	}
	if size < minChunk || size > maxChunk {
		return nil, status.Errorf(status.InvalidArgument, "chunk size must be between %d and %d characters, got %d", minChunk, maxChunk, size)
	}
	if overlap < 0 || overlap >= size/2 {
		return nil, status.Errorf(status.InvalidArgument, "overlap must be at least 0 and less than half the chunk size (%d characters), got %d", size/2, overlap)
	}
	text, err := extractText(ctx, c, req.Input)
	if err != nil {
		return nil, err
	}
	return &dataproc.TransformResponse{Text: text, Chunks: chunkText(text, size, overlap)}, nil
}

func generateOp(c config, req *dataproc.TransformRequest) (*dataproc.TransformResponse, error) {
	var o struct {
		Format         string `json:"format"`
		Name           string `json:"name"`
		EscapeFormulas *bool  `json:"escape_formulas"`
	}
	if err := decodeOptions(req.Options, &o); err != nil {
		return nil, err
	}
	typ := detectType(req.Input)
	if typ != mimeJSON && typ != mimeCSV {
		if typ == mimeText && looksJSON(req.Input.Data) {
			typ = mimeJSON
		} else {
			return nil, status.Errorf(status.InvalidArgument, "%s: generate takes JSON or CSV tables, got %q", docName(req.Input), typ)
		}
	}
	sheets, err := parseTables(req.Input.Data, typ)
	if err != nil {
		return nil, tableError(docName(req.Input), err)
	}
	return writeTables(sheets, o.Format, baseName(o.Name, req.Input.Name), o.EscapeFormulas == nil || *o.EscapeFormulas)
}

func writeTables(sheets []sheet, format, name string, escape bool) (*dataproc.TransformResponse, error) {
	switch format {
	case "", "xlsx":
		data, err := writeXLSX(sheets)
		if err != nil {
			return nil, status.Errorf(status.Internal, "write XLSX: %v", err)
		}
		return &dataproc.TransformResponse{Outputs: []dataproc.Document{{Name: name + ".xlsx", MIMEType: mimeXLSX, Data: data}}}, nil
	case "csv":
		var out []dataproc.Document
		for i, s := range sheets {
			data, err := writeCSV(s, escape)
			if err != nil {
				return nil, status.Errorf(status.Internal, "write CSV: %v", err)
			}
			file := name + ".csv"
			if len(sheets) > 1 {
				file = name + "-" + sheetName(s.Name, i, map[string]bool{}) + ".csv"
			}
			out = append(out, dataproc.Document{Name: file, MIMEType: mimeCSV, Data: data})
		}
		return &dataproc.TransformResponse{Outputs: out}, nil
	}
	return nil, status.Errorf(status.InvalidArgument, `options.format must be "xlsx" or "csv", got %q`, format)
}

func convertOp(ctx context.Context, c config, req *dataproc.TransformRequest) (*dataproc.TransformResponse, error) {
	var o struct {
		To    string `json:"to"`
		Sheet string `json:"sheet"`
		Name  string `json:"name"`
	}
	if err := decodeOptions(req.Options, &o); err != nil {
		return nil, err
	}
	typ := detectType(req.Input)
	name := baseName(o.Name, req.Input.Name)
	switch o.To {
	case "text":
		text, err := extractText(ctx, c, req.Input)
		if err != nil {
			return nil, err
		}
		return &dataproc.TransformResponse{Text: text, Outputs: []dataproc.Document{{Name: name + ".txt", MIMEType: mimeText + "; charset=utf-8", Data: []byte(text)}}}, nil
	case "csv", "xlsx":
		var sheets []sheet
		var err error
		switch typ {
		case mimeXLSX:
			sheets, err = readXLSX(req.Input.Data, c.MaxBytes*unzipFactor)
		case mimeCSV, mimeJSON:
			sheets, err = parseTables(req.Input.Data, typ)
		default:
			return nil, status.Errorf(status.InvalidArgument, "%s: convert to %s takes XLSX, CSV or JSON tables, got %q", docName(req.Input), o.To, typ)
		}
		if err != nil {
			return nil, tableError(docName(req.Input), err)
		}
		if o.Sheet != "" {
			var only []sheet
			for _, s := range sheets {
				if s.Name == o.Sheet {
					only = append(only, s)
				}
			}
			if len(only) == 0 {
				return nil, status.Errorf(status.InvalidArgument, "%s has no sheet %q", docName(req.Input), o.Sheet)
			}
			sheets = only
		}
		// Cells read back from a workbook are data, so CSV escaping applies.
		return writeTables(sheets, o.To, name, true)
	case "":
		return nil, status.Errorf(status.InvalidArgument, `options.to is required: "csv", "xlsx" or "text"`)
	}
	return nil, status.Errorf(status.InvalidArgument, `options.to must be "csv", "xlsx" or "text", got %q`, o.To)
}

func looksJSON(data []byte) bool {
	s := strings.TrimSpace(string(data))
	return strings.HasPrefix(s, "[") || strings.HasPrefix(s, "{")
}
