package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/xuri/excelize/v2"

	"github.com/nemoclave/nemoclave/sdk/status"
)

// sheet is one table: optional column names and rows of cells. Cells are
// strings, json.Number, bools or nil, so numbers stay numbers in XLSX.
type sheet struct {
	Name    string
	Columns []string
	Rows    [][]any
}

// parseTables reads tabular input: CSV, or JSON in one of the shapes the
// generate operation documents.
func parseTables(data []byte, typ string) ([]sheet, error) {
	if typ == mimeCSV {
		r := csv.NewReader(bytesReader(data))
		r.FieldsPerRecord = -1
		recs, err := r.ReadAll()
		if err != nil {
			return nil, fmt.Errorf("CSV: %w", err)
		}
		s := sheet{Name: "Sheet1"}
		for _, rec := range recs {
			row := make([]any, len(rec))
			for i, v := range rec {
				row[i] = v
			}
			s.Rows = append(s.Rows, row)
		}
		return []sheet{s}, nil
	}
	dec := json.NewDecoder(bytesReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("JSON: %w", err)
	}
	switch v := v.(type) {
	case []any:
		s, err := tableFromArray(data, v)
		if err != nil {
			return nil, err
		}
		s.Name = "Sheet1"
		return []sheet{s}, nil
	case map[string]any:
		if raw, ok := v["sheets"]; ok {
			list, ok := raw.([]any)
			if !ok || len(list) == 0 {
				return nil, errors.New(`"sheets" must be a non-empty array of {"name","columns","rows"} objects`)
			}
			var out []sheet
			for i, item := range list {
				m, ok := item.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("sheets[%d] must be an object", i)
				}
				s, err := tableFromObject(m)
				if err != nil {
					return nil, fmt.Errorf("sheets[%d]: %w", i, err)
				}
				if s.Name == "" {
					s.Name = fmt.Sprintf("Sheet%d", i+1)
				}
				out = append(out, s)
			}
			return out, nil
		}
		s, err := tableFromObject(v)
		if err != nil {
			return nil, err
		}
		if s.Name == "" {
			s.Name = "Sheet1"
		}
		return []sheet{s}, nil
	}
	return nil, errors.New(`JSON tables are an array of rows, an array of objects, {"columns":[...],"rows":[...]} or {"sheets":[...]}`)
}

func tableFromObject(m map[string]any) (sheet, error) {
	var s sheet
	if n, ok := m["name"].(string); ok {
		s.Name = n
	}
	if cols, ok := m["columns"].([]any); ok {
		for _, c := range cols {
			s.Columns = append(s.Columns, fmt.Sprint(c))
		}
	}
	rows, ok := m["rows"].([]any)
	if !ok {
		return s, errors.New(`a table object needs "rows": an array of row arrays`)
	}
	for i, r := range rows {
		row, ok := r.([]any)
		if !ok {
			return s, fmt.Errorf("rows[%d] must be an array of cells", i)
		}
		s.Rows = append(s.Rows, row)
	}
	return s, nil
}

// tableFromArray handles an array of row arrays, or of objects whose keys
// become the columns in the order they first appear.
func tableFromArray(data []byte, items []any) (sheet, error) {
	var s sheet
	if len(items) == 0 {
		return s, nil
	}
	if _, ok := items[0].(map[string]any); !ok {
		for i, r := range items {
			row, ok := r.([]any)
			if !ok {
				return s, fmt.Errorf("item %d: an array table holds only row arrays or only objects", i)
			}
			s.Rows = append(s.Rows, row)
		}
		return s, nil
	}
	// Go maps forget key order; read it from the source.
	order, err := objectKeyOrder(data)
	if err != nil {
		return s, err
	}
	s.Columns = order
	for i, r := range items {
		m, ok := r.(map[string]any)
		if !ok {
			return s, fmt.Errorf("item %d: an array table holds only row arrays or only objects", i)
		}
		row := make([]any, len(order))
		for j, k := range order {
			row[j] = m[k]
		}
		s.Rows = append(s.Rows, row)
	}
	return s, nil
}

// objectKeyOrder lists the keys of the objects in a JSON array in first
// appearance order.
func objectKeyOrder(data []byte) ([]string, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(data, &items); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var order []string
	for _, item := range items {
		dec := json.NewDecoder(bytesReader(item))
		if _, err := dec.Token(); err != nil { // '{'
			return nil, err
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key, _ := tok.(string)
			if !seen[key] {
				seen[key] = true
				order = append(order, key)
			}
			val, err := dec.Token()
			if err != nil {
				return nil, err
			}
			if err := skipValue(dec, val); err != nil {
				return nil, err
			}
		}
	}
	return order, nil
}

// skipValue consumes the rest of a value whose first token was tok.
func skipValue(dec *json.Decoder, tok json.Token) error {
	d, ok := tok.(json.Delim)
	if !ok || (d != '{' && d != '[') {
		return nil
	}
	for depth := 1; depth > 0; {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := t.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
	}
	return nil
}

// writeXLSX builds a workbook, one worksheet per sheet, the header row in
// bold and frozen. Cell strings are stored as strings, never as formulas.
func writeXLSX(sheets []sheet) ([]byte, error) {
	f := excelize.NewFile()
	defer f.Close()
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for i, s := range sheets {
		name := sheetName(s.Name, i, used)
		if i == 0 {
			if err := f.SetSheetName("Sheet1", name); err != nil {
				return nil, err
			}
		} else if _, err := f.NewSheet(name); err != nil {
			return nil, err
		}
		sw, err := f.NewStreamWriter(name)
		if err != nil {
			return nil, err
		}
		row := 1
		if len(s.Columns) > 0 {
			// The stream writer needs panes before any row.
			if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
				return nil, err
			}
			cells := make([]any, len(s.Columns))
			for j, c := range s.Columns {
				cells[j] = excelize.Cell{Value: c, StyleID: bold}
			}
			if err := sw.SetRow("A1", cells); err != nil {
				return nil, err
			}
			row++
		}
		for _, r := range s.Rows {
			cells := make([]any, len(r))
			for j, v := range r {
				cells[j] = xlsxValue(v)
			}
			cell, _ := excelize.CoordinatesToCellName(1, row)
			if err := sw.SetRow(cell, cells); err != nil {
				return nil, err
			}
			row++
		}
		if err := sw.Flush(); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func xlsxValue(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		if f, err := v.Float64(); err == nil {
			return f
		}
		return v.String()
	case nil:
		return nil
	case string, bool, float64, int64:
		return v
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// sheetName makes a valid, unique worksheet name (31 characters, none of
// : \ / ? * [ ]).
func sheetName(name string, i int, used map[string]bool) string {
	name = strings.Map(func(r rune) rune {
		if strings.ContainsRune(`:\/?*[]`, r) {
			return '_'
		}
		return r
	}, strings.TrimSpace(name))
	if r := []rune(name); len(r) > 31 {
		name = string(r[:31])
	}
	if name == "" || used[strings.ToLower(name)] {
		name = fmt.Sprintf("Sheet%d", i+1)
	}
	used[strings.ToLower(name)] = true
	return name
}

// writeCSV writes one sheet. With escape set, cells a spreadsheet would
// run as a formula get a leading apostrophe (CSV injection).
func writeCSV(s sheet, escape bool) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	cell := func(v any) string {
		var out string
		switch v := v.(type) {
		case nil:
			return ""
		case string:
			out = v
		default:
			out = fmt.Sprint(xlsxValue(v))
		}
		if escape && out != "" && strings.ContainsRune("=+-@\t\r", rune(out[0])) {
			if _, isNum := v.(json.Number); !isNum {
				out = "'" + out
			}
		}
		return out
	}
	if len(s.Columns) > 0 {
		rec := make([]string, len(s.Columns))
		for i, c := range s.Columns {
			rec[i] = cell(c)
		}
		w.Write(rec)
	}
	for _, r := range s.Rows {
		rec := make([]string, len(r))
		for i, v := range r {
			rec[i] = cell(v)
		}
		w.Write(rec)
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

// readXLSX returns every worksheet's cells as strings. limit bounds the
// unzipped workbook (excelize's own default is 16 GB).
func readXLSX(data []byte, limit int64) ([]sheet, error) {
	f, err := excelize.OpenReader(bytesReader(data), excelize.Options{UnzipSizeLimit: limit, UnzipXMLSizeLimit: min(limit, 16<<20)})
	if err != nil {
		return nil, fmt.Errorf("not a readable XLSX workbook: %w", err)
	}
	defer f.Close()
	var out []sheet
	for _, name := range f.GetSheetList() {
		rows, err := f.GetRows(name)
		if err != nil {
			return nil, fmt.Errorf("sheet %q: %w", name, err)
		}
		s := sheet{Name: name}
		for _, r := range rows {
			row := make([]any, len(r))
			for i, v := range r {
				row[i] = v
			}
			s.Rows = append(s.Rows, row)
		}
		out = append(out, s)
	}
	return out, nil
}

// xlsxText renders a workbook as text: a heading line per sheet, then its
// rows with tab-separated cells.
func xlsxText(data []byte, limit int64) (string, error) {
	sheets, err := readXLSX(data, limit)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, s := range sheets {
		fmt.Fprintf(&b, "%s\n\n", s.Name)
		for _, r := range s.Rows {
			cells := make([]string, len(r))
			for i, v := range r {
				cells[i] = fmt.Sprint(v)
			}
			b.WriteString(strings.Join(cells, "\t") + "\n")
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}

// baseName is the output name without extension.
func baseName(option, input string) string {
	if option != "" {
		return option
	}
	if input != "" {
		return strings.TrimSuffix(path.Base(input), path.Ext(input))
	}
	return "table"
}

func tableError(name string, err error) error {
	return status.Errorf(status.InvalidArgument, "%s: %v", name, err)
}
