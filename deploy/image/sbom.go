package image

import (
	"crypto/rand"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// SBOM is a CycloneDX 1.5 bill of materials (the fields nemoclave fills).
type SBOM struct {
	BOMFormat    string      `json:"bomFormat"`
	SpecVersion  string      `json:"specVersion"`
	SerialNumber string      `json:"serialNumber"`
	Version      int         `json:"version"`
	Metadata     sbomMeta    `json:"metadata"`
	Components   []Component `json:"components"`
}

type sbomMeta struct {
	Timestamp string    `json:"timestamp"`
	Tools     []tool    `json:"tools"`
	Component Component `json:"component"`
}

type tool struct {
	Name string `json:"name"`
}

// Component is one CycloneDX component.
type Component struct {
	Type    string `json:"type"`
	BOMRef  string `json:"bom-ref,omitempty"`
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	PURL    string `json:"purl,omitempty"`
	Hashes  []hash `json:"hashes,omitempty"`
}

type hash struct {
	Alg     string `json:"alg"`
	Content string `json:"content"`
}

// WriteSBOM writes <outDir>/<name>.cdx.json for the image s built as r:
// the image itself, each binary (with its SHA-256), the Go toolchain, and
// every Go module compiled into any binary, from its build information.
func WriteSBOM(s Spec, r Result, outDir string) (string, error) {
	comps := map[string]Component{}
	for _, b := range s.Binaries {
		data, err := os.ReadFile(b)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(data)
		bi, err := buildinfo.ReadFile(b)
		if err != nil {
			return "", fmt.Errorf("sbom: %s has no Go build information: %w", b, err)
		}
		name := filepath.Base(b)
		comps["app:"+name] = Component{Type: "application", BOMRef: "bin:" + name, Name: "/usr/local/bin/" + name,
			Version: bi.Main.Version, Hashes: []hash{{Alg: "SHA-256", Content: hex.EncodeToString(sum[:])}}}
		go_ := strings.TrimPrefix(bi.GoVersion, "go")
		comps["go"] = Component{Type: "library", BOMRef: "pkg:golang/stdlib@" + go_, Name: "stdlib", Version: go_, PURL: "pkg:golang/stdlib@" + go_}
		for _, d := range bi.Deps {
			m := d
			if d.Replace != nil && d.Replace.Version != "" {
				m = d.Replace
			}
			purl := "pkg:golang/" + m.Path + "@" + m.Version
			comps[purl] = Component{Type: "library", BOMRef: purl, Name: m.Path, Version: m.Version, PURL: purl}
		}
	}
	if s.CABundle != "" {
		data, err := os.ReadFile(s.CABundle)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(data)
		comps["ca"] = Component{Type: "file", BOMRef: "file:ca-certificates", Name: "/etc/ssl/certs/ca-certificates.crt",
			Hashes: []hash{{Alg: "SHA-256", Content: hex.EncodeToString(sum[:])}}}
	}
	keys := make([]string, 0, len(comps))
	for k := range comps {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	list := make([]Component, 0, len(keys))
	for _, k := range keys {
		list = append(list, comps[k])
	}
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", err
	}
	u[6], u[8] = u[6]&0x0f|0x40, u[8]&0x3f|0x80
	repo, tag, _ := strings.Cut(s.Ref[strings.LastIndex(s.Ref, "/")+1:], ":")
	bom := SBOM{
		BOMFormat: "CycloneDX", SpecVersion: "1.5", Version: 1,
		SerialNumber: fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:]),
		Metadata: sbomMeta{
			Timestamp: time.Now().UTC().Format(time.RFC3339),
			Tools:     []tool{{Name: "nemoclave-image"}},
			Component: Component{Type: "container", BOMRef: r.ManifestDigest, Name: repo, Version: tag,
				PURL: "pkg:oci/" + repo + "@" + strings.Replace(r.ManifestDigest, ":", "%3A", 1)},
		},
		Components: list,
	}
	b, err := json.MarshalIndent(bom, "", "  ")
	if err != nil {
		return "", err
	}
	out := filepath.Join(outDir, Name(s.Ref)+".cdx.json")
	return out, os.WriteFile(out, append(b, '\n'), 0o644)
}
