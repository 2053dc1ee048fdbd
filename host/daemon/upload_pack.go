package daemon

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
)

// uploadVarDir holds var files that live outside the blueprint's directory.
const uploadVarDir = ".nemoclave-var-files"

var unsafeNameChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// PackUpload reads the blueprint at path (a file or a directory) for a
// daemon that cannot read this machine's files: the blueprint's whole
// directory (what file(), templatefile(), a workspace or a cassette may
// name), without .git directories, and the var files. It returns the
// upload and the var files' paths inside it. Symbolic links are followed
// only to files inside the directory; one that leads out, or to a
// directory, is refused; entries whose names start with ".." (a ConfigMap
// volume's internals) are left out. The bounds are MaxUploadFiles, MaxUploadFileBytes
// and MaxUploadBytes.
func PackUpload(path string, varFiles []string) (*pb.Upload, []string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, nil, fmt.Errorf("blueprint %s: %w", path, err)
	}
	top, entry := abs, "."
	if !st.IsDir() {
		top, entry = filepath.Dir(abs), filepath.Base(abs)
	}
	realTop, err := filepath.EvalSymlinks(top)
	if err != nil {
		return nil, nil, err
	}
	name := strings.Trim(unsafeNameChars.ReplaceAllString(filepath.Base(realTop), "-"), ".-_")
	if len(name) > 64 {
		name = name[:64]
	}
	if name == "" || !uploadNameRE.MatchString(name) {
		name = "blueprint"
	}
	p := &packer{u: &pb.Upload{Name: name, Entry: entry}, top: top}
	err = filepath.WalkDir(top, func(full string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(top, full)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir() && d.Name() == ".git":
			return filepath.SkipDir
		case strings.HasPrefix(d.Name(), ".."):
			// A ConfigMap or Secret volume's own entries (the ..data link
			// to the ..<timestamp> directory): its keys are links through
			// them, sent as the files they name.
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		case d.IsDir():
			return p.add(&pb.UploadFile{Path: rel, Mode: UploadDirMode | 0o755})
		case d.Type()&fs.ModeSymlink != 0:
			real, err := filepath.EvalSymlinks(full)
			if err != nil {
				return fmt.Errorf("%s: %w", full, err)
			}
			if r, err := filepath.Rel(realTop, real); err != nil || r == ".." || strings.HasPrefix(r, "../") {
				return fmt.Errorf("%s is a symbolic link to %s, outside the blueprint's directory: the daemon receives only the directory; copy the file in, or remove the link", full, real)
			}
			if fi, err := os.Stat(real); err == nil && fi.IsDir() {
				return fmt.Errorf("%s is a symbolic link to a directory, which is not uploaded: replace it with the directory, or remove it", full)
			}
			return p.addFile(rel, real)
		case d.Type().IsRegular():
			return p.addFile(rel, full)
		default:
			return fmt.Errorf("%s is not a regular file (a socket, device or pipe) and cannot be uploaded: remove it from the blueprint's directory", full)
		}
	})
	if err != nil {
		return nil, nil, err
	}
	var vfs []string
	for i, vf := range varFiles {
		a, err := filepath.Abs(vf)
		if err != nil {
			return nil, nil, err
		}
		if r, err := filepath.Rel(top, a); err == nil && r != ".." && !strings.HasPrefix(r, "../") && r != "." {
			r = filepath.ToSlash(r)
			if !p.seen[r] {
				return nil, nil, fmt.Errorf("--var-file %s: not a regular file of the blueprint's directory", vf)
			}
			vfs = append(vfs, r)
			continue
		}
		rel := uploadVarDir + "/" + strconv.Itoa(i) + "-" + filepath.Base(a)
		if err := p.addFile(rel, a); err != nil {
			return nil, nil, fmt.Errorf("--var-file %s: %w", vf, err)
		}
		vfs = append(vfs, rel)
	}
	return p.u, vfs, nil
}

type packer struct {
	u     *pb.Upload
	top   string
	total int
	seen  map[string]bool
}

func (p *packer) add(f *pb.UploadFile) error {
	if len(p.u.Files) >= MaxUploadFiles {
		return fmt.Errorf("%s holds more than %d files and directories, the bound of an upload to a remote daemon: run a directory holding only the blueprint and the files it reads", p.top, MaxUploadFiles)
	}
	p.total += len(f.Data) + len(f.Path)
	if p.total > MaxUploadBytes {
		return fmt.Errorf("%s is larger than %d bytes (8 MiB) with %s, the bound of an upload to a remote daemon: run a directory holding only the blueprint and the files it reads", p.top, MaxUploadBytes, f.Path)
	}
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	if f.Mode&UploadDirMode == 0 {
		p.seen[f.Path] = true
	}
	p.u.Files = append(p.u.Files, f)
	return nil
}

func (p *packer) addFile(rel, full string) error {
	f, err := os.Open(full)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return errors.New(full + " is not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxUploadFileBytes+1))
	if err != nil {
		return err
	}
	if len(data) > MaxUploadFileBytes {
		return fmt.Errorf("%s is larger than %d bytes (1 MiB), the bound of one file in an upload to a remote daemon: keep large files out of the blueprint's directory", full, MaxUploadFileBytes)
	}
	return p.add(&pb.UploadFile{Path: rel, Data: data, Mode: uint32(st.Mode().Perm())})
}
