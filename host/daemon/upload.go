package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
)

// The bounds of an uploaded blueprint (RunRequest.upload). The CLI checks
// them before sending, with the file to blame; the daemon checks them
// again, because a caller need not be the CLI.
const (
	// MaxUploadBytes bounds the sum of the files' sizes and paths.
	MaxUploadBytes = 8 << 20
	// MaxUploadFileBytes bounds one file.
	MaxUploadFileBytes = 1 << 20
	// MaxUploadFiles bounds the number of entries (files and directories).
	MaxUploadFiles = 4096
	// maxUploadPath bounds one entry's path.
	maxUploadPath = 1024
	// uploadDirMode marks a directory in UploadFile.mode (S_IFDIR).
	UploadDirMode = 0o40000
	// maxRecvMsg is what the daemon's servers accept in one message: an
	// upload at its bound with room to spare, so that an upload a little
	// over it is refused by checkUpload, with its reason.
	maxRecvMsg = MaxUploadBytes + 4<<20
)

// uploadNameRE is what an upload's name may be: one path component.
var uploadNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// UploadsDir is where a home keeps uploaded blueprints.
func UploadsDir(home string) string { return filepath.Join(home, "uploads") }

// uploadMu serializes uploads: two runs of one caller's upload of one name
// replace the same directory.
var uploadMu sync.Mutex

// CallerUploadDir is the directory of subject's uploads: keyed by a hash
// of the subject, so two callers' uploads of one name never meet, and
// ownership (keyed on the blueprint's path) tells them apart.
func CallerUploadDir(home, subject string) string {
	sum := sha256.Sum256([]byte(subject))
	return filepath.Join(UploadsDir(home), hex.EncodeToString(sum[:8]))
}

// checkUpload refuses an upload that is malformed or too large, naming the
// entry to blame. It returns the upload's total size.
func checkUpload(u *pb.Upload) error {
	if !uploadNameRE.MatchString(u.Name) {
		return fmt.Errorf("upload name %q: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", u.Name)
	}
	if len(u.Files) > MaxUploadFiles {
		return fmt.Errorf("the upload holds %d files and directories, more than %d: run a directory holding only the blueprint and the files it reads", len(u.Files), MaxUploadFiles)
	}
	total := 0
	seen := map[string]bool{}
	entryIsFile := false
	for _, f := range u.Files {
		if err := checkUploadPath(f.Path); err != nil {
			return err
		}
		if seen[f.Path] {
			return fmt.Errorf("upload: %s is sent twice", f.Path)
		}
		seen[f.Path] = true
		if len(f.Data) > MaxUploadFileBytes {
			return fmt.Errorf("upload: %s is %d bytes, more than %d (1 MiB) per file: keep large files out of the blueprint's directory", f.Path, len(f.Data), MaxUploadFileBytes)
		}
		if f.Mode&UploadDirMode != 0 && len(f.Data) > 0 {
			return fmt.Errorf("upload: %s is a directory with data", f.Path)
		}
		if f.Path == u.Entry && f.Mode&UploadDirMode == 0 {
			entryIsFile = true
		}
		total += len(f.Data) + len(f.Path)
		if total > MaxUploadBytes {
			return fmt.Errorf("the upload is larger than %d bytes (8 MiB): run a directory holding only the blueprint and the files it reads", MaxUploadBytes)
		}
	}
	if u.Entry != "." {
		if err := checkUploadPath(u.Entry); err != nil {
			return fmt.Errorf("upload entry: %w", err)
		}
		if !entryIsFile {
			return fmt.Errorf("upload entry %s is not one of its files", u.Entry)
		}
	}
	return nil
}

// checkUploadPath refuses a path that is not a clean relative one.
func checkUploadPath(p string) error {
	switch {
	case p == "" || p == ".":
		return fmt.Errorf("upload: an entry has an empty path")
	case len(p) > maxUploadPath:
		return fmt.Errorf("upload: a path is longer than %d bytes", maxUploadPath)
	case strings.ContainsAny(p, "\x00\\"):
		return fmt.Errorf("upload: path %q holds a NUL or a backslash", p)
	case path.IsAbs(p):
		return fmt.Errorf("upload: path %s is absolute; paths are relative to the upload", p)
	case path.Clean(p) != p:
		return fmt.Errorf("upload: path %s is not clean (no ./, //, or trailing /)", p)
	case p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("upload: path %s leads out of the upload", p)
	}
	return nil
}

// storeUpload writes u for subject, replacing that caller's previous
// upload of the same name, and returns its directory. The files are
// written through os.Root into a fresh directory that is then renamed
// into place, so a half-written upload is never run.
func storeUpload(home, subject string, u *pb.Upload) (string, error) {
	if err := checkUpload(u); err != nil {
		return "", err
	}
	uploadMu.Lock()
	defer uploadMu.Unlock()
	base := CallerUploadDir(home, subject)
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", fmt.Errorf("upload: %w", err)
	}
	if err := os.Chmod(UploadsDir(home), 0o700); err != nil {
		return "", fmt.Errorf("upload: %w", err)
	}
	// Who the directory belongs to, for an admin looking at the home.
	if err := os.WriteFile(filepath.Join(base, "subject"), []byte(subject+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("upload: %w", err)
	}
	tmp, err := os.MkdirTemp(base, ".incoming-")
	if err != nil {
		return "", fmt.Errorf("upload: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := writeUploadFiles(tmp, u); err != nil {
		return "", err
	}
	dir := filepath.Join(base, u.Name)
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("upload: cannot replace the previous upload %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("upload: %w", err)
	}
	ok = true
	return dir, nil
}

// writeUploadFiles writes u's files into the empty directory tmp, through
// os.Root, so no entry can lead out of it.
func writeUploadFiles(tmp string, u *pb.Upload) error {
	// The upload is the workspace when the blueprint says workspace = ".":
	// readable by a sandbox that runs as another uid, like a workspace.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	defer root.Close()
	for _, f := range u.Files {
		if f.Mode&UploadDirMode != 0 {
			if err := root.MkdirAll(f.Path, 0o755); err != nil {
				return fmt.Errorf("upload %s: %w", f.Path, err)
			}
			continue
		}
		if d := path.Dir(f.Path); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("upload %s: %w", f.Path, err)
			}
		}
		perm := os.FileMode(0o644)
		if f.Mode&0o100 != 0 {
			perm = 0o755
		}
		if err := root.WriteFile(f.Path, f.Data, perm); err != nil {
			return fmt.Errorf("upload %s: %w", f.Path, err)
		}
	}
	return nil
}

// WriteUpload writes u into dir, replacing what dir held, as storeUpload
// does for a caller: checked, written through os.Root into a fresh
// directory beside dir, then renamed into place. A replica writes the
// stored blueprint of a hand run there to serve its sandboxes.
func WriteUpload(dir string, u *pb.Upload) error {
	if err := checkUpload(u); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".incoming-")
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	if err := writeUploadFiles(tmp, u); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("upload: cannot replace %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("upload: %w", err)
	}
	return nil
}

// resolveUpload stores a run's upload and turns the request's paths into
// paths inside it: the blueprint (its entry) and the var files, which the
// CLI sends relative to the upload. Root confines the evaluation to it.
func resolveUpload(home, subject string, r *pb.RunRequest, req *RunRequest) error {
	u := r.Upload
	if r.Path != "" {
		return fmt.Errorf("a run sends either a blueprint path or an upload, not both")
	}
	for _, vf := range r.VarFiles {
		if err := checkUploadPath(vf); err != nil {
			return fmt.Errorf("--var-file of an upload: %w", err)
		}
	}
	dir, err := storeUpload(home, subject, u)
	if err != nil {
		return err
	}
	req.Root = dir
	req.Path = filepath.Join(dir, filepath.FromSlash(u.Entry))
	req.VarFiles = nil
	for _, vf := range r.VarFiles {
		req.VarFiles = append(req.VarFiles, filepath.Join(dir, filepath.FromSlash(vf)))
	}
	return nil
}

// uploadInUse refuses, before anything is replaced, a re-run of an upload
// whose sandbox still runs, unless the run replaces it: storing the new
// upload first would pull the files (and a workspace inside them) from
// under the running agent even though the run is then refused.
func (s *Server) uploadInUse(ctx context.Context, subject string, r *pb.RunRequest) error {
	if r.Replace || r.Upload == nil || !uploadNameRE.MatchString(r.Upload.Name) {
		return nil
	}
	dir := filepath.Join(CallerUploadDir(s.home, subject), r.Upload.Name)
	list, err := s.backend.ListSandboxes(ctx)
	if err != nil {
		return nil // the run's own check decides
	}
	for _, sb := range list {
		if sb.State != "running" && sb.State != "pending" {
			continue
		}
		if sb.Blueprint == dir || strings.HasPrefix(sb.Blueprint, dir+string(filepath.Separator)) {
			return fmt.Errorf("sandbox %q of this upload (%s) is running; replace it with `nemoclave run <blueprint> --replace`, or stop it with `nemoclave sandbox delete %s`", sb.Name, r.Upload.Name, sb.Name)
		}
	}
	return nil
}
