package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, data := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func uploadPaths(u *pb.Upload) map[string]string {
	out := map[string]string{}
	for _, f := range u.Files {
		if f.Mode&UploadDirMode != 0 {
			out[f.Path] = "/"
			continue
		}
		out[f.Path] = string(f.Data)
	}
	return out
}

// TestOIDC_RemoteRunUploads: a remote operator's run carries the
// blueprint's directory; the daemon stores it under the caller's own
// upload directory, replaces it on the next run, keeps two callers' uploads
// of one name apart, and refuses viewers, malformed and oversized uploads.
func TestOIDC_RemoteRunUploads(t *testing.T) {
	t.Parallel()
	f := startRemote(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	src := filepath.Join(t.TempDir(), "quick")
	writeTree(t, src, map[string]string{
		"blueprint.hcl":      "# the blueprint\n",
		"cassette.json":      "{}",
		"workspace/notes.md": "notes",
		".git/config":        "not sent",
	})
	if err := os.MkdirAll(filepath.Join(src, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	vars := filepath.Join(t.TempDir(), "prod.nctl-vars")
	if err := os.WriteFile(vars, []byte(`x = "1"`), 0o600); err != nil {
		t.Fatal(err)
	}
	up, vfs, err := PackUpload(filepath.Join(src, "blueprint.hcl"), []string{vars})
	if err != nil {
		t.Fatal(err)
	}
	if up.Name != "quick" || up.Entry != "blueprint.hcl" || len(vfs) != 1 || vfs[0] != ".nemoclave-var-files/0-prod.nctl-vars" {
		t.Fatalf("packed: name %q entry %q var files %v", up.Name, up.Entry, vfs)
	}
	got := uploadPaths(up)
	for p, want := range map[string]string{"blueprint.hcl": "# the blueprint\n", "workspace": "/", "workspace/notes.md": "notes", "empty": "/", vfs[0]: `x = "1"`} {
		if got[p] != want {
			t.Errorf("packed %s = %q, want %q", p, got[p], want)
		}
	}
	if _, ok := got[".git/config"]; ok {
		t.Error(".git was packed")
	}

	// A viewer cannot run, upload or not.
	viewer := f.as(t, f.token(t, "vera@example.com", "viewers"))
	err = viewer.Run(ctx, RunRequest{Upload: up, VarFiles: vfs}, &recordedEvents{})
	if err == nil || !strings.Contains(err.Error(), "Run needs the operator role") {
		t.Fatalf("viewer runs: %v", err)
	}
	if _, err := os.Stat(UploadsDir(f.home)); !os.IsNotExist(err) {
		t.Errorf("a refused caller's upload was stored: %v", err)
	}

	op := f.as(t, f.token(t, "rita@example.com", "runners"))
	ev := &recordedEvents{}
	if err := op.Run(ctx, RunRequest{Upload: up, VarFiles: vfs}, ev); err != nil {
		t.Fatalf("operator runs an upload: %v", err)
	}
	dir := filepath.Join(CallerUploadDir(f.home, "oidc:rita@example.com"), "quick")
	f.backend.saw(t, "Run upload path="+filepath.Join(dir, "blueprint.hcl")+" root="+dir+" varfiles=["+filepath.Join(dir, vfs[0])+"] by oidc:rita@example.com")
	for p, want := range map[string]string{"blueprint.hcl": "# the blueprint\n", "workspace/notes.md": "notes", vfs[0]: `x = "1"`} {
		if b, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(b) != want {
			t.Errorf("stored %s: %q %v", p, b, err)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "empty")); err != nil || !st.IsDir() {
		t.Errorf("empty directory not stored: %v", err)
	}
	if st, err := os.Stat(UploadsDir(f.home)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("uploads dir: %v %v", st, err)
	}

	// While a sandbox of the upload runs, a re-run without --replace is
	// refused before the upload is touched; with it, it goes ahead.
	f.backend.setRunning(filepath.Join(dir, "blueprint.hcl"))
	err = op.rpcRun(ctx, RunRequest{Upload: up, VarFiles: vfs})
	wantCode(t, "re-run while running", err, codes.FailedPrecondition, `sandbox "up-1" of this upload (quick) is running`)
	if _, err := os.Stat(filepath.Join(dir, "workspace", "notes.md")); err != nil {
		t.Errorf("a refused re-run touched the running upload: %v", err)
	}
	if err := op.Run(ctx, RunRequest{Upload: up, VarFiles: vfs, Replace: true}, &recordedEvents{}); err != nil {
		t.Fatalf("re-run with --replace: %v", err)
	}
	f.backend.setRunning("")

	// Re-running replaces the caller's upload: a file removed locally is gone.
	if err := os.Remove(filepath.Join(src, "workspace", "notes.md")); err != nil {
		t.Fatal(err)
	}
	up2, _, err := PackUpload(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if up2.Entry != "." {
		t.Errorf("a directory's entry: %q", up2.Entry)
	}
	if err := op.Run(ctx, RunRequest{Upload: up2}, &recordedEvents{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "workspace", "notes.md")); !os.IsNotExist(err) {
		t.Errorf("the previous upload's file survived a re-run: %v", err)
	}
	f.backend.saw(t, "Run upload path="+dir+" root="+dir+" varfiles=[] by oidc:rita@example.com")

	// Another caller's upload of the same name lands elsewhere.
	op2 := f.as(t, f.token(t, "sam@example.com", "runners"))
	if err := op2.Run(ctx, RunRequest{Upload: up}, &recordedEvents{}); err != nil {
		t.Fatal(err)
	}
	dir2 := filepath.Join(CallerUploadDir(f.home, "oidc:sam@example.com"), "quick")
	if dir2 == dir {
		t.Fatal("two callers share an upload directory")
	}
	if _, err := os.Stat(filepath.Join(dir2, "workspace", "notes.md")); err != nil {
		t.Errorf("second caller's upload: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "workspace", "notes.md")); !os.IsNotExist(err) {
		t.Errorf("the second caller's upload changed the first's: %v", err)
	}

	// Malformed and oversized uploads are refused before anything is written.
	big := make([]byte, MaxUploadFileBytes+1)
	many := &pb.Upload{Name: "many", Entry: "."}
	for i := 0; i <= MaxUploadFiles; i++ {
		many.Files = append(many.Files, &pb.UploadFile{Path: "d" + strings.Repeat("x", i%7) + "/" + string(rune('a'+i%26)) + "-" + itoa(i), Mode: 0o644})
	}
	total := &pb.Upload{Name: "total", Entry: "."}
	for i := 0; i < 9; i++ {
		total.Files = append(total.Files, &pb.UploadFile{Path: "f" + itoa(i), Data: make([]byte, MaxUploadFileBytes), Mode: 0o644})
	}
	for _, tc := range []struct {
		name string
		req  RunRequest
		want string
	}{
		{"dotdot", RunRequest{Upload: &pb.Upload{Name: "x", Entry: ".", Files: []*pb.UploadFile{{Path: "../escape", Data: []byte("x")}}}}, "leads out of the upload"},
		{"absolute", RunRequest{Upload: &pb.Upload{Name: "x", Entry: ".", Files: []*pb.UploadFile{{Path: "/etc/cron.d/x", Data: []byte("x")}}}}, "is absolute"},
		{"unclean", RunRequest{Upload: &pb.Upload{Name: "x", Entry: ".", Files: []*pb.UploadFile{{Path: "a/../../b"}}}}, "not clean"},
		{"name", RunRequest{Upload: &pb.Upload{Name: "../x", Entry: "."}}, `upload name "../x"`},
		{"entry", RunRequest{Upload: &pb.Upload{Name: "x", Entry: "../../etc/passwd"}}, "leads out of the upload"},
		{"var file", RunRequest{Upload: &pb.Upload{Name: "x", Entry: "."}, VarFiles: []string{"/etc/shadow"}}, "is absolute"},
		{"path and upload", RunRequest{Path: "/etc", Upload: &pb.Upload{Name: "x", Entry: "."}}, "not both"},
		{"big file", RunRequest{Upload: &pb.Upload{Name: "x", Entry: ".", Files: []*pb.UploadFile{{Path: "big", Data: big}}}}, "more than 1048576 (1 MiB) per file"},
		{"many files", RunRequest{Upload: many}, "more than 4096"},
		{"total", RunRequest{Upload: total}, "larger than 8388608 bytes"},
	} {
		err := op.rpcRun(ctx, tc.req)
		wantCode(t, tc.name, err, codes.InvalidArgument, tc.want)
	}
	entries, err := os.ReadDir(CallerUploadDir(f.home, "oidc:rita@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "quick,subject" {
		t.Errorf("after refused uploads the caller's directory holds %v", names)
	}
	evs := controlEvents(t, f.home)
	if !hasEvent(evs, "oidc:rita@example.com", "Run", "", "ok") {
		t.Errorf("the operator's run is not audited with its subject: %+v", evs)
	}
	if !hasEvent(evs, "oidc:vera@example.com", "Run", "", "denied") {
		t.Errorf("the viewer's refused run is not audited: %+v", evs)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestPackUploadLinksAndBounds(t *testing.T) {
	t.Parallel()
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	writeTree(t, src, map[string]string{"bp.hcl": "", "data/real.txt": "real"})
	// A link to a file inside is sent as that file.
	if err := os.Symlink("data/real.txt", filepath.Join(src, "alias.txt")); err != nil {
		t.Fatal(err)
	}
	up, _, err := PackUpload(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := uploadPaths(up)["alias.txt"]; got != "real" {
		t.Errorf("a link inside: %q", got)
	}
	// A link out is refused, naming it.
	if err := os.Symlink(outside, filepath.Join(src, "leak")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := PackUpload(src, nil); err == nil || !strings.Contains(err.Error(), "outside the blueprint's directory") {
		t.Errorf("a link out: %v", err)
	}
	os.Remove(filepath.Join(src, "leak"))
	if err := os.Symlink("data", filepath.Join(src, "dirlink")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := PackUpload(src, nil); err == nil || !strings.Contains(err.Error(), "symbolic link to a directory") {
		t.Errorf("a link to a directory: %v", err)
	}
	os.Remove(filepath.Join(src, "dirlink"))
	// A file over the per-file bound is named.
	if err := os.WriteFile(filepath.Join(src, "model.bin"), make([]byte, MaxUploadFileBytes+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := PackUpload(src, nil); err == nil || !strings.Contains(err.Error(), "model.bin is larger than 1048576 bytes") {
		t.Errorf("a large file: %v", err)
	}
}

// A directory laid out as the kubelet mounts a ConfigMap (each key a link
// through ..data to a timestamped directory) packs as its keys' files.
func TestPackUploadConfigMapVolume(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	writeTree(t, src, map[string]string{"..2026_12_05_03_10_00.1/blueprint.hcl": "bp", "..2026_12_05_03_10_00.1/cassette.json": "{}"})
	links := map[string]string{"..data": "..2026_12_05_03_10_00.1", "blueprint.hcl": "..data/blueprint.hcl", "cassette.json": "..data/cassette.json"}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(src, name)); err != nil {
			t.Fatal(err)
		}
	}
	up, _, err := PackUpload(filepath.Join(src, "blueprint.hcl"), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := uploadPaths(up)
	if len(got) != 2 || got["blueprint.hcl"] != "bp" || got["cassette.json"] != "{}" {
		t.Fatalf("a ConfigMap volume packs as %v, want its two keys", got)
	}
}

// rpcRun sends req and returns the stream's status error, unconverted.
func (c *Client) rpcRun(ctx context.Context, req RunRequest) error {
	st, err := c.rpc.Run(ctx, &pb.RunRequest{Path: req.Path, VarFiles: req.VarFiles, Upload: req.Upload, Replace: req.Replace})
	if err != nil {
		return err
	}
	for {
		if _, err := st.Recv(); err != nil {
			return err
		}
	}
}

// TestOIDC_StreamEndsWhenTokenExpires: a token is checked when a stream
// opens; the stream (here connect's Attach) ends with a clear error when
// the token expires, instead of outliving it.
func TestOIDC_StreamEndsWhenTokenExpires(t *testing.T) {
	t.Parallel()
	f := startRemote(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The token must still be valid when the stream has opened: long
	// enough for a loaded machine, and the test waits it out.
	tok, err := f.issuer.Token("sub-short", testAudience, 20*time.Second, map[string]any{"email": "short@example.com", "groups": []string{"ops"}})
	if err != nil {
		t.Fatal(err)
	}
	op := f.as(t, tok)
	st, err := op.rpc.Attach(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&pb.AttachInput{Input: &pb.AttachInput_Start{Start: &pb.AttachStart{Sandbox: "box-1"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatalf("the stream did not open while the token was valid: %v", err)
	}
	if err := st.Send(&pb.AttachInput{Input: &pb.AttachInput_Stdin{Stdin: []byte("hi")}}); err != nil {
		t.Fatal(err)
	}
	// The stream serves until the token expires, then ends.
	var last error
	for {
		if _, err := st.Recv(); err != nil {
			last = err
			break
		}
	}
	wantCode(t, "stream after expiry", last, codes.Unauthenticated, "the token of oidc:short@example.com expired at")
	if ctx.Err() != nil {
		t.Fatal("the stream ended only with the test's deadline")
	}
	if !hasEvent(controlEvents(t, f.home), "oidc:short@example.com", "Attach", "box-1", "denied") && !hasEvent(controlEvents(t, f.home), "oidc:short@example.com", "Attach", "box-1", "error") {
		t.Errorf("the ended stream is not audited: %+v", controlEvents(t, f.home))
	}
}
