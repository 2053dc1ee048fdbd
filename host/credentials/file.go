package credentials

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// FileName is the credentials file inside $NEMOCLAVE_HOME.
const FileName = "credentials.json"

// File is the credentials.json backend:
//
//	{"version": 1, "credentials": {"NVIDIA_API_KEY": {"value": "nvapi-…", "created_at": "2026-…"}}}
//
// The file must be mode 0600 (or stricter): a group- or world-readable
// file is refused, with the chmod that fixes it. Writes replace the file
// atomically and keep it 0600.
type File struct {
	Path string
	mu   sync.Mutex
}

// NewFile returns the backend for home/credentials.json.
func NewFile(home string) *File { return &File{Path: filepath.Join(home, FileName)} }

type fileFormat struct {
	Version     int                  `json:"version"`
	Credentials map[string]fileEntry `json:"credentials"`
}

type fileEntry struct {
	Value     string    `json:"value"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// Name is "file".
func (f *File) Name() string { return "file" }

// PermissionError is returned for a credentials file others can read.
type PermissionError struct {
	Path string
	Mode fs.FileMode
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("credentials file %s has mode %04o, readable by group or others; nemoclave refuses to use it: fix it with: chmod 600 %s", e.Path, e.Mode.Perm(), e.Path)
}

func (f *File) load() (fileFormat, error) {
	ff := fileFormat{Version: 1, Credentials: map[string]fileEntry{}}
	fh, err := os.Open(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return ff, nil
	}
	if err != nil {
		return ff, fmt.Errorf("open credentials file: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return ff, fmt.Errorf("stat credentials file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return ff, &PermissionError{Path: f.Path, Mode: st.Mode()}
	}
	if err := json.NewDecoder(fh).Decode(&ff); err != nil {
		// The decoder's message can quote file content; do not include it.
		return ff, fmt.Errorf("credentials file %s is not valid JSON of the form {\"version\":1,\"credentials\":{\"NAME\":{\"value\":\"...\"}}}; fix or remove it", f.Path)
	}
	if ff.Credentials == nil {
		ff.Credentials = map[string]fileEntry{}
	}
	return ff, nil
}

func (f *File) save(ff fileFormat) error {
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	b, err := json.MarshalIndent(ff, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".credentials-*.json")
	if err != nil {
		return fmt.Errorf("write credentials file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write credentials file: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write credentials file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write credentials file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write credentials file: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return fmt.Errorf("write credentials file: %w", err)
	}
	return nil
}

// Get reads name from the file.
func (f *File) Get(_ context.Context, name string) (Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ff, err := f.load()
	if err != nil {
		return Secret{}, err
	}
	e, ok := ff.Credentials[name]
	if !ok {
		return Secret{}, fmt.Errorf("%w: %q is not in %s", ErrNotFound, name, f.Path)
	}
	return NewSecret(e.Value), nil
}

// List names the file's credentials.
func (f *File) List(context.Context) ([]Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ff, err := f.load()
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(ff.Credentials))
	for name, e := range ff.Credentials {
		out = append(out, Info{Name: name, Backend: "file", CreatedAt: e.CreatedAt})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Set stores name, replacing any value.
func (f *File) Set(_ context.Context, name string, value Secret) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if value.Empty() {
		return fmt.Errorf("credential %q: the value is empty", name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ff, err := f.load()
	if err != nil {
		return err
	}
	ff.Credentials[name] = fileEntry{Value: value.Reveal(), CreatedAt: time.Now().UTC().Truncate(time.Second)}
	return f.save(ff)
}

// Delete removes name.
func (f *File) Delete(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ff, err := f.load()
	if err != nil {
		return err
	}
	if _, ok := ff.Credentials[name]; !ok {
		return fmt.Errorf("%w: %q is not in %s", ErrNotFound, name, f.Path)
	}
	delete(ff.Credentials, name)
	return f.save(ff)
}
