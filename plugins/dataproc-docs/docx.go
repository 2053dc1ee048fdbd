package main

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// unzipFactor bounds how much a zipped document may expand: its XML parts
// may total this many times max_bytes.
const unzipFactor = 10

// docxText reads word/document.xml from a DOCX (a zip of XML) and keeps
// its words: paragraphs end with a blank line, table cells with a tab and
// rows with a line break, tabs and breaks inside runs as themselves.
func docxText(data []byte, limit int64) (string, error) {
	zr, err := zip.NewReader(bytesReader(data), int64(len(data)))
	if err != nil {
		return "", fmt.Errorf("not a DOCX (zip) file: %w", err)
	}
	var doc *zip.File
	for _, f := range zr.File {
		if f.Name == "word/document.xml" {
			doc = f
		}
	}
	if doc == nil {
		return "", errors.New("no word/document.xml inside; is this a DOCX file?")
	}
	rc, err := doc.Open()
	if err != nil {
		return "", fmt.Errorf("open word/document.xml: %w", err)
	}
	defer rc.Close()
	lr := &io.LimitedReader{R: rc, N: limit + 1}
	dec := xml.NewDecoder(lr)
	var b bytes.Buffer
	inText := false
	cellDepth := 0
	trimSpace := func() {
		for b.Len() > 0 && b.Bytes()[b.Len()-1] == ' ' {
			b.Truncate(b.Len() - 1)
		}
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if lr.N <= 0 {
				return "", fmt.Errorf("word/document.xml expands beyond %d bytes", limit)
			}
			return "", fmt.Errorf("word/document.xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "t":
				inText = true
			case "tc":
				cellDepth++
			case "tab":
				b.WriteByte('\t')
			case "br", "cr":
				b.WriteByte('\n')
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "t":
				inText = false
			case "p":
				// Paragraphs inside a table cell stay on the row's line.
				if cellDepth > 0 {
					b.WriteByte(' ')
				} else {
					b.WriteString("\n\n")
				}
			case "tc":
				cellDepth--
				trimSpace()
				b.WriteByte('\t')
			case "tr":
				trimSpace()
				b.WriteByte('\n')
			}
		case xml.CharData:
			if inText {
				b.Write(t)
			}
		}
	}
	if lr.N <= 0 {
		return "", fmt.Errorf("word/document.xml expands beyond %d bytes", limit)
	}
	return b.String(), nil
}
