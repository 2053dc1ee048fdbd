package main

import (
	"net/url"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// htmlToText renders an HTML document as Markdown-like text: the structure
// a model needs to read a page (headings, paragraphs, lists, links, code,
// table rows) without the markup. It returns the <title> separately. Links
// are made absolute against base so the model can fetch them next.
func htmlToText(src string, base *url.URL) (title, text string) {
	doc, err := html.Parse(strings.NewReader(src))
	if err != nil { // html.Parse only fails on reader errors
		return "", src
	}
	w := &textWriter{base: base}
	w.walk(doc)
	return w.title, strings.TrimSpace(w.b.String())
}

type textWriter struct {
	b     strings.Builder
	base  *url.URL
	title string
	// pre counts enclosing <pre> elements, where whitespace is kept.
	pre int
	// lists holds, per enclosing list, whether it is ordered and the next
	// item number.
	lists []listState
	// pendingSpace is a collapsed run of whitespace not yet written.
	pendingSpace bool
}

type listState struct {
	ordered bool
	next    int
}

// skipped elements carry no readable content.
var skipped = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Noscript: true, atom.Template: true,
	atom.Svg: true, atom.Iframe: true, atom.Object: true, atom.Canvas: true,
	atom.Button: true, atom.Select: true, atom.Input: true, atom.Textarea: true,
}

// blocks start and end on their own lines.
var blocks = map[atom.Atom]bool{
	atom.P: true, atom.Div: true, atom.Section: true, atom.Article: true, atom.Main: true,
	atom.Header: true, atom.Footer: true, atom.Aside: true, atom.Nav: true, atom.Form: true,
	atom.Table: true, atom.Figure: true, atom.Figcaption: true, atom.Dl: true, atom.Dt: true,
	atom.Dd: true, atom.Address: true, atom.Details: true, atom.Summary: true, atom.Hr: true,
}

func (w *textWriter) walk(n *html.Node) {
	switch n.Type {
	case html.TextNode:
		w.text(n.Data)
		return
	case html.ElementNode:
		// handled below
	case html.DocumentNode:
		w.children(n)
		return
	default:
		return
	}
	switch a := n.DataAtom; {
	case a == atom.Title:
		if w.title == "" {
			w.title = strings.Join(strings.Fields(textOf(n)), " ")
		}
	case skipped[a]:
	case heading(a) > 0:
		w.block(2)
		w.raw(strings.Repeat("#", heading(a)) + " ")
		w.children(n)
		w.block(2)
	case a == atom.Br:
		w.raw("\n")
	case a == atom.Pre:
		w.block(2)
		w.raw("```\n")
		w.pre++
		w.children(n)
		w.pre--
		if !strings.HasSuffix(w.b.String(), "\n") {
			w.raw("\n")
		}
		w.raw("```")
		w.block(2)
	case a == atom.Code && w.pre == 0:
		w.inline("`")
		w.children(n)
		w.raw("`")
	case a == atom.Strong || a == atom.B:
		w.inline("**")
		w.children(n)
		w.raw("**")
	case a == atom.Em || a == atom.I:
		w.inline("_")
		w.children(n)
		w.raw("_")
	case a == atom.A:
		href := w.resolve(attr(n, "href"))
		if href == "" || strings.HasPrefix(href, "javascript:") {
			w.children(n)
			return
		}
		w.inline("[")
		w.children(n)
		w.raw("](" + href + ")")
	case a == atom.Img:
		if alt := strings.TrimSpace(attr(n, "alt")); alt != "" {
			w.inline("[image: " + alt + "]")
		}
	case a == atom.Ul || a == atom.Ol:
		w.block(1)
		w.lists = append(w.lists, listState{ordered: a == atom.Ol, next: 1})
		w.children(n)
		w.lists = w.lists[:len(w.lists)-1]
		w.block(2)
	case a == atom.Li:
		w.block(1)
		indent := strings.Repeat("  ", max(len(w.lists)-1, 0))
		marker := "- "
		if l := len(w.lists); l > 0 && w.lists[l-1].ordered {
			marker = itoa(w.lists[l-1].next) + ". "
			w.lists[l-1].next++
		}
		w.raw(indent + marker)
		w.children(n)
		w.block(1)
	case a == atom.Blockquote:
		w.block(2)
		w.raw("> ")
		w.children(n)
		w.block(2)
	case a == atom.Tr:
		w.block(1)
		w.raw("|")
		w.children(n)
		w.block(1)
	case a == atom.Td || a == atom.Th:
		w.raw(" ")
		w.children(n)
		w.raw(" |")
	case blocks[a]:
		w.block(2)
		w.children(n)
		w.block(2)
	default:
		w.children(n)
	}
}

func (w *textWriter) children(n *html.Node) {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		w.walk(c)
	}
}

// text writes a text node, collapsing whitespace outside <pre>.
func (w *textWriter) text(s string) {
	if w.pre > 0 {
		w.raw(s)
		return
	}
	if s == "" {
		return
	}
	lead := isSpace(s[0])
	trail := isSpace(s[len(s)-1])
	fields := strings.Fields(s)
	if len(fields) == 0 {
		w.pendingSpace = true
		return
	}
	if lead {
		w.pendingSpace = true
	}
	w.inline(strings.Join(fields, " "))
	w.pendingSpace = trail
}

// inline writes s after a pending space, unless at the start of a line.
func (w *textWriter) inline(s string) {
	if w.pendingSpace && w.b.Len() > 0 && !w.atLineStart() {
		w.b.WriteByte(' ')
	}
	w.pendingSpace = false
	w.b.WriteString(s)
}

func (w *textWriter) raw(s string) {
	w.pendingSpace = false
	w.b.WriteString(s)
}

// block ends the current line and makes sure n line breaks separate it
// from what comes next (1: a new line, 2: a blank line).
func (w *textWriter) block(n int) {
	w.pendingSpace = false
	if w.b.Len() == 0 {
		return
	}
	s := w.b.String()
	have := len(s) - len(strings.TrimRight(s, "\n"))
	trimmed := strings.TrimRight(s, " \t")
	if len(trimmed) != len(s) && have == 0 {
		w.b.Reset()
		w.b.WriteString(trimmed)
	}
	for ; have < n; have++ {
		w.b.WriteByte('\n')
	}
}

func (w *textWriter) atLineStart() bool {
	s := w.b.String()
	return s[len(s)-1] == '\n' || strings.HasSuffix(s, "- ") || strings.HasSuffix(s, "> ") || strings.HasSuffix(s, "# ")
}

func (w *textWriter) resolve(href string) string {
	href = strings.TrimSpace(href)
	if href == "" || strings.HasPrefix(href, "#") {
		return ""
	}
	u, err := url.Parse(href)
	if err != nil {
		return ""
	}
	if w.base != nil {
		u = w.base.ResolveReference(u)
	}
	return u.String()
}

func heading(a atom.Atom) int {
	switch a {
	case atom.H1:
		return 1
	case atom.H2:
		return 2
	case atom.H3:
		return 3
	case atom.H4:
		return 4
	case atom.H5:
		return 5
	case atom.H6:
		return 6
	}
	return 0
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var rec func(*html.Node)
	rec = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			rec(c)
		}
	}
	rec(n)
	return b.String()
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' }

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
