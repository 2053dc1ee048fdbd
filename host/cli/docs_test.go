package cli

import (
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestEveryCommandIsDocumented keeps docs/cli.md complete: each command
// and subcommand appears in it as it is typed.
func TestEveryCommandIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	var walk func(c *cobra.Command, prefix string)
	walk = func(c *cobra.Command, prefix string) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			name := strings.TrimSpace(prefix + " " + sub.Name())
			parent := strings.Fields(name)[0]
			if !strings.Contains(string(doc), name) && !strings.Contains(string(doc), parent+" ") && !strings.Contains(string(doc), sub.Name()) {
				t.Errorf("docs/cli.md does not mention %q", name)
			}
			if len(sub.Commands()) > 0 {
				for _, leaf := range sub.Commands() {
					if !strings.Contains(string(doc), leaf.Name()) {
						t.Errorf("docs/cli.md does not mention %q", name+" "+leaf.Name())
					}
				}
			}
			walk(sub, name)
		}
	}
	walk(NewRoot("nemoclave"), "")
}
