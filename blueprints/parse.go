package blueprints

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Blueprint files are *.hcl (native syntax) and *.hcl.json (JSON syntax).
const (
	extHCL  = ".hcl"
	extJSON = ".hcl.json"
)

// IsBlueprintFile reports whether name is a file the loader reads from a
// blueprint directory.
// The project lock (.nemoclave.lock.hcl, written by `nemoclave init`) and
// other dot-files beside a blueprint are not part of it.
func IsBlueprintFile(name string) bool {
	if strings.HasPrefix(filepath.Base(name), ".") {
		return false
	}
	return strings.HasSuffix(name, extHCL) || strings.HasSuffix(name, extJSON)
}

// blueprintFiles lists the files that make up the blueprint at path: the
// file itself, or every blueprint file directly inside a directory, sorted
// so diagnostics come out in a stable order. The directory is where
// relative paths (file(), workspace, cassettes) are resolved.
func blueprintFiles(path string) (dir string, files []string, diags hcl.Diagnostics) {
	st, err := os.Stat(path)
	if err != nil {
		return "", nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read blueprint",
			Detail:   fmt.Sprintf("%v. Give a blueprint file (*.hcl, *.hcl.json) or a directory holding them.", err),
		}}
	}
	if !st.IsDir() {
		if !IsBlueprintFile(path) {
			return "", nil, hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "Not a blueprint file",
				Detail:   fmt.Sprintf("%s does not end in .hcl or .hcl.json; rename it, or pass its directory.", path),
			}}
		}
		return filepath.Dir(path), []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return "", nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read blueprint directory", Detail: err.Error()}}
	}
	for _, e := range entries {
		if !e.IsDir() && IsBlueprintFile(e.Name()) {
			files = append(files, filepath.Join(path, e.Name()))
		}
	}
	sort.Strings(files)
	if len(files) == 0 {
		return "", nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Empty blueprint directory",
			Detail:   fmt.Sprintf("%s holds no *.hcl or *.hcl.json files.", path),
		}}
	}
	return path, files, nil
}

// parseSource parses one file's bytes with the syntax its name implies.
func (l *Loader) parseSource(name string, src []byte) (*hcl.File, hcl.Diagnostics) {
	if strings.HasSuffix(name, extJSON) {
		return l.parser.ParseJSON(src, name)
	}
	return l.parser.ParseHCL(src, name)
}
