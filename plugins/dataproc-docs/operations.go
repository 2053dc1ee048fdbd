package main

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/nemoclave/nemoclave/sdk/dataproc"
)

// MIME types this plugin reads or writes.
const (
	mimeText     = "text/plain"
	mimeMarkdown = "text/markdown"
	mimeHTML     = "text/html"
	mimeCSV      = "text/csv"
	mimeJSON     = "application/json"
	mimePDF      = "application/pdf"
	mimeDOCX     = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	mimeXLSX     = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
)

var documentTypes = []string{mimeText, mimeMarkdown, mimeHTML, mimeCSV, mimePDF, mimeDOCX, mimeXLSX, "text/*"}

var operations = []dataproc.Operation{
	{
		Name:          dataproc.OpExtractText,
		Description:   "Extract the text of a document: plain text and CSV as is, Markdown without markup, HTML without tags, PDF laid out by line, DOCX by paragraph, XLSX as tab-separated rows per sheet.",
		InputTypes:    documentTypes,
		OutputTypes:   []string{mimeText},
		OptionsSchema: json.RawMessage(`{"type":"object","properties":{},"additionalProperties":false}`),
	},
	{
		Name:        dataproc.OpChunk,
		Description: "Extract the text, then split it into overlapping chunks, ending chunks at paragraph, line, sentence or word boundaries where possible. Chunk offsets are byte offsets into the extracted text.",
		InputTypes:  documentTypes,
		OptionsSchema: json.RawMessage(`{"type":"object","properties":{` +
			`"size":{"type":"integer","minimum":50,"description":"Chunk length in the chosen unit (default from the plugin config, in characters)."},` +
			`"overlap":{"type":"integer","minimum":0,"description":"Overlap between consecutive chunks, in the chosen unit."},` +
			`"unit":{"type":"string","enum":["chars","tokens"],"description":"chars (default) or tokens, approximated as 4 characters each."}` +
			`},"additionalProperties":false}`),
	},
	{
		Name: dataproc.OpGenerate,
		Description: "Generate an XLSX workbook or CSV files from tabular data: JSON (an array of row arrays, an array of objects, {\"columns\":[...],\"rows\":[...]}, " +
			"or {\"sheets\":[{\"name\":...,\"columns\":[...],\"rows\":[...]}]}) or CSV.",
		InputTypes:  []string{mimeJSON, mimeCSV},
		OutputTypes: []string{mimeXLSX, mimeCSV},
		OptionsSchema: json.RawMessage(`{"type":"object","properties":{` +
			`"format":{"type":"string","enum":["xlsx","csv"],"description":"Output format (default xlsx). CSV writes one file per sheet."},` +
			`"name":{"type":"string","description":"Output file name without extension (default: the input's name, or 'table')."},` +
			`"escape_formulas":{"type":"boolean","description":"Prefix CSV cells starting with = + - @ with an apostrophe so spreadsheets do not run them as formulas (default true)."}` +
			`},"additionalProperties":false}`),
	},
	{
		Name:        dataproc.OpConvert,
		Description: "Convert between formats: XLSX to CSV (one file per sheet, or the sheet named), CSV or JSON tables to XLSX, and any readable document to plain text.",
		InputTypes:  documentTypes,
		OutputTypes: []string{mimeCSV, mimeXLSX, mimeText},
		OptionsSchema: json.RawMessage(`{"type":"object","properties":{` +
			`"to":{"type":"string","enum":["csv","xlsx","text"],"description":"Target format."},` +
			`"sheet":{"type":"string","description":"XLSX to CSV: only this sheet."},` +
			`"name":{"type":"string","description":"Output file name without extension."}` +
			`},"required":["to"],"additionalProperties":false}`),
	},
}

// detectType decides a document's type: its declared MIME type, else its
// name's extension, else its content.
func detectType(doc dataproc.Document) string {
	if doc.MIMEType != "" {
		if mt, _, err := mime.ParseMediaType(doc.MIMEType); err == nil && mt != "application/octet-stream" {
			if mt == "text/x-markdown" {
				return mimeMarkdown
			}
			return mt
		}
	}
	switch strings.ToLower(path.Ext(doc.Name)) {
	case ".md", ".markdown":
		return mimeMarkdown
	case ".html", ".htm", ".xhtml":
		return mimeHTML
	case ".txt", ".text", ".log":
		return mimeText
	case ".csv":
		return mimeCSV
	case ".json":
		return mimeJSON
	case ".pdf":
		return mimePDF
	case ".docx":
		return mimeDOCX
	case ".xlsx":
		return mimeXLSX
	}
	data := doc.Data
	switch {
	case bytes.HasPrefix(data, []byte("%PDF-")):
		return mimePDF
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		switch {
		case bytes.Contains(data, []byte("word/document.xml")):
			return mimeDOCX
		case bytes.Contains(data, []byte("xl/workbook.xml")):
			return mimeXLSX
		}
	}
	mt, _, _ := mime.ParseMediaType(http.DetectContentType(data))
	return mt
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
