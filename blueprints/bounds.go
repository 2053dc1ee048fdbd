package blueprints

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"

	"github.com/nemoclave/nemoclave/internal/boundedread"
)

// Evaluation bounds. A blueprint is operator input, but it may come from
// anywhere (a shared preset directory, a repository), and the daemon that
// evaluates it also serves running sandboxes: a pathological file must
// end in a diagnostic, never in a stack overflow, an OOM or a hang.
const (
	// MaxFileBytes bounds a blueprint file and whatever file() and
	// templatefile() read.
	MaxFileBytes = 4 << 20
	// MaxNesting bounds bracket nesting in a source file; the parsers
	// recurse once per level.
	MaxNesting = 256
	// MaxLocals bounds the local values of a blueprint (all its files
	// together). Each costs an evaluation; a blueprint with more is
	// generated, not written, and belongs in a variable or a file().
	MaxLocals = 2048
)

// ReadBounded reads a regular file of at most limit bytes (see
// boundedread.ReadFile).
func ReadBounded(path string, limit int64) ([]byte, error) { return boundedread.ReadFile(path, limit) }

// checkNesting refuses source whose (), [] or {} nesting exceeds
// MaxNesting, before a recursive parser sees it. Brackets inside quoted
// strings are skipped unless literal (template text, where quotes mean
// nothing); heredocs are not, which can only over-count.
func checkNesting(name string, src []byte) hcl.Diagnostics { return nesting(name, src, false) }

func nesting(name string, src []byte, literal bool) hcl.Diagnostics {
	depth, inStr := 0, false
	line := 1
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '\n':
			line++
		case inStr && c == '\\':
			i++
		case c == '"' && !literal:
			inStr = !inStr
		case inStr:
		case c == '(' || c == '[' || c == '{':
			depth++
			if depth > MaxNesting {
				return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Nesting too deep",
					Detail:  fmt.Sprintf("%s nests brackets more than %d levels deep at line %d; flatten the expression (use locals).", name, MaxNesting, line),
					Subject: &hcl.Range{Filename: name, Start: hcl.Pos{Line: line, Column: 1, Byte: i}, End: hcl.Pos{Line: line, Column: 1, Byte: i}}}}
			}
		case c == ')' || c == ']' || c == '}':
			if depth > 0 {
				depth--
			}
		}
	}
	return nil
}
