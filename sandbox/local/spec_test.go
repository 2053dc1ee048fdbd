package local

import (
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox"
)

func TestValidateSpec(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	good := func() sandbox.Spec {
		return sandbox.Spec{Name: "ok-1", Command: []string{"true"}, Workspace: ws, Policy: &policy.Policy{
			Name: "p", UnknownHosts: policy.UnknownDeny, Filesystem: policy.Filesystem{ReadOnly: []string{"/usr"}},
		}}
	}
	if err := validateSpec(ptr(good())); err != nil {
		t.Fatalf("good spec refused: %v", err)
	}
	cases := []struct {
		name string
		mut  func(*sandbox.Spec)
		want string
	}{
		{"bad name", func(s *sandbox.Spec) { s.Name = "Bad/Name" }, "sandbox name"},
		{"no command", func(s *sandbox.Spec) { s.Command = nil }, "no agent command"},
		{"nil policy", func(s *sandbox.Spec) { s.Policy = nil }, "no policy"},
		{"invalid policy", func(s *sandbox.Spec) { s.Policy.UnknownHosts = "" }, "invalid policy"},
		{"relative workspace", func(s *sandbox.Spec) { s.Workspace = "ws" }, "absolute host path"},
		{"missing workspace", func(s *sandbox.Spec) { s.Workspace = ws + "/nope" }, "not a directory"},
		{"tiny memory", func(s *sandbox.Spec) { s.Resources.MemoryBytes = 1 << 20 }, "below the 16 MiB"},
		{"negative pids", func(s *sandbox.Spec) { s.Resources.Pids = -1 }, "negative"},
		{"unknown listener", func(s *sandbox.Spec) { s.Listeners = []sandbox.ListenerSpec{{Name: "ssh"}} }, `listener "ssh"`},
		{"duplicate listener", func(s *sandbox.Spec) {
			s.Listeners = []sandbox.ListenerSpec{{Name: sandbox.ListenerEgress}, {Name: sandbox.ListenerEgress}}
		}, "twice"},
		{"api key", func(s *sandbox.Spec) { s.Env = map[string]string{"ANTHROPIC_API_KEY": "x"} }, "looks like a credential"},
		{"token", func(s *sandbox.Spec) { s.Env = map[string]string{"GITHUB_TOKEN": "x"} }, "looks like a credential"},
		{"aws", func(s *sandbox.Spec) { s.Env = map[string]string{"AWS_SECRET_ACCESS_KEY": "x"} }, "looks like a credential"},
		{"proxy override", func(s *sandbox.Spec) { s.Env = map[string]string{"HTTPS_PROXY": "http://evil"} }, "set by the driver"},
		{"protected outside workspace", func(s *sandbox.Spec) { s.Policy.Filesystem.Protected = []string{"/etc/passwd"} }, "outside /workspace"},
		{"protected escapes", func(s *sandbox.Spec) { s.Policy.Filesystem.Protected = []string{"../x"} }, "inside the workspace"},
	}
	for _, c := range cases {
		s := good()
		c.mut(&s)
		err := validateSpec(&s)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", c.name, err, c.want)
		}
	}
	// Names that merely contain a word are fine.
	s := good()
	s.Env = map[string]string{"MAX_TOKENS": "100", "TOKENIZER": "bpe", "LOG_LEVEL": "debug"}
	if err := validateSpec(&s); err != nil {
		t.Errorf("harmless env refused: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestProtectedPaths(t *testing.T) {
	t.Parallel()
	got, err := protectedPaths([]string{".git/hooks", "/workspace/.bashrc", "a/../b"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != ".bashrc,.git/hooks,b" {
		t.Errorf("protectedPaths = %v", got)
	}
}
