package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// UID is the unprivileged user (and group) every process in the images
// runs as; the kubernetes driver's pods and deploy/'s Deployment use it.
const UID = 65532

// Media types of the OCI image specification.
const (
	mediaIndex    = "application/vnd.oci.image.index.v1+json"
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// Spec describes one image.
type Spec struct {
	// Ref is the full reference, e.g. ghcr.io/nemoclave/nemoclave:0.1.0.
	Ref string
	// Binaries are host paths copied to /usr/local/bin; each must be a
	// static executable (there is no libc on scratch).
	Binaries []string
	// CABundle is the PEM file installed as
	// /etc/ssl/certs/ca-certificates.crt.
	CABundle string
	// Entrypoint and Cmd of the image config.
	Entrypoint, Cmd []string
	// Env of the image config; PATH and SSL_CERT_FILE are always set.
	Env []string
	// Dirs are created empty, owned by UID, mode 0700 (state) — except
	// /tmp, which is 1777.
	Dirs []string
	// Labels of the image config (org.opencontainers.image.*).
	Labels map[string]string
	// Created is the image's creation time (SOURCE_DATE_EPOCH in the
	// Makefile) and the mtime of every file, so builds are reproducible.
	Created time.Time
}

// Result is what Build wrote.
type Result struct {
	Archive        string // the OCI archive (tar of an image layout)
	ManifestFile   string // the image manifest, the signed payload
	ManifestDigest string // sha256:… of the manifest
	Config         Config
}

// Config is the subset of the OCI image config nemoclave sets.
type Config struct {
	Architecture string         `json:"architecture"`
	OS           string         `json:"os"`
	Created      string         `json:"created"`
	Config       ContainerCfg   `json:"config"`
	RootFS       rootFS         `json:"rootfs"`
	History      []historyEntry `json:"history"`
}

// ContainerCfg is the execution part of the image config.
type ContainerCfg struct {
	User       string            `json:"User"`
	Entrypoint []string          `json:"Entrypoint"`
	Cmd        []string          `json:"Cmd,omitempty"`
	Env        []string          `json:"Env"`
	WorkingDir string            `json:"WorkingDir"`
	Labels     map[string]string `json:"Labels,omitempty"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type historyEntry struct {
	Created   string `json:"created"`
	CreatedBy string `json:"created_by"`
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Build writes <outDir>/<name>.oci.tar and <name>.manifest.json for s,
// where name is the last path element of s.Ref without the tag.
func Build(s Spec, outDir string) (Result, error) {
	if s.Ref == "" || len(s.Entrypoint) == 0 {
		return Result{}, errors.New("image: Spec needs Ref and Entrypoint")
	}
	for _, b := range s.Binaries {
		if err := requireStatic(b); err != nil {
			return Result{}, err
		}
	}
	layer, diffID, err := buildLayer(s)
	if err != nil {
		return Result{}, err
	}
	created := s.Created.UTC().Format(time.RFC3339)
	env := append([]string{"PATH=/usr/local/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}, s.Env...)
	cfg := Config{
		Architecture: "amd64", OS: "linux", Created: created,
		Config:  ContainerCfg{User: fmt.Sprintf("%d:%d", UID, UID), Entrypoint: s.Entrypoint, Cmd: s.Cmd, Env: env, WorkingDir: "/", Labels: s.Labels},
		RootFS:  rootFS{Type: "layers", DiffIDs: []string{diffID}},
		History: []historyEntry{{Created: created, CreatedBy: "nemoclave-image (deploy/image): static binaries on scratch"}},
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return Result{}, err
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": mediaManifest,
		"config": desc(mediaConfig, cfgJSON, nil),
		"layers": []descriptor{desc(mediaLayer, layer, nil)},
	})
	if err != nil {
		return Result{}, err
	}
	mdesc := desc(mediaManifest, manifest, map[string]string{"org.opencontainers.image.ref.name": s.Ref})
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mediaIndex, "manifests": []descriptor{mdesc}})
	if err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return Result{}, err
	}
	name := Name(s.Ref)
	archive := filepath.Join(outDir, name+".oci.tar")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{blobPath(layer), layer},
		{blobPath(cfgJSON), cfgJSON},
		{blobPath(manifest), manifest},
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: s.Created, Format: tar.FormatPAX}); err != nil {
			return Result{}, err
		}
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: s.Created, Format: tar.FormatPAX}); err != nil {
			return Result{}, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return Result{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return Result{}, err
	}
	if err := os.WriteFile(archive, buf.Bytes(), 0o644); err != nil {
		return Result{}, err
	}
	mfile := filepath.Join(outDir, name+".manifest.json")
	if err := os.WriteFile(mfile, manifest, 0o644); err != nil {
		return Result{}, err
	}
	return Result{Archive: archive, ManifestFile: mfile, ManifestDigest: mdesc.Digest, Config: cfg}, nil
}

// Name is the repository's last path element: "nemoclave-sandbox" for
// ghcr.io/nemoclave/nemoclave-sandbox:0.1.0.
func Name(ref string) string {
	n := path.Base(ref)
	if i := strings.IndexAny(n, ":@"); i >= 0 {
		n = n[:i]
	}
	return n
}

func desc(mt string, b []byte, ann map[string]string) descriptor {
	return descriptor{MediaType: mt, Digest: digest(b), Size: int64(len(b)), Annotations: ann}
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func blobPath(b []byte) string { return "blobs/sha256/" + strings.TrimPrefix(digest(b), "sha256:") }

// requireStatic refuses a dynamically linked binary: on scratch there is
// no loader, and the container would fail with a bare "no such file".
func requireStatic(p string) error {
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("image: %s: %w; build it with `make image` (static, CGO_ENABLED=0)", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("image: %s is dynamically linked and cannot run on a scratch image; build it with CGO_ENABLED=0 (`make image` does)", p)
		}
	}
	return nil
}

// buildLayer writes the single layer (tar+gzip) and returns it with its
// diff ID (the digest of the uncompressed tar).
func buildLayer(s Spec) ([]byte, string, error) {
	type entry struct {
		hdr  tar.Header
		data []byte
	}
	var entries []entry
	dir := func(name string, mode int64, uid int) {
		entries = append(entries, entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: uid}})
	}
	file := func(name string, mode int64, data []byte) {
		entries = append(entries, entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))}, data: data})
	}
	for _, d := range []string{"etc", "etc/ssl", "etc/ssl/certs", "usr", "usr/local", "usr/local/bin"} {
		dir(d, 0o755, 0)
	}
	dir("tmp", 0o1777, 0)
	for _, d := range s.Dirs {
		d = strings.Trim(d, "/")
		for p := path.Dir(d); p != "."; p = path.Dir(p) {
			dir(p, 0o755, 0)
		}
		dir(d, 0o700, UID)
	}
	file("etc/passwd", 0o644, []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UID, UID)))
	file("etc/group", 0o644, []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", UID)))
	if s.CABundle != "" {
		b, err := os.ReadFile(s.CABundle)
		if err != nil {
			return nil, "", fmt.Errorf("image: CA bundle: %w; install ca-certificates or pass -ca-bundle", err)
		}
		file("etc/ssl/certs/ca-certificates.crt", 0o644, b)
	}
	for _, b := range s.Binaries {
		data, err := os.ReadFile(b)
		if err != nil {
			return nil, "", err
		}
		file("usr/local/bin/"+filepath.Base(b), 0o755, data)
	}
	// Parents before children, each once, in a stable order.
	seen := map[string]bool{}
	var uniq []entry
	for _, e := range entries {
		if !seen[e.hdr.Name] {
			seen[e.hdr.Name] = true
			uniq = append(uniq, e)
		}
	}
	sort.SliceStable(uniq, func(i, j int) bool { return uniq[i].hdr.Name < uniq[j].hdr.Name })
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range uniq {
		h := e.hdr
		h.ModTime, h.Format = s.Created, tar.FormatPAX
		if h.Uid == UID {
			h.Uname, h.Gname = "nonroot", "nonroot"
		} else {
			h.Uname, h.Gname = "root", "root"
		}
		if err := tw.WriteHeader(&h); err != nil {
			return nil, "", err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return gz.Bytes(), digest(raw.Bytes()), nil
}
