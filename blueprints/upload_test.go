package blueprints

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// loadUpload writes files into a fresh upload directory and evaluates its
// blueprint.hcl confined to it (Options.Root), as the daemon does for a
// remote caller's upload.
func loadUpload(t *testing.T, files map[string]string, varFiles ...string) (string, *Blueprint, hcl.Diagnostics, *Loader) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "upload")
	for p, data := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var vf []string
	for _, f := range varFiles {
		vf = append(vf, filepath.Join(root, f))
	}
	l := NewLoader(Options{Schemas: testSchemas(), LookupEnv: testEnv, Root: root, VarFiles: vf})
	bp, diags := l.Load(context.Background(), filepath.Join(root, "blueprint.hcl"))
	return root, bp, diags, l
}

func wantDiag(t *testing.T, diags hcl.Diagnostics, l *Loader, want string, located bool) {
	t.Helper()
	for _, d := range diags {
		if d.Severity == hcl.DiagError && strings.Contains(d.Summary+" "+d.Detail, want) {
			if located && d.Subject == nil {
				t.Errorf("diagnostic %q has no location", d.Summary)
			}
			return
		}
	}
	t.Fatalf("want an error containing %q, got:\n%s", want, FormatDiagnostics(l.Files(), diags, 0))
}

func TestUploadConfinesFiles(t *testing.T) {
	t.Parallel()
	// Inside the upload: read as usual, templates too, var files too.
	_, bp, diags, l := loadUpload(t, map[string]string{
		"blueprint.hcl": `variable "who" {
  type = string
}
locals {
  motd  = trimspace(file("files/motd.txt"))
  hello = templatefile("files/hi.tmpl", { name = var.who })
}
` + minimalSandbox,
		"files/motd.txt": "welcome\n",
		"files/hi.tmpl":  "hi ${name}",
		"vars.hcl":       `who = "ann"`,
	}, "vars.hcl")
	if diags.HasErrors() {
		t.Fatalf("an upload reading its own files: %s", FormatDiagnostics(l.Files(), diags, 0))
	}
	if bp == nil {
		t.Fatal("no blueprint")
	}
	// path.cwd of an upload is the upload, not the daemon's directory.
	root, bp, diags, l := loadUpload(t, map[string]string{"blueprint.hcl": "locals {\n  cwd = path.cwd\n}\n" + `
policy "p" {
}
sandbox "s" {
  policy    = policy.p
  workspace = path.cwd
}
`})
	if diags.HasErrors() || bp.Sandboxes[0].Workspace != root {
		t.Fatalf("path.cwd in an upload: %+v %s", bp, FormatDiagnostics(l.Files(), diags, 0))
	}

	secret := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(secret, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		expr, want string
		link       bool
	}{
		"absolute":          {`file("/etc/passwd")`, "/etc/passwd is an absolute path", false},
		"absolute template": {`templatefile("/etc/passwd", {})`, "is an absolute path", false},
		"dotdot":            {`file("../x")`, "../x leads out of the upload", false},
		"deep dotdot":       {`file("files/../../../etc/passwd")`, "leads out of the upload", false},
		// A link placed inside the upload cannot lead out either (the
		// daemon never writes one, but the check does not rely on that).
		"symlink": {`file("link.txt")`, "link.txt", true},
	} {
		t.Run(name, func(t *testing.T) {
			files := map[string]string{"blueprint.hcl": "locals {\n  x = " + tc.expr + "\n}\n" + minimalSandbox}
			root, _, _, _ := loadUpload(t, files)
			if tc.link {
				if err := os.Symlink(secret, filepath.Join(root, "link.txt")); err != nil {
					t.Fatal(err)
				}
			}
			l := NewLoader(Options{Schemas: testSchemas(), LookupEnv: testEnv, Root: root})
			bp, diags := l.Load(context.Background(), filepath.Join(root, "blueprint.hcl"))
			if bp != nil {
				t.Fatalf("%s was evaluated: %v", tc.expr, bp.Dir)
			}
			wantDiag(t, diags, l, tc.want, true)
			if strings.Contains(FormatDiagnostics(l.Files(), diags, 0), "host secret") {
				t.Error("the diagnostic shows the file's content")
			}
		})
	}
}

func TestUploadConfinesWorkspaceAndPlugins(t *testing.T) {
	t.Parallel()
	ok := `
policy "p" {
  filesystem {
    read_write = ["/workspace"]
  }
}
sandbox "s" {
  policy    = policy.p
  workspace = "./workspace"
}
`
	if _, _, diags, l := loadUpload(t, map[string]string{"blueprint.hcl": ok, "workspace/a.txt": "a"}); diags.HasErrors() {
		t.Fatalf("workspace inside the upload: %s", FormatDiagnostics(l.Files(), diags, 0))
	}
	for _, ws := range []string{"/srv/data", "../other", "."} {
		src := strings.Replace(ok, `"./workspace"`, `"`+ws+`"`, 1)
		_, _, diags, l := loadUpload(t, map[string]string{"blueprint.hcl": src})
		if ws == "." {
			// The upload itself is inside the upload.
			if diags.HasErrors() {
				t.Errorf("workspace = \".\": %s", FormatDiagnostics(l.Files(), diags, 0))
			}
			continue
		}
		wantDiag(t, diags, l, "Workspace outside the upload", true)
	}
	rw := strings.Replace(ok, `read_write = ["/workspace"]`, `read_write = ["/workspace", "/srv/shared"]`, 1)
	_, _, diags, l := loadUpload(t, map[string]string{"blueprint.hcl": rw})
	wantDiag(t, diags, l, `read_write path "/srv/shared"`, true)
	ro := strings.Replace(ok, `read_write = ["/workspace"]`, `read_write = ["/workspace"]
    read_only  = ["/usr", "/etc", "/home"]`, 1)
	_, _, diags, l = loadUpload(t, map[string]string{"blueprint.hcl": ro})
	wantDiag(t, diags, l, `read_only path "/home"`, true)
	ro = strings.Replace(ro, `, "/home"`, ``, 1)
	if _, _, diags, l := loadUpload(t, map[string]string{"blueprint.hcl": ro}); diags.HasErrors() {
		t.Errorf("system directories in an upload: %s", FormatDiagnostics(l.Files(), diags, 0))
	}
	_, _, diags, l = loadUpload(t, map[string]string{"blueprint.hcl": `
plugin "llm" "mine" {
  source = "./bin/llm-mine"
}
` + minimalSandbox})
	wantDiag(t, diags, l, "Plugin from a path in an upload", true)
}

func TestUploadBlueprintAndVarFilesInside(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "blueprint.hcl"), []byte(minimalSandbox), 0o644); err != nil {
		t.Fatal(err)
	}
	l := NewLoader(Options{Schemas: testSchemas(), LookupEnv: testEnv, Root: root, VarFiles: []string{"/etc/passwd"}})
	_, diags := l.Load(context.Background(), filepath.Join(root, "blueprint.hcl"))
	wantDiag(t, diags, l, "/etc/passwd is not inside the uploaded blueprint's directory", false)
	l = NewLoader(Options{Schemas: testSchemas(), LookupEnv: testEnv, Root: root})
	_, diags = l.Load(context.Background(), filepath.Join(root, "..", "x.hcl"))
	wantDiag(t, diags, l, "is not inside the uploaded blueprint's directory", false)
}
