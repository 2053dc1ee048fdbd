package sandbox

import (
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	for _, ok := range []string{"a", "box", "my-box", "0", "a1-b2", strings.Repeat("a", MaxNameLen)} {
		if err := ValidName(ok); err != nil {
			t.Errorf("ValidName(%q) = %v, want nil", ok, err)
		}
	}
	for name, hint := range map[string]string{
		"My_Box":                          `"my-box"`,
		"":                                `"sandbox"`,
		"-box":                            `"box"`,
		"box-":                            `"box"`,
		"a b":                             `"a-b"`,
		strings.Repeat("a", MaxNameLen+1): `"` + strings.Repeat("a", MaxNameLen) + `"`,
		"box/../x":                        `"box-x"`,
	} {
		err := ValidName(name)
		if err == nil {
			t.Errorf("ValidName(%q) = nil, want an error", name)
			continue
		}
		if !strings.Contains(err.Error(), hint) {
			t.Errorf("ValidName(%q) = %q, want the suggestion %s in it", name, err, hint)
		}
	}
}
