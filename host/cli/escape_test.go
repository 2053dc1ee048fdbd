package cli

import (
	"strings"
	"testing"
)

func TestEscapeWriter(t *testing.T) {
	in := "ok ✓\tline\n" +
		"\x1b]52;c;c2VjcmV0\x07" + // OSC 52: write the clipboard
		"\x1b]0;pwned\x07" + // OSC 0: window title
		"\x1b[2J\x1b[H" + // clear screen, home
		"\xc2\x9b31m" + // C1 CSI
		"\u202eevil\r\xff\n"
	want := `ok ✓` + "\tline\n" +
		`\x1b]52;c;c2VjcmV0\x07` +
		`\x1b]0;pwned\x07` +
		`\x1b[2J\x1b[H` +
		`\x9b31m` +
		`\u202eevil\x0d\xff` + "\n"
	// Every split point, so runes cut across writes are held, not mangled.
	for split := 0; split <= len(in); split++ {
		var sb strings.Builder
		w := newEscapeWriter(&sb)
		if _, err := w.Write([]byte(in[:split])); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(in[split:])); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if sb.String() != want {
			t.Fatalf("split at %d:\n got %q\nwant %q", split, sb.String(), want)
		}
		if strings.ContainsAny(sb.String(), "\x1b\x07\r") {
			t.Fatalf("split at %d: control bytes left in %q", split, sb.String())
		}
	}
	var sb strings.Builder
	w := newEscapeWriter(&sb)
	w.Write([]byte("cut \xe2\x9c"))
	w.Flush()
	if sb.String() != `cut \xe2\x9c` {
		t.Errorf("trailing partial rune: %q", sb.String())
	}
}
