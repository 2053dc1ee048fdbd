package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/go-pdf/fpdf"
	"github.com/xuri/excelize/v2"

	"github.com/nemoclave/nemoclave/sdk/dataproc"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/sdktest"
	"github.com/nemoclave/nemoclave/sdk/status"
)

func processor(t *testing.T, cfg string) dataproc.Processor {
	t.Helper()
	c := plugin.InProcess(t, &docsPlugin{cfg: defaultConfig()})
	if ds, err := c.Configure(context.Background(), plugin.ConfigureOptions{Config: json.RawMessage(cfg)}); err != nil || len(ds) > 0 {
		t.Fatalf("configure: %v %+v", err, ds)
	}
	return c.DataProc()
}

func transform(t *testing.T, p dataproc.Processor, op string, doc dataproc.Document, opts string) *dataproc.TransformResponse {
	t.Helper()
	req := &dataproc.TransformRequest{Operation: op, Input: doc}
	if opts != "" {
		req.Options = json.RawMessage(opts)
	}
	res, err := p.Transform(context.Background(), req)
	if err != nil {
		t.Fatalf("%s %s: %v", op, doc.Name, err)
	}
	return res
}

// makePDF writes a two-page PDF with fpdf: a title, a paragraph that wraps
// over several lines, and a second page.
func makePDF(t *testing.T) []byte {
	t.Helper()
	f := fpdf.New("P", "mm", "A4", "")
	f.AddPage()
	f.SetFont("Helvetica", "B", 16)
	f.Cell(0, 10, "Quarterly Report")
	f.Ln(20)
	f.SetFont("Helvetica", "", 11)
	f.MultiCell(0, 6, "Revenue grew by twelve percent in the third quarter. The sandbox team shipped the egress proxy and the local driver.", "", "L", false)
	f.AddPage()
	f.SetFont("Helvetica", "", 11)
	f.Cell(0, 10, "Second page text")
	var buf bytes.Buffer
	if err := f.Output(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// makeDOCX writes the minimal DOCX Word itself opens: content types, the
// package relationship and word/document.xml.
func makeDOCX(t *testing.T, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	files := map[string]string{
		"[Content_Types].xml": `<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`,
		"_rels/.rels":         `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>`,
		"word/document.xml":   `<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>` + body + `</w:body></w:document>`,
	}
	for _, name := range []string{"[Content_Types].xml", "_rels/.rels", "word/document.xml"} {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(files[name]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func makeXLSX(t *testing.T) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	f.SetSheetRow("Sheet1", "A1", &[]any{"name", "qty"})
	f.SetSheetRow("Sheet1", "A2", &[]any{"apples", 3})
	f.NewSheet("Prices")
	f.SetSheetRow("Prices", "A1", &[]any{"apples", 1.25})
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestXLSXBomb feeds a workbook whose zip holds 2 MB that compress to a
// few KB: it must be refused by the unzip limit (ten times max_bytes),
// not unpacked.
func TestXLSXBomb(t *testing.T) {
	t.Parallel()
	zr, err := zip.NewReader(bytes.NewReader(makeXLSX(t)), int64(len(makeXLSX(t))))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		w, err := zw.Create(f.Name)
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := f.Open()
		io.Copy(w, rc)
		rc.Close()
	}
	w, _ := zw.Create("xl/padding.bin")
	w.Write(make([]byte, 2<<20))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := processor(t, `{"max_bytes":16384}`)
	if buf.Len() > 16384 {
		t.Fatalf("the bomb is %d bytes; it must fit max_bytes to reach the unzip limit", buf.Len())
	}
	for _, op := range []struct{ name, opts string }{{"extract_text", ""}, {"convert", `{"to":"csv"}`}} {
		req := &dataproc.TransformRequest{Operation: op.name, Input: dataproc.Document{Name: "b.xlsx", Data: buf.Bytes()}}
		if op.opts != "" {
			req.Options = json.RawMessage(op.opts)
		}
		_, err := p.Transform(context.Background(), req)
		if status.CodeOf(err) != status.InvalidArgument || !strings.Contains(err.Error(), "unzip size") {
			t.Errorf("%s of a zip bomb: %v", op.name, err)
		}
	}
}

func TestExtractText(t *testing.T) {
	t.Parallel()
	p := processor(t, "")
	docxBody := `<w:p><w:r><w:t>First paragraph</w:t></w:r><w:r><w:t xml:space="preserve"> continues.</w:t></w:r></w:p>` +
		`<w:p><w:r><w:t>Line one</w:t><w:br/><w:t>line two</w:t><w:tab/><w:t>tabbed</w:t></w:r></w:p>` +
		`<w:tbl><w:tr><w:tc><w:p><w:r><w:t>cell A</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>cell B</w:t></w:r></w:p></w:tc></w:tr></w:tbl>` +
		`<w:p><w:r><w:t>After &amp; table</w:t></w:r></w:p>`
	for _, tc := range []struct {
		name string
		doc  dataproc.Document
		want string
	}{
		{"plain", dataproc.Document{Name: "a.txt", Data: []byte("\ufeffhello\r\nworld  \n\n\n\nbye")}, "hello\nworld\n\nbye"},
		{"markdown", dataproc.Document{Name: "r.md", Data: []byte("# Title\n\nSome **bold** and `code`, a [link](http://x).\n\n```go\nx := 1\n```\n> quoted\n")},
			"Title\n\nSome bold and code, a link.\n\nx := 1\n\nquoted"},
		{"html", dataproc.Document{MIMEType: "text/html; charset=utf-8", Data: []byte("<html><head><title>T</title><style>x{}</style></head><body><h1>Head</h1><p>Para <b>bold</b> text.</p><script>evil()</script><ul><li>one</li><li>two</li></ul></body></html>")},
			"Head\n\nPara bold text.\n\none\ntwo"},
		{"docx", dataproc.Document{Name: "d.docx", Data: makeDOCX(t, docxBody)},
			"First paragraph continues.\n\nLine one\nline two\ttabbed\n\ncell A\tcell B\nAfter & table"},
		{"xlsx", dataproc.Document{Name: "s.xlsx", Data: makeXLSX(t)}, "Sheet1\n\nname\tqty\napples\t3\n\nPrices\n\napples\t1.25"},
	} {
		res := transform(t, p, dataproc.OpExtractText, tc.doc, "")
		if res.Text != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, res.Text, tc.want)
		}
	}
}

func TestExtractPDF(t *testing.T) {
	t.Parallel()
	p := processor(t, "")
	// No name and no MIME type: detected from the content.
	res := transform(t, p, dataproc.OpExtractText, dataproc.Document{Data: makePDF(t)}, "")
	for _, want := range []string{"Quarterly Report", "Revenue grew by twelve percent in the third quarter.", "Second page text"} {
		if !strings.Contains(res.Text, want) {
			t.Errorf("PDF text lacks %q:\n%s", want, res.Text)
		}
	}
	if i, j := strings.Index(res.Text, "Quarterly"), strings.Index(res.Text, "Second page"); i > j {
		t.Errorf("pages out of order:\n%s", res.Text)
	}
	if !strings.Contains(res.Text, "Report\n\nRevenue") {
		t.Errorf("the title and the paragraph should be separate paragraphs:\n%q", res.Text)
	}
}

func TestBadInputs(t *testing.T) {
	t.Parallel()
	p := processor(t, `{"max_bytes":4096}`)
	ctx := context.Background()
	bomb := makeDOCX(t, "<w:p><w:r><w:t>"+strings.Repeat("a", 100000)+"</w:t></w:r></w:p>")
	for _, tc := range []struct {
		name string
		req  dataproc.TransformRequest
		code status.Code
		want string
	}{
		{"truncated pdf", dataproc.TransformRequest{Operation: "extract_text", Input: dataproc.Document{Name: "x.pdf", Data: makePDF(t)[:400]}}, status.InvalidArgument, "PDF"},
		{"garbage pdf", dataproc.TransformRequest{Operation: "extract_text", Input: dataproc.Document{MIMEType: mimePDF, Data: []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage")}}, status.InvalidArgument, "PDF"},
		{"zip that is not docx", dataproc.TransformRequest{Operation: "extract_text", Input: dataproc.Document{Name: "x.docx", Data: []byte("PK\x03\x04nonsense")}}, status.InvalidArgument, "zip"},
		{"docx bomb", dataproc.TransformRequest{Operation: "extract_text", Input: dataproc.Document{Name: "b.docx", Data: bomb}}, status.InvalidArgument, "expands beyond"},
		{"binary", dataproc.TransformRequest{Operation: "extract_text", Input: dataproc.Document{Data: []byte{0, 1, 2, 0xff}}}, status.InvalidArgument, "cannot extract"},
		{"too large", dataproc.TransformRequest{Operation: "extract_text", Input: dataproc.Document{Name: "a.txt", Data: make([]byte, 5000)}}, status.InvalidArgument, "max_bytes"},
		{"unknown op", dataproc.TransformRequest{Operation: "summarise", Input: dataproc.Document{Name: "a.txt", Data: []byte("x")}}, status.NotFound, "extract_text"},
		{"unknown option", dataproc.TransformRequest{Operation: "chunk", Input: dataproc.Document{Name: "a.txt", Data: []byte("x")}, Options: json.RawMessage(`{"sise":10}`)}, status.InvalidArgument, "unknown field"},
		{"bad overlap", dataproc.TransformRequest{Operation: "chunk", Input: dataproc.Document{Name: "a.txt", Data: []byte("x")}, Options: json.RawMessage(`{"size":100,"overlap":60}`)}, status.InvalidArgument, "overlap"},
		{"generate from pdf", dataproc.TransformRequest{Operation: "generate", Input: dataproc.Document{Name: "x.pdf", Data: []byte("%PDF-")}}, status.InvalidArgument, "JSON or CSV"},
		{"bad table", dataproc.TransformRequest{Operation: "generate", Input: dataproc.Document{Name: "t.json", Data: []byte(`{"rows":5}`)}}, status.InvalidArgument, "rows"},
		{"convert without to", dataproc.TransformRequest{Operation: "convert", Input: dataproc.Document{Name: "t.csv", Data: []byte("a")}}, status.InvalidArgument, "options.to"},
	} {
		_, err := p.Transform(ctx, &tc.req)
		if status.CodeOf(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %v containing %q", tc.name, err, tc.code, tc.want)
		}
	}
}

func TestGenerateXLSXAndCSV(t *testing.T) {
	t.Parallel()
	p := processor(t, "")
	rows := dataproc.Document{Name: "orders.json", MIMEType: mimeJSON, Data: []byte(`[{"item":"apple","qty":3,"price":1.5},{"item":"=HYPERLINK(\"http://evil\")","qty":-2,"note":"late"}]`)}
	res := transform(t, p, dataproc.OpGenerate, rows, "")
	if len(res.Outputs) != 1 || res.Outputs[0].Name != "orders.xlsx" || res.Outputs[0].MIMEType != mimeXLSX {
		t.Fatalf("outputs %+v", res.Outputs)
	}
	f, err := excelize.OpenReader(bytes.NewReader(res.Outputs[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, _ := f.GetRows("Sheet1")
	want := [][]string{{"item", "qty", "price", "note"}, {"apple", "3", "1.5"}, {`=HYPERLINK("http://evil")`, "-2", "", "late"}}
	if !equalRows(got, want) {
		t.Errorf("rows %q, want %q", got, want)
	}
	if typ, _ := f.GetCellType("Sheet1", "B2"); typ != excelize.CellTypeNumber && typ != excelize.CellTypeUnset {
		t.Errorf("qty stored as %v, want a number", typ)
	}
	if formula, _ := f.GetCellFormula("Sheet1", "A3"); formula != "" {
		t.Errorf("a string cell became a formula: %q", formula)
	}

	res = transform(t, p, dataproc.OpGenerate, rows, `{"format":"csv","name":"out"}`)
	if len(res.Outputs) != 1 || res.Outputs[0].Name != "out.csv" {
		t.Fatalf("outputs %+v", res.Outputs)
	}
	if csv := string(res.Outputs[0].Data); csv != "item,qty,price,note\napple,3,1.5,\n\"'=HYPERLINK(\"\"http://evil\"\")\",-2,,late\n" {
		t.Errorf("csv:\n%s", csv)
	}

	sheets := dataproc.Document{Name: "book.json", Data: []byte(`{"sheets":[{"name":"A/B","columns":["x"],"rows":[[1],[2]]},{"name":"Second","rows":[["y",true]]}]}`)}
	res = transform(t, p, dataproc.OpGenerate, sheets, `{"format":"csv"}`)
	if len(res.Outputs) != 2 || res.Outputs[0].Name != "book-A_B.csv" || string(res.Outputs[1].Data) != "y,true\n" {
		t.Errorf("multi-sheet csv: %+v", res.Outputs)
	}
	res = transform(t, p, dataproc.OpGenerate, sheets, "")
	f2, err := excelize.OpenReader(bytes.NewReader(res.Outputs[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	if got := f2.GetSheetList(); strings.Join(got, ",") != "A_B,Second" {
		t.Errorf("sheets %v", got)
	}
}

func TestConvert(t *testing.T) {
	t.Parallel()
	p := processor(t, "")
	res := transform(t, p, dataproc.OpConvert, dataproc.Document{Name: "s.xlsx", Data: makeXLSX(t)}, `{"to":"csv","sheet":"Sheet1"}`)
	if len(res.Outputs) != 1 || string(res.Outputs[0].Data) != "name,qty\napples,3\n" {
		t.Errorf("xlsx to csv: %+v", res.Outputs)
	}
	res = transform(t, p, dataproc.OpConvert, dataproc.Document{Name: "t.csv", Data: []byte("a,b\n1,2\n")}, `{"to":"xlsx"}`)
	f, err := excelize.OpenReader(bytes.NewReader(res.Outputs[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if rows, _ := f.GetRows("Sheet1"); !equalRows(rows, [][]string{{"a", "b"}, {"1", "2"}}) {
		t.Errorf("csv to xlsx: %q", rows)
	}
	res = transform(t, p, dataproc.OpConvert, dataproc.Document{Name: "r.pdf", Data: makePDF(t)}, `{"to":"text"}`)
	if len(res.Outputs) != 1 || res.Outputs[0].Name != "r.txt" || !strings.Contains(string(res.Outputs[0].Data), "Quarterly Report") {
		t.Errorf("pdf to text: %+v", res.Outputs)
	}
}

func equalRows(got, want [][]string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if strings.Join(got[i], "\x00") != strings.Join(want[i], "\x00") {
			return false
		}
	}
	return true
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ raw, path string }{
		{`{"max_bytes":10}`, "max_bytes"},
		{`{"chunk_size":10,"chunk_overlap":0}`, "chunk_size"},
		{`{"chunk_size":100,"chunk_overlap":50}`, "chunk_overlap"},
	} {
		ds := (&docsPlugin{}).ValidateConfig(context.Background(), json.RawMessage(tc.raw))
		if len(ds) != 1 || ds[0].Path[0] != tc.path {
			t.Errorf("%s: diags %+v, want one at %s", tc.raw, ds, tc.path)
		}
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	sdktest.Common(t, &docsPlugin{cfg: defaultConfig()})
	sdktest.DataProc(t, &docsPlugin{cfg: defaultConfig()},
		sdktest.WithDocument(dataproc.OpExtractText, dataproc.Document{Name: "r.pdf", MIMEType: mimePDF, Data: makePDF(t)}, ""),
		sdktest.WithDocument(dataproc.OpChunk, dataproc.Document{Name: "d.docx", MIMEType: mimeDOCX, Data: makeDOCX(t, "<w:p><w:r><w:t>Some words in a paragraph.</w:t></w:r></w:p>")}, `{"size":60}`),
		sdktest.WithDocument(dataproc.OpGenerate, dataproc.Document{Name: "t.json", MIMEType: mimeJSON, Data: []byte(`[{"a":1}]`)}, ""),
		sdktest.WithDocument(dataproc.OpConvert, dataproc.Document{Name: "s.xlsx", MIMEType: mimeXLSX, Data: makeXLSX(t)}, `{"to":"csv"}`))
}
