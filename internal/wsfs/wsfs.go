package wsfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// SandboxPath is where the agent sees the workspace.
const SandboxPath = "/workspace"

// DefaultTimeout bounds one operation when the caller's context has no
// earlier deadline.
const DefaultTimeout = 30 * time.Second

// DefaultConcurrency is how many operations on one workspace run at once.
const DefaultConcurrency = 8

const (
	readResolve  = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS
	writeResolve = readResolve | unix.RESOLVE_NO_SYMLINKS
)

// Options configure a Dir.
type Options struct {
	// Protected are workspace-relative paths that may not be written, nor
	// anything below them (policy.Filesystem.EffectiveProtected).
	Protected []string
	// ReadOnly refuses every write (the policy does not grant /workspace
	// read_write).
	ReadOnly bool
	// Concurrency bounds simultaneous operations; 0 means
	// DefaultConcurrency.
	Concurrency int
}

// Dir is one workspace as seen from the host.
type Dir struct {
	root string
	opts Options
	sem  chan struct{}
}

// New returns the workspace rooted at the host directory root.
func New(root string, opts Options) *Dir {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	clean := make([]string, 0, len(opts.Protected))
	for _, p := range opts.Protected {
		clean = append(clean, strings.TrimPrefix(path.Clean("/"+strings.TrimPrefix(p, SandboxPath+"/")), "/"))
	}
	opts.Protected = clean
	return &Dir{root: filepath.Clean(root), opts: opts, sem: make(chan struct{}, opts.Concurrency)}
}

// Root is the host directory.
func (d *Dir) Root() string { return d.root }

// Rel maps a path the agent gave ("x", "./x", "/workspace/x", or the host
// path of the workspace) onto a clean slash-separated path relative to the
// root ("." for the root itself). Lexical escapes are refused here; the
// kernel refuses symlinks that lead out when the path is opened.
func (d *Dir) Rel(p string) (string, error) {
	if p == "" {
		return ".", nil
	}
	if path.IsAbs(p) {
		c := path.Clean(p)
		for _, base := range []string{SandboxPath, filepath.ToSlash(d.root)} {
			if c == base {
				return ".", nil
			}
			if r, ok := strings.CutPrefix(c, base+"/"); ok {
				return r, nil
			}
		}
		return "", &Error{Path: p, Reason: "is outside the workspace; use a path relative to " + SandboxPath}
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", &Error{Path: p, Reason: "climbs out of the workspace; only files inside it are reachable"}
	}
	return c, nil
}

// ProtectedBy returns the protected entry covering rel, or "".
func (d *Dir) ProtectedBy(rel string) string {
	for _, p := range d.opts.Protected {
		if rel == p || strings.HasPrefix(rel, p+"/") {
			return p
		}
	}
	return ""
}

// Error is a refusal the agent can act on. It never names host paths.
type Error struct {
	Path   string
	Reason string
	Err    error
}

func (e *Error) Error() string { return e.Path + ": " + e.Reason }
func (e *Error) Unwrap() error { return e.Err }

// ErrProtected is wrapped by refusals of protected paths.
var ErrProtected = errors.New("read-only file system")

// ErrNotRegular is wrapped by refusals of FIFOs, sockets and devices.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is wrapped when a file exceeds the caller's bound.
var ErrTooLarge = errors.New("file too large")

// acquire takes an operation slot and applies the default deadline. The
// returned function releases both.
func (d *Dir) acquire(ctx context.Context, p string) (context.Context, func(), error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	select {
	case d.sem <- struct{}{}:
		return ctx, func() { <-d.sem; cancel() }, nil
	case <-ctx.Done():
		cancel()
		return nil, nil, &Error{Path: p, Reason: "the workspace is busy with other file operations; try again", Err: ctx.Err()}
	}
}

func (d *Dir) openRoot() (int, error) {
	fd, err := unix.Open(d.root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open workspace: %w", err)
	}
	return fd, nil
}

func openat2(dirfd int, rel string, how *unix.OpenHow) (int, error) {
	how.Flags |= unix.O_CLOEXEC
	for {
		fd, err := unix.Openat2(dirfd, rel, how)
		if !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.EAGAIN) {
			return fd, err
		}
	}
}

// explain turns an errno from a confined open into a refusal.
func explain(p string, err error) error {
	switch {
	case errors.Is(err, unix.EXDEV):
		return &Error{Path: p, Reason: "resolves outside the workspace (a symlink or \"..\" leads out); only files inside the workspace are reachable", Err: err}
	case errors.Is(err, unix.ELOOP):
		return &Error{Path: p, Reason: "a symlink is in the way: writes never follow symlinks, so none can land outside the workspace; write to the link's real path", Err: err}
	case errors.Is(err, unix.ENOENT):
		return &Error{Path: p, Reason: "no such file or directory", Err: fs.ErrNotExist}
	case errors.Is(err, unix.ENXIO):
		return &Error{Path: p, Reason: "is a FIFO or socket; only regular files can be read or written", Err: ErrNotRegular}
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return &Error{Path: p, Reason: "permission denied", Err: fs.ErrPermission}
	case errors.Is(err, unix.EISDIR):
		return &Error{Path: p, Reason: "is a directory", Err: err}
	case errors.Is(err, unix.ENOTDIR):
		return &Error{Path: p, Reason: "a path component is not a directory", Err: err}
	case errors.Is(err, unix.ENOSPC), errors.Is(err, unix.EDQUOT):
		return &Error{Path: p, Reason: "the workspace is full (its size limit is reached); delete files or raise resources.workspace_size in the blueprint", Err: err}
	}
	return &Error{Path: p, Reason: err.Error(), Err: err}
}

func kind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "a device"
	case unix.S_IFDIR:
		return "a directory"
	}
	return "not a regular file"
}

// File is an open regular file of the workspace. Close releases it and
// its operation slot.
type File struct {
	*os.File
	ctx     context.Context
	release func()
	Size    int64
}

// Read reads from the file, failing once the operation's deadline passed.
func (f *File) Read(b []byte) (int, error) {
	if err := f.ctx.Err(); err != nil {
		return 0, fmt.Errorf("%s: file operation stopped: %w", f.Name(), err)
	}
	return f.File.Read(b)
}

// Close closes the descriptor and frees the slot.
func (f *File) Close() error {
	err := f.File.Close()
	if f.release != nil {
		f.release()
		f.release = nil
	}
	return err
}

// Open opens a regular file for reading. Directories are refused with an
// error wrapping fs.ErrInvalid; FIFOs, sockets and devices with
// ErrNotRegular, before any read.
func (d *Dir) Open(ctx context.Context, p string) (*File, error) {
	rel, err := d.Rel(p)
	if err != nil {
		return nil, err
	}
	ctx, release, err := d.acquire(ctx, p)
	if err != nil {
		return nil, err
	}
	f, size, err := d.openRead(p, rel)
	if err != nil {
		release()
		return nil, err
	}
	return &File{File: f, ctx: ctx, release: release, Size: size}, nil
}

func (d *Dir) openRead(p, rel string) (*os.File, int64, error) {
	root, err := d.openRoot()
	if err != nil {
		return nil, 0, err
	}
	defer unix.Close(root)
	fd, err := openat2(root, rel, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY, Resolve: readResolve})
	if err != nil {
		return nil, 0, explain(p, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, 0, explain(p, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		unix.Close(fd)
		return nil, 0, &Error{Path: p, Reason: "is a directory", Err: fs.ErrInvalid}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, 0, &Error{Path: p, Reason: "is " + kind(st.Mode) + "; only regular files can be read", Err: ErrNotRegular}
	}
	return os.NewFile(uintptr(fd), rel), st.Size, nil
}

// ReadFile reads a whole regular file of at most max bytes.
func (d *Dir) ReadFile(ctx context.Context, p string, max int64) ([]byte, error) {
	f, err := d.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if f.Size > max {
		return nil, &Error{Path: p, Reason: fmt.Sprintf("is %d bytes, larger than the %d-byte limit", f.Size, max), Err: ErrTooLarge}
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, &Error{Path: p, Reason: err.Error(), Err: err}
	}
	if int64(len(b)) > max {
		return nil, &Error{Path: p, Reason: fmt.Sprintf("grew past the %d-byte limit while being read", max), Err: ErrTooLarge}
	}
	return b, nil
}

// WriteOptions say how WriteFile writes.
type WriteOptions struct {
	Append bool
	// NoMkdir refuses a missing parent directory instead of creating it.
	NoMkdir bool
}

// WriteFile writes data to a regular file, creating it (mode 0644) and
// its parents. It refuses, exactly as the sandbox does for a direct write,
// a read-only workspace and protected paths; and it refuses symlinks
// anywhere on the path and existing non-regular files. It returns the
// clean workspace-relative path written.
func (d *Dir) WriteFile(ctx context.Context, p string, data []byte, o WriteOptions) (string, error) {
	rel, err := d.Rel(p)
	if err != nil {
		return "", err
	}
	if rel == "." {
		return "", &Error{Path: p, Reason: "names the workspace itself; give a file name", Err: fs.ErrInvalid}
	}
	if err := d.CheckWritable(p, rel); err != nil {
		return "", err
	}
	ctx, release, err := d.acquire(ctx, p)
	if err != nil {
		return "", err
	}
	defer release()
	root, err := d.openRoot()
	if err != nil {
		return "", err
	}
	defer unix.Close(root)
	parent, err := d.walkDirs(root, p, path.Dir(rel), !o.NoMkdir)
	if err != nil {
		return "", err
	}
	defer unix.Close(parent)
	flags := uint64(unix.O_WRONLY | unix.O_CREAT | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_NOFOLLOW)
	if o.Append {
		flags |= unix.O_APPEND
	}
	fd, err := openat2(parent, path.Base(rel), &unix.OpenHow{Flags: flags, Mode: 0o644, Resolve: writeResolve})
	if err != nil {
		return "", explain(p, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", explain(p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return "", &Error{Path: p, Reason: "is " + kind(st.Mode) + "; only regular files can be written", Err: ErrNotRegular}
	}
	if !o.Append {
		if err := unix.Ftruncate(fd, 0); err != nil {
			return "", explain(p, err)
		}
	}
	for len(data) > 0 {
		if err := ctx.Err(); err != nil {
			return "", &Error{Path: p, Reason: "write stopped: " + err.Error(), Err: err}
		}
		chunk := data[:min(len(data), 1<<20)]
		n, err := f.Write(chunk)
		if err != nil {
			return "", explain(p, err)
		}
		data = data[n:]
	}
	if err := f.Close(); err != nil {
		return "", explain(p, err)
	}
	return rel, nil
}

// CheckWritable refuses writes the sandbox would refuse: a read-only
// workspace or a protected path. rel must come from Rel.
func (d *Dir) CheckWritable(p, rel string) error {
	if d.opts.ReadOnly {
		return &Error{Path: p, Reason: "read-only file system: the sandbox policy does not grant /workspace read_write", Err: ErrProtected}
	}
	if prot := d.ProtectedBy(rel); prot != "" {
		return &Error{Path: p, Reason: fmt.Sprintf("read-only file system: %s is protected by the sandbox policy, so the agent cannot write it (directly or through a tool)", prot), Err: ErrProtected}
	}
	return nil
}

// walkDirs opens dir (workspace-relative) one component at a time without
// following any symlink, creating missing components when mkdir is set.
func (d *Dir) walkDirs(root int, p, dir string, mkdir bool) (int, error) {
	cur, err := unix.Dup(root)
	if err != nil {
		return -1, err
	}
	if dir == "." {
		return cur, nil
	}
	for _, name := range strings.Split(dir, "/") {
		next, err := openat2(cur, name, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY, Resolve: writeResolve})
		if errors.Is(err, unix.ENOENT) && mkdir {
			if err := unix.Mkdirat(cur, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(cur)
				return -1, explain(p, err)
			}
			next, err = openat2(cur, name, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY, Resolve: writeResolve})
		}
		unix.Close(cur)
		if err != nil {
			return -1, explain(p, err)
		}
		cur = next
	}
	return cur, nil
}
