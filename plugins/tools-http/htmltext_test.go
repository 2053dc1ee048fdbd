package main

import (
	"net/url"
	"testing"
)

func TestHTMLToText(t *testing.T) {
	t.Parallel()
	base, _ := url.Parse("https://example.com/docs/page.html")
	for _, tc := range []struct{ name, in, title, want string }{
		{"headings and paragraphs",
			`<html><head><title> The  Title </title><style>p{}</style></head><body><h1>Main</h1><p>First   para
			 wraps.</p><p>Second <b>bold</b> and <em>em</em>.</p></body></html>`,
			"The Title", "# Main\n\nFirst para wraps.\n\nSecond **bold** and _em_."},
		{"scripts and hidden content dropped",
			`<body><script>alert(1)</script><noscript>enable js</noscript><p>kept</p><template>x</template></body>`,
			"", "kept"},
		{"links made absolute",
			`<p>See <a href="../api.html">the API</a>, <a href="https://go.dev/">Go</a> and <a href="#top">top</a>.</p>`,
			"", "See [the API](https://example.com/api.html), [Go](https://go.dev/) and top."},
		{"lists nested and ordered",
			`<ul><li>one</li><li>two<ol><li>a</li><li>b</li></ol></li></ul><p>after</p>`,
			"", "- one\n- two\n  1. a\n  2. b\n\nafter"},
		{"pre keeps whitespace",
			"<p>code:</p><pre>func f() {\n\treturn\n}</pre><p>inline <code>x := 1</code></p>",
			"", "code:\n\n```\nfunc f() {\n\treturn\n}\n```\n\ninline `x := 1`"},
		{"tables as rows",
			`<table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1</td></tr></table>`,
			"", "| k | v |\n| a | 1 |"},
		{"br and images",
			`<p>line1<br>line2 <img src="x.png" alt="a cat"></p>`,
			"", "line1\nline2 [image: a cat]"},
	} {
		title, got := htmlToText(tc.in, base)
		if title != tc.title || got != tc.want {
			t.Errorf("%s:\n got title %q text %q\nwant title %q text %q", tc.name, title, got, tc.title, tc.want)
		}
	}
}
