// Command nemoclave-image builds nemoclave's two images (the daemon/gateway
// image and the sandbox base image) as OCI archives from static binaries,
// with a CycloneDX SBOM and a cosign-format signature of each manifest.
// `make image` runs it; see deploy/image for what the images hold.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nemoclave/nemoclave/deploy/image"
	"github.com/nemoclave/nemoclave/version"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "nemoclave-image:", err)
		os.Exit(1)
	}
}

func run() error {
	bin := flag.String("bin", "", "directory of static binaries: nemoclave and nemoclave-plugin-*")
	out := flag.String("out", "", "output directory for the archives, manifests, SBOMs and signatures")
	repo := flag.String("image", "", "repository of the daemon/gateway image; the sandbox image is <image>-sandbox; the tag is the nemoclave version")
	key := flag.String("key", "", "ECDSA P-256 PKCS#8 PEM signing key; created with its .pub beside it when missing")
	ca := flag.String("ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "CA bundle installed in both images")
	flag.Parse()
	if *bin == "" || *out == "" || *repo == "" || *key == "" {
		return errors.New("-bin, -out, -image and -key are required (run `make image`)")
	}
	created := time.Unix(0, 0).UTC()
	if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
		n, err := strconv.ParseInt(e, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", e, err)
		}
		created = time.Unix(n, 0).UTC()
	}
	pub := strings.TrimSuffix(*key, filepath.Ext(*key)) + ".pub"
	for _, d := range []string{*out, filepath.Dir(*key)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if _, err := os.Stat(*key); errors.Is(err, os.ErrNotExist) {
		if err := image.GenerateKey(*key, pub); err != nil {
			return err
		}
		fmt.Printf("created signing key %s (public key %s); use your organisation's key for releases\n", *key, pub)
	}
	plugins, err := filepath.Glob(filepath.Join(*bin, "nemoclave-plugin-*"))
	if err != nil {
		return err
	}
	sort.Strings(plugins)
	nc := filepath.Join(*bin, "nemoclave")
	labels := func(title string) map[string]string {
		return map[string]string{
			"org.opencontainers.image.title":   title,
			"org.opencontainers.image.version": version.Version,
			"org.opencontainers.image.source":  "https://github.com/nemoclave/nemoclave",
		}
	}
	specs := []image.Spec{{
		// The daemon keeps its home (state, audit, logs) on a volume
		// mounted at /var/lib/nemoclave; deploy/base mounts one there.
		Ref: *repo + ":" + version.Version, Binaries: append([]string{nc}, plugins...), CABundle: *ca,
		Entrypoint: []string{"/usr/local/bin/nemoclave"}, Cmd: []string{"daemon"},
		Env: []string{"NEMOCLAVE_HOME=/var/lib/nemoclave"}, Dirs: []string{"/var/lib/nemoclave"},
		Labels: labels("nemoclave daemon and gateway"), Created: created,
	}, {
		// The kubernetes driver runs `nemoclave sandbox-supervisor run`
		// itself (the pod's command); /workspace is its volume mount.
		Ref: *repo + "-sandbox:" + version.Version, Binaries: []string{nc}, CABundle: *ca,
		Entrypoint: []string{"/usr/local/bin/nemoclave"}, Cmd: []string{"sandbox-supervisor", "run"},
		Dirs: []string{"/workspace"}, Labels: labels("nemoclave sandbox base"), Created: created,
	}}
	for _, s := range specs {
		r, err := image.Build(s, *out)
		if err != nil {
			return err
		}
		sbom, err := image.WriteSBOM(s, r, *out)
		if err != nil {
			return err
		}
		manifest, err := os.ReadFile(r.ManifestFile)
		if err != nil {
			return err
		}
		sig, err := image.SignBlob(*key, manifest)
		if err != nil {
			return err
		}
		sigFile := strings.TrimSuffix(r.ManifestFile, ".json") + ".sig"
		if err := os.WriteFile(sigFile, sig, 0o644); err != nil {
			return err
		}
		if err := image.VerifyBlob(pub, manifest, sig); err != nil {
			return fmt.Errorf("%s: the signature does not verify with %s: %w", s.Ref, pub, err)
		}
		fmt.Printf("%s %s\n  archive  %s\n  sbom     %s\n  manifest %s\n  sig      %s\n", s.Ref, r.ManifestDigest, r.Archive, sbom, r.ManifestFile, sigFile)
	}
	return nil
}
