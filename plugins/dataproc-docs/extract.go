package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/nemoclave/nemoclave/sdk/dataproc"
	"github.com/nemoclave/nemoclave/sdk/status"
)

// extractText returns a document's text with paragraphs separated by
// blank lines, which the chunker prefers as boundaries.
func extractText(ctx context.Context, c config, doc dataproc.Document) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	typ := detectType(doc)
	var (
		text string
		err  error
	)
	switch {
	case typ == mimePDF:
		text, err = pdfText(doc.Data)
	case typ == mimeDOCX:
		text, err = docxText(doc.Data, c.MaxBytes*unzipFactor)
	case typ == mimeXLSX:
		text, err = xlsxText(doc.Data, c.MaxBytes*unzipFactor)
	case typ == mimeHTML || typ == "application/xhtml+xml":
		text, err = htmlText(doc.Data)
	case typ == mimeMarkdown:
		text, err = markdownText(doc.Data)
	case strings.HasPrefix(typ, "text/") || typ == mimeJSON:
		text, err = plainText(doc.Data)
	default:
		return "", status.Errorf(status.InvalidArgument, "%s: cannot extract text from %q; supported: text, Markdown, HTML, PDF, DOCX, XLSX (set the document's MIME type if it is one of these)", docName(doc), typ)
	}
	if err != nil {
		return "", status.Errorf(status.InvalidArgument, "%s (%s): %v", docName(doc), typ, err)
	}
	return normalise(text), nil
}

func docName(doc dataproc.Document) string {
	if doc.Name == "" {
		return "input"
	}
	return doc.Name
}

func plainText(data []byte) (string, error) {
	if !utf8.Valid(data) {
		return "", fmt.Errorf("text is not valid UTF-8; convert it first")
	}
	return strings.TrimPrefix(string(data), "\ufeff"), nil
}

var (
	mdFence    = regexp.MustCompile("(?m)^[ \\t]*(```|~~~).*$")
	mdHeading  = regexp.MustCompile(`(?m)^[ \t]{0,3}#{1,6}[ \t]+`)
	mdImage    = regexp.MustCompile(`!\[([^\]]*)\]\([^)]*\)`)
	mdLink     = regexp.MustCompile(`\[([^\]]+)\]\([^)]*\)`)
	mdEmphasis = regexp.MustCompile(`(\*\*|__)(\S(?:.*?\S)?)(\*\*|__)`)
	mdCode     = regexp.MustCompile("`([^`]+)`")
	mdQuote    = regexp.MustCompile(`(?m)^[ \t]{0,3}>[ \t]?`)
	mdRule     = regexp.MustCompile(`(?m)^[ \t]{0,3}([-*_][ \t]*){3,}$`)
)

// markdownText removes Markdown markup that carries no words: heading
// marks, fences, emphasis, link targets. List markers and table pipes are
// kept; they read naturally as text.
func markdownText(data []byte) (string, error) {
	s, err := plainText(data)
	if err != nil {
		return "", err
	}
	s = mdFence.ReplaceAllString(s, "")
	s = mdRule.ReplaceAllString(s, "")
	s = mdHeading.ReplaceAllString(s, "")
	s = mdImage.ReplaceAllString(s, "$1")
	s = mdLink.ReplaceAllString(s, "$1")
	s = mdEmphasis.ReplaceAllString(s, "$2")
	s = mdCode.ReplaceAllString(s, "$1")
	s = mdQuote.ReplaceAllString(s, "")
	return s, nil
}

// htmlText keeps the words of an HTML document, one block per paragraph.
func htmlText(data []byte) (string, error) {
	doc, err := html.Parse(bytesReader(data))
	if err != nil {
		return "", err
	}
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		switch n.Type {
		case html.TextNode:
			// Whitespace runs collapse to one space; the spaces at the
			// edges keep "a <b>bold</b> word" apart.
			t := strings.Join(strings.Fields(n.Data), " ")
			if t == "" {
				if n.Data != "" {
					b.WriteByte(' ')
				}
				return
			}
			if isSpace(n.Data[0]) {
				b.WriteByte(' ')
			}
			b.WriteString(t)
			if isSpace(n.Data[len(n.Data)-1]) {
				b.WriteByte(' ')
			}
			return
		case html.ElementNode:
			switch n.DataAtom {
			case atom.Script, atom.Style, atom.Noscript, atom.Template, atom.Svg, atom.Head:
				return
			case atom.Br:
				b.WriteByte('\n')
				return
			}
		}
		block := n.Type == html.ElementNode && htmlBlocks[n.DataAtom]
		if block {
			b.WriteString("\n\n")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
		switch {
		case block:
			b.WriteString("\n\n")
		case n.DataAtom == atom.Td || n.DataAtom == atom.Th:
			b.WriteByte('\t')
		case n.DataAtom == atom.Tr || n.DataAtom == atom.Li:
			b.WriteByte('\n')
		}
	}
	walk(doc)
	return spaces.ReplaceAllString(b.String(), " "), nil
}

var spaces = regexp.MustCompile(`(?m)^ +| {2,}`)

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' }

var htmlBlocks = map[atom.Atom]bool{
	atom.P: true, atom.Div: true, atom.Section: true, atom.Article: true, atom.Main: true,
	atom.Header: true, atom.Footer: true, atom.Aside: true, atom.Nav: true, atom.Blockquote: true,
	atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true, atom.H5: true, atom.H6: true,
	atom.Ul: true, atom.Ol: true, atom.Table: true, atom.Pre: true, atom.Figure: true, atom.Dl: true,
}

var (
	spaceRun   = regexp.MustCompile(`[ \t\f\v]+\n`)
	blankLines = regexp.MustCompile(`\n{3,}`)
)

// normalise ends lines without trailing blanks, uses \n line endings and
// at most one blank line between paragraphs.
func normalise(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	s = spaceRun.ReplaceAllString(s, "\n")
	s = blankLines.ReplaceAllString(s, "\n\n")
	return strings.TrimSpace(s)
}
