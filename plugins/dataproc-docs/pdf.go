package main

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/ledongthuc/pdf"
)

// pdfText lays a PDF's text out again from glyph positions: glyphs are
// grouped into lines by baseline, ordered left to right, with a space
// wherever the gap between glyphs is wider than a fraction of the font
// size, and a blank line where the vertical gap suggests a new paragraph.
// The library's own plain-text output concatenates show-text operators and
// loses both word and line breaks for many producers.
func pdfText(data []byte) (text string, err error) {
	// The parser panics on some malformed files; a bad upload must be an
	// error, not a crashed plugin.
	defer func() {
		if r := recover(); r != nil {
			text, err = "", fmt.Errorf("malformed PDF: %v", r)
		}
	}()
	r, err := pdf.NewReader(bytesReader(data), int64(len(data)))
	if err != nil {
		return "", fmt.Errorf("not a readable PDF: %w (encrypted PDFs are not supported)", err)
	}
	var pages []string
	for i := 1; i <= r.NumPage(); i++ {
		p := r.Page(i)
		if p.V.IsNull() {
			continue
		}
		pages = append(pages, layoutPage(p.Content().Text))
	}
	return strings.Join(pages, "\n\n"), nil
}

type pdfLine struct {
	y      float64
	size   float64
	glyphs []pdf.Text
}

func layoutPage(glyphs []pdf.Text) string {
	var lines []*pdfLine
	for _, g := range glyphs {
		if g.S == "" {
			continue
		}
		tol := math.Max(g.FontSize*0.3, 1)
		var line *pdfLine
		for _, l := range lines {
			if math.Abs(l.y-g.Y) <= tol {
				line = l
				break
			}
		}
		if line == nil {
			line = &pdfLine{y: g.Y, size: g.FontSize}
			lines = append(lines, line)
		}
		line.glyphs = append(line.glyphs, g)
	}
	// PDF y grows upwards: the top line has the largest y.
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].y > lines[j].y })
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			gap := lines[i-1].y - l.y
			if gap > 1.8*math.Max(l.size, lines[i-1].size) {
				b.WriteString("\n\n")
			} else {
				b.WriteString("\n")
			}
		}
		sort.SliceStable(l.glyphs, func(a, c int) bool { return l.glyphs[a].X < l.glyphs[c].X })
		var end float64
		for j, g := range l.glyphs {
			if j > 0 && g.X-end > 0.15*math.Max(g.FontSize, 1) && !strings.HasSuffix(b.String(), " ") && g.S != " " {
				b.WriteByte(' ')
			}
			b.WriteString(g.S)
			end = g.X + g.W
		}
	}
	return b.String()
}
