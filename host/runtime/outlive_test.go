package runtime

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/nemoclave/nemoclave/host/state"
	"github.com/nemoclave/nemoclave/sandbox"
)

// outlivingDriver is the fake driver with the kubernetes driver's
// property: its sandboxes run on without the daemon that started them.
type outlivingDriver struct{ *fakeDriver }

func (outlivingDriver) SandboxesOutliveDaemon() bool { return true }

// A daemon (replica) that starts marks the local driver's running
// sandboxes lost, but never touches a running sandbox of a driver whose
// sandboxes outlive it: with state shared between replicas, that sandbox
// may be another replica's, and its pod still runs. Not even when this
// replica's driver cannot see it (another replica's namespace view).
func TestReplicaStartNeverMarksOutlivingSandboxesLost(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	ctx := context.Background()
	db, err := state.Open(filepath.Join(home, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []state.Sandbox{
		{Name: "box", Blueprint: "/bp", Driver: "local", State: string(sandbox.StateRunning)},
		{Name: "pod", Blueprint: "/bp", Driver: "kubernetes", State: string(sandbox.StateRunning)},
		{Name: "elsewhere", Blueprint: "/bp2", Driver: "kubernetes", State: string(sandbox.StateRunning)},
	} {
		if err := db.PutSandbox(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	kube := outlivingDriver{newFakeDriver(0)}
	kube.stayUp = true
	if _, err := kube.Create(ctx, sandbox.Spec{Name: "pod", Command: []string{"agent"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.Start(ctx, "pod"); err != nil {
		t.Fatal(err)
	}
	r, err := New(ctx, Options{Home: home, Executable: "/bin/true", PluginBinDir: pluginDir,
		Drivers: map[string]sandbox.Driver{"local": newFakeDriver(0), "kubernetes": kube}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	want := map[string]sandbox.State{"box": sandbox.StateLost, "pod": sandbox.StateRunning, "elsewhere": sandbox.StateRunning}
	for name, st := range want {
		s, err := r.db.Sandbox(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if s.State != string(st) {
			t.Errorf("after the replica started, sandbox %s (driver %s) is recorded %s (%s), want %s", name, s.Driver, s.State, s.Reason, st)
		}
	}
	// The view asks the driver: the pod this replica sees runs.
	if v := r.view(ctx, mustRecord(t, r, "pod")); v.State != string(sandbox.StateRunning) {
		t.Errorf("view of pod: %s", v.State)
	}
}

func mustRecord(t *testing.T, r *Runtime, name string) state.Sandbox {
	t.Helper()
	s, err := r.db.Sandbox(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
