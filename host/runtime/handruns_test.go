package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/host/state"
)

// A hand run's blueprint is packed as an upload and evaluated as the other
// replicas will evaluate it, confined to a copy of its directory: one that
// keeps its files inside is kept (the same digest twice; the spec carries
// the files), one whose plugin reads a file outside it or that reads
// /etc/passwd is refused with what to do, and --this-replica-only starts
// it with a warning instead of keeping it.
func TestShareHandRun(t *testing.T) {
	t.Parallel()
	r, ctx := upRuntime(t)
	share := func(path string, only bool) (*state.HandRun, string, error) {
		req := daemon.RunRequest{Path: path, HandRun: true, ThisReplicaOnly: only}
		bp, err := r.evaluate(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		var h *state.HandRun
		detail, err := r.shareHandRun(ctx, bp, req, &h)
		return h, detail, err
	}

	dir := t.TempDir()
	data, err := os.ReadFile(cassette)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cassette.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	inside := strings.Replace(withModel(oneAgent), fmt.Sprintf("%q", cassette), `"${path.blueprint}/cassette.json"`, 1)
	if err := os.WriteFile(filepath.Join(dir, "blueprint.hcl"), []byte(inside), 0o644); err != nil {
		t.Fatal(err)
	}
	h, detail, err := share(filepath.Join(dir, "blueprint.hcl"), false)
	if err != nil || h == nil || !strings.Contains(detail, "every replica serves its sandboxes") {
		t.Fatalf("a blueprint keeping its files inside its directory: %v, %q, %v", h, detail, err)
	}
	var spec handRunSpec
	var u pb.Upload
	if err := json.Unmarshal(h.Spec, &spec); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(spec.Upload, &u); err != nil {
		t.Fatal(err)
	}
	files := map[string]int{}
	for _, f := range u.Files {
		files[f.Path] = len(f.Data)
	}
	if u.Entry != "blueprint.hcl" || files["blueprint.hcl"] != len(inside) || files["cassette.json"] != len(data) {
		t.Fatalf("the kept upload: entry %q, files %v", u.Entry, files)
	}
	if again, _, err := share(filepath.Join(dir, "blueprint.hcl"), false); err != nil || again.Digest != h.Digest {
		t.Fatalf("the same blueprint kept twice: digests %s and %v (%v)", h.Digest, again, err)
	}

	for name, src := range map[string]string{
		"a plugin config naming a file outside": withModel(oneAgent),
		"file() outside":                        strings.Replace(inside, "  policy = policy.p\n", "  policy = policy.p\n  environment = { MOTD = file(\"/etc/passwd\") }\n", 1),
	} {
		path := writeBlueprint(t, src)
		h, _, err := share(path, false)
		if err == nil || h != nil || !strings.Contains(err.Error(), "--this-replica-only") || !strings.Contains(err.Error(), "AgentEnvironment") {
			t.Fatalf("%s: kept %v, err %v; want a refusal naming AgentEnvironments and --this-replica-only", name, h, err)
		}
		t.Logf("%s: %v", name, err)
		if !strings.Contains(err.Error(), "/etc/passwd") && !strings.Contains(err.Error(), cassette) {
			t.Fatalf("%s: the refusal does not name the file: %v", name, err)
		}
		h, detail, err := share(path, true)
		if err != nil || h != nil || !strings.Contains(detail, "SERVED BY THIS REPLICA ONLY") {
			t.Fatalf("%s with --this-replica-only: kept %v, %q, %v; want a warning and nothing kept", name, h, detail, err)
		}
	}
}
