package main

import (
	"strings"
	"unicode/utf8"

	"github.com/nemoclave/nemoclave/sdk/dataproc"
)

const (
	minChunk = 50
	maxChunk = 100000
	// charsPerToken approximates tokens for English text with BPE
	// tokenisers; good enough to keep chunks under a model's limit.
	charsPerToken = 4
)

// chunkText splits text into chunks of at most size characters, each
// overlapping the previous by about overlap characters. A chunk ends at
// the last paragraph break in its second half if there is one, else the
// last line break, else the last sentence end, else the last space, and
// only then mid-word. The next chunk starts overlap characters before
// that end, moved forward to the start of a word. Start and End are byte
// offsets into text, and Text is exactly text[Start:End] without the
// surrounding whitespace.
func chunkText(text string, size, overlap int) []dataproc.Chunk {
	var out []dataproc.Chunk
	start := skipSpace(text, 0)
	for start < len(text) {
		hard := advance(text, start, size)
		end := hard
		if hard < len(text) {
			end = boundary(text, advance(text, start, size/2), hard)
		}
		s, e := start, end
		for e > s && isSpaceByte(text[e-1]) {
			e--
		}
		if e > s {
			out = append(out, dataproc.Chunk{Index: len(out), Text: text[s:e], Start: int64(s), End: int64(e)})
		}
		if end >= len(text) {
			break
		}
		next := wordStart(text, back(text, end, overlap), end)
		if next <= start {
			next = end // the overlap would not move forward: no overlap
		}
		start = skipSpace(text, next)
	}
	return out
}

// boundary picks where a chunk ending by hard should end, searching the
// window [lo, hard) for the strongest boundary.
func boundary(text string, lo, hard int) int {
	window := text[lo:hard]
	if i := strings.LastIndex(window, "\n\n"); i >= 0 {
		return lo + i + 2
	}
	if i := strings.LastIndexByte(window, '\n'); i >= 0 {
		return lo + i + 1
	}
	for i := len(window) - 2; i >= 0; i-- {
		if (window[i] == '.' || window[i] == '!' || window[i] == '?') && isSpaceByte(window[i+1]) {
			return lo + i + 2
		}
	}
	if i := strings.LastIndexByte(window, ' '); i >= 0 {
		return lo + i + 1
	}
	return hard
}

// advance moves n characters forward from byte offset i.
func advance(text string, i, n int) int {
	for ; n > 0 && i < len(text); n-- {
		_, w := utf8.DecodeRuneInString(text[i:])
		i += w
	}
	return i
}

// back moves n characters backward from byte offset i.
func back(text string, i, n int) int {
	for ; n > 0 && i > 0; n-- {
		_, w := utf8.DecodeLastRuneInString(text[:i])
		i -= w
	}
	return i
}

// wordStart moves i forward to the start of the next word, unless that
// passes limit; a chunk should not begin with half a word.
func wordStart(text string, i, limit int) int {
	if i == 0 || isSpaceByte(text[i-1]) {
		return i
	}
	for j := i; j < limit; j++ {
		if isSpaceByte(text[j]) {
			return j
		}
	}
	return i
}

func skipSpace(text string, i int) int {
	for i < len(text) && isSpaceByte(text[i]) {
		i++
	}
	return i
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }
