package blueprints

import (
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	t.Parallel()
	got, diags := Format("x.hcl", []byte("a=1\nbb = \"x\"\nblock {\nc=2\n}\n"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := "a  = 1\nbb = \"x\"\nblock {\n  c = 2\n}\n"
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, diags := Format("x.hcl", []byte("block {\n")); !diags.HasErrors() {
		t.Fatal("broken syntax must be refused, not formatted")
	}
	src := []byte(`{"a":   1}`)
	if got, _ := Format("x.hcl.json", src); string(got) != string(src) {
		t.Fatal("JSON must be left alone")
	}
}

// TestTestdataIsFormatted keeps the examples in testdata canonical, except
// the cases that are broken on purpose.
func TestTestdataIsFormatted(t *testing.T) {
	t.Parallel()
	files := globT(t, "testdata/*/*.hcl")
	files = append(files, globT(t, "presets/*.hcl")...)
	for _, f := range files {
		if strings.HasSuffix(f, "err_parse.hcl") {
			continue
		}
		src := readT(t, f)
		got, diags := Format(f, src)
		if diags.HasErrors() {
			t.Errorf("%s: %s", f, diags.Error())
			continue
		}
		if string(got) != string(src) {
			t.Errorf("%s is not formatted (nemoclave fmt %s)", f, f)
		}
	}
}
