package kubernetes

import (
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/sandbox"
)

func TestValidateRefuses(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		mutate func(*sandbox.Spec)
		want   string
	}{
		"bad name":         {func(s *sandbox.Spec) { s.Name = "Bad_Name" }, "sandbox name"},
		"trailing dash":    {func(s *sandbox.Spec) { s.Name = "a-" }, "sandbox name"},
		"no command":       {func(s *sandbox.Spec) { s.Command = nil }, "no agent command"},
		"no policy":        {func(s *sandbox.Spec) { s.Policy = nil }, "no policy"},
		"credential env":   {func(s *sandbox.Spec) { s.Env["OPENAI_API_KEY"] = "sk" }, "looks like a credential"},
		"driver env":       {func(s *sandbox.Spec) { s.Env["HTTPS_PROXY"] = "http://x" }, "set by the driver"},
		"unknown listener": {func(s *sandbox.Spec) { s.Listeners = append(s.Listeners, sandbox.ListenerSpec{Name: "ssh"}) }, "listener \"ssh\""},
		"twice":            {func(s *sandbox.Spec) { s.Listeners = append(s.Listeners, s.Listeners[0]) }, "requested twice"},
		"tiny memory":      {func(s *sandbox.Spec) { s.Resources.MemoryBytes = 1 << 20 }, "16 MiB"},
		"token readable":   {func(s *sandbox.Spec) { s.Policy.Filesystem.ReadOnly = append(s.Policy.Filesystem.ReadOnly, "/run") }, "gateway token"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := testSpec("ok")
			tc.mutate(&s)
			err := validate(&s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("validate = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	s := testSpec("ok")
	if err := validate(&s); err != nil {
		t.Fatalf("valid spec refused: %v", err)
	}
}

func TestExecArgvWrapsInTheSupervisor(t *testing.T) {
	t.Parallel()
	d := &Driver{opts: Options{SupervisorPath: "/nc"}}
	got, err := d.execArgv([]string{"ls", "-l"}, map[string]string{"B": "2", "A": "1"})
	if err != nil {
		t.Fatal(err)
	}
	want := "/nc sandbox-supervisor exec --env A=1 --env B=2 -- ls -l"
	if strings.Join(got, " ") != want {
		t.Fatalf("argv = %q, want %q", strings.Join(got, " "), want)
	}
	if _, err := d.execArgv(nil, nil); err == nil {
		t.Fatal("empty command accepted")
	}
	if _, err := d.execArgv([]string{"sh"}, map[string]string{"GITHUB_TOKEN": "x"}); err == nil {
		t.Fatal("credential-looking variable accepted")
	}
}
