package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nemoclave/nemoclave/version"
)

// staticNemoclave is a static nemoclave binary: `make image`'s when
// NEMOCLAVE_IMAGE_DIR names its output, else one built here.
func staticNemoclave(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("NEMOCLAVE_IMAGE_DIR"); d != "" {
		if p := filepath.Join(d, "bin", "nemoclave"); fileExists(p) {
			return p
		}
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	out := filepath.Join(t.TempDir(), "nemoclave")
	cmd := exec.Command("go", "build", "-o", out, "./host/cmd/nemoclave")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building a static nemoclave: %v\n%s", err, b)
	}
	return out
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// readArchive returns the blobs of an OCI archive by path.
func readArchive(t *testing.T, p string) map[string][]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = b
	}
}

func blob(t *testing.T, files map[string][]byte, digest string) []byte {
	t.Helper()
	b, ok := files["blobs/sha256/"+strings.TrimPrefix(digest, "sha256:")]
	if !ok {
		t.Fatalf("blob %s missing from the archive", digest)
	}
	return b
}

// The image is read back as a registry client would (index → manifest →
// config → layer), and the binary inside is run.
func TestImage_EntrypointUserAndBinaryRun(t *testing.T) {
	nc := staticNemoclave(t)
	out := t.TempDir()
	ca := filepath.Join(out, "ca.pem")
	os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o644)
	s := Spec{
		Ref: "registry.example/team/nemoclave:" + version.Version, Binaries: []string{nc}, CABundle: ca,
		Entrypoint: []string{"/usr/local/bin/nemoclave"}, Cmd: []string{"daemon"},
		Env: []string{"NEMOCLAVE_HOME=/var/lib/nemoclave"}, Dirs: []string{"/var/lib/nemoclave"}, Created: time.Unix(1700000000, 0),
	}
	r, err := Build(s, out)
	if err != nil {
		t.Fatal(err)
	}
	files := readArchive(t, r.Archive)
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Fatalf("oci-layout = %q", files["oci-layout"])
	}
	var index struct {
		Manifests []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v %s", err, files["index.json"])
	}
	if index.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != s.Ref || index.Manifests[0].Digest != r.ManifestDigest {
		t.Fatalf("index names %+v", index.Manifests[0])
	}
	var m struct {
		Config descriptor   `json:"config"`
		Layers []descriptor `json:"layers"`
	}
	if err := json.Unmarshal(blob(t, files, r.ManifestDigest), &m); err != nil || len(m.Layers) != 1 {
		t.Fatalf("manifest: %v", err)
	}
	var cfg Config
	if err := json.Unmarshal(blob(t, files, m.Config.Digest), &cfg); err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Config.Entrypoint, " ") != "/usr/local/bin/nemoclave" || strings.Join(cfg.Config.Cmd, " ") != "daemon" {
		t.Fatalf("entrypoint %q cmd %q", cfg.Config.Entrypoint, cfg.Config.Cmd)
	}
	if cfg.Config.User != "65532:65532" {
		t.Fatalf("user %q, want the non-root 65532:65532", cfg.Config.User)
	}

	zr, err := gzip.NewReader(bytes.NewReader(blob(t, files, m.Layers[0].Digest)))
	if err != nil {
		t.Fatal(err)
	}
	layer := map[string]*tar.Header{}
	var binary []byte
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		layer[h.Name] = h
		if h.Name == "usr/local/bin/nemoclave" {
			binary, _ = io.ReadAll(tr)
		}
	}
	for name, want := range map[string]int{"var/lib/nemoclave/": UID, "tmp/": 0, "etc/passwd": 0, "etc/ssl/certs/ca-certificates.crt": 0} {
		if h, ok := layer[name]; !ok || h.Uid != want {
			t.Errorf("layer entry %s: %+v, want owner %d", name, h, want)
		}
	}
	if h := layer["usr/local/bin/nemoclave"]; h == nil || h.Mode&0o111 == 0 {
		t.Fatal("the layer has no executable /usr/local/bin/nemoclave")
	}
	exe := filepath.Join(t.TempDir(), "nemoclave")
	if err := os.WriteFile(exe, binary, 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command(exe, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(got), version.Version) {
		t.Fatalf("`nemoclave version` from the image: %v\n%s", err, got)
	}

	// The SBOM names the image by digest and lists the binary and the
	// modules compiled into it; the signature verifies.
	sbomFile, err := WriteSBOM(s, r, out)
	if err != nil {
		t.Fatal(err)
	}
	var bom SBOM
	b, _ := os.ReadFile(sbomFile)
	if err := json.Unmarshal(b, &bom); err != nil || bom.BOMFormat != "CycloneDX" || bom.Metadata.Component.BOMRef != r.ManifestDigest {
		t.Fatalf("sbom: %v %+v", err, bom.Metadata)
	}
	var haveBin, haveCobra bool
	for _, c := range bom.Components {
		haveBin = haveBin || c.Name == "/usr/local/bin/nemoclave" && len(c.Hashes) == 1
		haveCobra = haveCobra || strings.HasPrefix(c.PURL, "pkg:golang/github.com/spf13/cobra@v")
	}
	if !haveBin || !haveCobra {
		t.Fatalf("sbom lacks the binary (%v) or its modules (%v)", haveBin, haveCobra)
	}
	key, pub := filepath.Join(out, "cosign.key"), filepath.Join(out, "cosign.pub")
	if err := GenerateKey(key, pub); err != nil {
		t.Fatal(err)
	}
	manifest, _ := os.ReadFile(r.ManifestFile)
	sig, err := SignBlob(key, manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyBlob(pub, manifest, sig); err != nil {
		t.Fatal(err)
	}
	if err := VerifyBlob(pub, append(manifest, ' '), sig); err == nil {
		t.Fatal("a changed manifest verified")
	}

	// Reproducible: the same inputs give the same manifest digest.
	r2, err := Build(s, t.TempDir())
	if err != nil || r2.ManifestDigest != r.ManifestDigest {
		t.Fatalf("rebuild digest %s, want %s (%v)", r2.ManifestDigest, r.ManifestDigest, err)
	}
}

func TestImage_RefusesDynamicBinaries(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to use as a dynamically linked binary")
	}
	real, _ := filepath.EvalSymlinks(sh)
	_, err = Build(Spec{Ref: "x/y:1", Binaries: []string{real}, Entrypoint: []string{"/usr/local/bin/sh"}}, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Fatalf("a dynamically linked binary was accepted: %v", err)
	}
}
