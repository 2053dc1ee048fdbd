//go:build kubernetes

package controller

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// handBlueprint writes testBlueprint (sandbox named sandbox) and its
// cassette into a directory of their own, as a user keeps a blueprint,
// and returns the blueprint file; extra is added to the sandbox block.
func handBlueprint(t *testing.T, sandbox, extra string) string {
	t.Helper()
	cm := blueprintConfigMap(t, "", "", sandbox)
	dir := t.TempDir()
	bp := cm.Data["blueprint.hcl"]
	if extra != "" {
		bp = strings.Replace(bp, "  policy = policy.crd\n}", "  policy = policy.crd\n"+extra+"\n}", 1)
		if !strings.Contains(bp, extra) {
			t.Fatal("the test blueprint's sandbox block changed; update handBlueprint")
		}
	}
	for name, data := range map[string]string{"blueprint.hcl": bp, "cassette.json": cm.Data["cassette.json"]} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "blueprint.hcl")
}

// run runs the CLI against replica r and returns its output and error.
func (r *replica) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, _ := binary(t)
	cmd := exec.Command(bin, append([]string{"--home", r.home}, args...)...)
	cmd.Env = append(os.Environ(), "NEMOCLAVE_HOME="+r.home)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (cl *cluster) waitPod(t *testing.T, ns, sandbox string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	eventually(t, "the pod of sandbox "+sandbox, func() bool { pod = cl.pod(t, ns, sandbox); return pod != nil })
	return pod
}

// A sandbox started by hand (`nemoclave run -d`) on one replica of a
// daemon whose replicas share PostgreSQL state is served by every replica:
// the run keeps its blueprint in the state, and each replica serves the
// pod from it, so the agent's inference calls are answered through the
// replica that ran it, through the other one, after the one that ran it
// is killed, and by that one restarted. A blueprint the other replicas
// cannot evaluate (it reads a file outside its directory) is refused with
// what to do, and runs with --this-replica-only, served by that replica
// alone. A delete on another replica ends the serving everywhere.
func TestHA_HandRunServedByEveryReplica(t *testing.T) {
	stateURL := sharedPostgres(t)
	cl := testCluster(t)
	ns := cl.namespace(t)
	a := cl.startReplica(t, ns, "", "--state-url", stateURL)
	b := cl.startReplica(t, ns, "", "--state-url", stateURL)

	out := a.cli(t, "run", "-d", handBlueprint(t, "hand-run", ""))
	t.Logf("run -d on A:\n%s", out)
	if !strings.Contains(out, "every replica serves its sandboxes") {
		t.Fatalf("run -d on A does not say the blueprint is kept for the other replicas:\n%s", out)
	}
	pod := cl.waitPod(t, ns, "hand-run")
	agent := cl.fakePod(t, pod)
	agent.answers(t, b, "on the replica that did not run it")
	agent.answers(t, a, "on the replica that ran it")

	// A node failure takes the replica that ran it: the other one goes on.
	a.kill()
	agent.answers(t, b, "after the replica that ran it was killed")
	back := cl.startReplica(t, ns, a.home, "--state-url", stateURL)
	agent.answers(t, back, "by the replica that ran it, restarted")

	// A blueprint that reads a file outside its directory cannot be
	// evaluated by the other replicas: refused, nothing created.
	local := handBlueprint(t, "hand-local", `  environment = { MOTD = file("/etc/passwd") }`)
	out, err := back.run(t, "run", "-d", local)
	if err == nil || !strings.Contains(out, "--this-replica-only") || !strings.Contains(out, "/etc/passwd") ||
		!strings.Contains(out, "AgentEnvironment") {
		t.Fatalf("run -d of a blueprint reading /etc/passwd on a replica sharing its state: err %v, want a refusal naming the file, AgentEnvironments and --this-replica-only:\n%s", err, out)
	}
	if p := cl.pod(t, ns, "hand-local"); p != nil {
		t.Fatalf("the refused run created pod %s", p.Name)
	}
	// Asked for, it runs, served by that replica only, and says so.
	out = back.cli(t, "run", "-d", "--this-replica-only", local)
	if !strings.Contains(out, "SERVED BY THIS REPLICA ONLY") {
		t.Fatalf("run -d --this-replica-only does not warn:\n%s", out)
	}
	only := cl.fakePod(t, cl.waitPod(t, ns, "hand-local"))
	only.answers(t, back, "(--this-replica-only, on the replica that ran it)")
	if code, body, _ := only.ask(b); code != 0 {
		t.Fatalf("the other replica answered a --this-replica-only sandbox: %d %s", code, body)
	}

	// Deleted on the replica that did not run it: served nowhere.
	b.cli(t, "sandbox", "delete", "hand-run")
	for _, r := range []*replica{b, back} {
		eventually(t, r.identity()+" to stop serving the deleted sandbox", func() bool {
			code, _, _ := agent.ask(r)
			return code == 0
		})
	}
	if code, _, _ := only.ask(back); code != http.StatusOK {
		t.Fatalf("deleting one sandbox stopped another: %d", code)
	}
}
