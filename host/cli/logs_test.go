package cli

import (
	"strings"
	"testing"
)

// TestLogsTail parses logs' arguments through the real command's flag set,
// as a user types them: --tail alone, --tail=N, --tail N (which pflag
// leaves as a second argument), -n N, and the spellings that are refused.
func TestLogsTail(t *testing.T) {
	cases := []struct {
		args    []string
		sandbox string
		n       int
		err     string
	}{
		{[]string{"sb"}, "sb", 0, ""},
		{[]string{"sb", "--tail"}, "sb", 50, ""},
		{[]string{"sb", "--tail=3"}, "sb", 3, ""},
		{[]string{"sb", "--tail", "3"}, "sb", 3, ""},
		{[]string{"--tail", "3", "sb"}, "sb", 3, ""},
		{[]string{"sb", "--tail", "-n", "7"}, "sb", 7, ""},
		{[]string{"sb", "-n", "7"}, "sb", 7, ""},
		{[]string{"sb", "--tail", "7", "-n", "7"}, "sb", 7, ""},
		{[]string{"42", "--tail", "3"}, "", 0, "which is the sandbox"},
		{[]string{"sb", "--tail", "3", "-n", "4"}, "", 0, "disagree"},
		{[]string{"sb", "--tail=3", "-n", "4"}, "", 0, "disagree"},
		{[]string{"sb", "other"}, "", 0, "one sandbox"},
		{[]string{"sb", "--tail", "3", "4"}, "", 0, "one sandbox"},
		{[]string{"sb", "--tail", "other"}, "", 0, "one sandbox"},
		{[]string{"sb", "--tail=0"}, "", 0, "at least 1"},
		{[]string{"sb", "--tail=-3"}, "", 0, "at least 1"},
	}
	for _, c := range cases {
		root := NewRoot("nemoclave")
		cmd, rest, err := root.Find(append([]string{"logs"}, c.args...))
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.ParseFlags(rest); err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		args := cmd.Flags().Args()
		if err := cmd.ValidateArgs(args); err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		f := cmd.Flags()
		tail, _ := f.GetInt("tail")
		lines, _ := f.GetInt("lines")
		name, n, err := logsTail(args, f.Changed("tail"), tail, f.Changed("lines"), lines)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("logs %q: error %v, want one saying %q", c.args, err, c.err)
			}
			continue
		}
		if err != nil || name != c.sandbox || n != c.n {
			t.Errorf("logs %q: sandbox %q, %d lines, %v; want %q, %d", c.args, name, n, err, c.sandbox, c.n)
		}
	}
}
