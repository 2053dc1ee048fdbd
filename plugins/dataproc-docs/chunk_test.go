package main

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nemoclave/nemoclave/sdk/dataproc"
)

// checkChunks asserts the properties every chunking must have: offsets
// address the text, chunks are within size, in order, overlapping when
// asked, and together cover every word.
func checkChunks(t *testing.T, text string, chunks []dataproc.Chunk, size int, overlap bool) {
	t.Helper()
	if len(chunks) == 0 {
		t.Fatal("no chunks")
	}
	covered := make([]bool, len(text))
	for i, c := range chunks {
		if c.Index != i || text[c.Start:c.End] != c.Text {
			t.Fatalf("chunk %d: index %d, offsets [%d,%d) do not address its text", i, c.Index, c.Start, c.End)
		}
		if n := utf8.RuneCountInString(c.Text); n > size || n == 0 {
			t.Errorf("chunk %d has %d characters, limit %d", i, n, size)
		}
		if c.Text != strings.TrimSpace(c.Text) {
			t.Errorf("chunk %d has surrounding whitespace: %q", i, c.Text)
		}
		if i > 0 {
			prev := chunks[i-1]
			if c.Start <= prev.Start {
				t.Errorf("chunk %d does not move forward", i)
			}
			if overlap && c.Start >= prev.End {
				t.Errorf("chunk %d [%d,%d) does not overlap chunk %d [%d,%d)", i, c.Start, c.End, i-1, prev.Start, prev.End)
			}
		}
		for j := c.Start; j < c.End; j++ {
			covered[j] = true
		}
	}
	for i := range text {
		if !covered[i] && !isSpaceByte(text[i]) {
			t.Fatalf("byte %d (%q) is in no chunk", i, text[max(0, i-10):min(len(text), i+10)])
		}
	}
}

func TestChunkPrefersBoundaries(t *testing.T) {
	t.Parallel()
	para1 := "The first paragraph talks about sandboxes. It has two sentences."
	para2 := "The second paragraph is about the egress proxy and its policy checks."
	text := para1 + "\n\n" + para2
	chunks := chunkText(text, 100, 0)
	if len(chunks) != 2 || chunks[0].Text != para1 || chunks[1].Text != para2 {
		t.Fatalf("want the paragraphs as chunks, got %+v", chunks)
	}
	// No paragraph break in reach: end at a sentence.
	text = "One sentence here is a little bit longer. Another sentence follows it and goes on for quite a while longer."
	chunks = chunkText(text, 60, 0)
	if chunks[0].Text != "One sentence here is a little bit longer." {
		t.Errorf("want a sentence boundary, got %q", chunks[0].Text)
	}
	checkChunks(t, text, chunks, 60, false)
	// No sentence end: end at a word.
	text = strings.Repeat("word ", 40)
	chunks = chunkText(text, 52, 10)
	for _, c := range chunks {
		if strings.Contains(" "+c.Text+" ", " wor ") || strings.HasPrefix(c.Text, "ord") {
			t.Errorf("chunk cuts a word: %q", c.Text)
		}
	}
	checkChunks(t, text, chunks, 52, true)
}

func TestChunkProperties(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := range 60 {
		b.WriteString("Sentence number ")
		b.WriteString(strings.Repeat("é", i%7))
		b.WriteString(" about 日本語 text and more words. ")
		if i%9 == 8 {
			b.WriteString("\n\n")
		}
	}
	text := strings.TrimSpace(b.String())
	for _, tc := range []struct{ size, overlap int }{{200, 0}, {200, 50}, {75, 20}, {1000, 150}} {
		checkChunks(t, text, chunkText(text, tc.size, tc.overlap), tc.size, tc.overlap > 0)
	}
	// A single unbroken run is cut hard but still covered.
	run := strings.Repeat("x", 500)
	checkChunks(t, run, chunkText(run, 120, 30), 120, true)
	if got := chunkText("   \n\n  ", 100, 10); len(got) != 0 {
		t.Errorf("whitespace-only text: %+v", got)
	}
}

func TestChunkOperation(t *testing.T) {
	t.Parallel()
	p := processor(t, `{"chunk_size":300,"chunk_overlap":40}`)
	doc := dataproc.Document{Name: "r.md", Data: []byte("# Heading\n\n" + strings.Repeat("A sentence of words. ", 60))}
	res := transform(t, p, dataproc.OpChunk, doc, "")
	checkChunks(t, res.Text, res.Chunks, 300, true)
	if !strings.HasPrefix(res.Chunks[0].Text, "Heading") {
		t.Errorf("chunks are of the extracted text, without markup: %q", res.Chunks[0].Text)
	}
	res = transform(t, p, dataproc.OpChunk, doc, `{"size":25,"overlap":5,"unit":"tokens"}`)
	checkChunks(t, res.Text, res.Chunks, 100, true)
	res = transform(t, p, dataproc.OpChunk, dataproc.Document{Name: "r.pdf", Data: makePDF(t)}, `{"size":60}`)
	checkChunks(t, res.Text, res.Chunks, 60, true)
	if _, err := p.Transform(context.Background(), &dataproc.TransformRequest{Operation: dataproc.OpChunk, Input: doc, Options: []byte(`{"unit":"words"}`)}); err == nil {
		t.Error("unknown unit accepted")
	}
}
