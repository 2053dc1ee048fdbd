package runtime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

func newJSONLogger(w io.Writer, component, sandbox string) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, nil)).With("component", component, "sandbox", sandbox)
}

func (r *Runtime) redactErr(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(r.opts.Redact(err.Error()))
}

// followFile copies what open returns to w; with follow it keeps reading
// new data until ctx ends, and then drains what was written up to that
// moment before returning. tail > 0 starts at the last tail lines.
func followFile(ctx context.Context, open func() (io.ReadCloser, error), w io.Writer, follow bool, tail int) error {
	return followFileEvery(ctx, open, w, follow, tail, false, 100*time.Millisecond)
}

// followFileEvery is followFile polling every poll. rawTail starts at the
// last tail lines byte for byte (an unfinished last line, such as a
// chat's prompt, stays unfinished) rather than as whole lines.
func followFileEvery(ctx context.Context, open func() (io.ReadCloser, error), w io.Writer, follow bool, tail int, rawTail bool, poll time.Duration) error {
	rc, err := open()
	if err != nil {
		return err
	}
	defer func() { rc.Close() }()
	if tail > 0 {
		all, err := io.ReadAll(rc)
		if err != nil {
			return err
		}
		last := lastLines(all, tail)
		if rawTail {
			last = lastRawLines(all, tail)
		}
		if _, err := w.Write(last); err != nil {
			return err
		}
	}
	buf := make([]byte, 32*1024)
	for {
		n, err := rc.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			if !follow {
				return nil
			}
			// The sandbox rotates a full log to agent.log.1: once the old
			// file is read to its end, carry on in the new one.
			if next := rotated(rc, open); next != nil {
				rc.Close()
				rc = next
				continue
			}
			select {
			case <-ctx.Done():
				follow = false // one more pass to the end, then stop
			case <-time.After(poll):
			}
			continue
		}
		if err != nil {
			return err
		}
	}
}

// lastRawLines is the end of b from the start of its n-th last line,
// unchanged.
func lastRawLines(b []byte, n int) []byte {
	idx := len(b)
	if idx > 0 && b[idx-1] == '\n' {
		idx--
	}
	for i := 0; i < n; i++ {
		j := bytes.LastIndexByte(b[:idx], '\n')
		if j < 0 {
			return b
		}
		idx = j
	}
	return b[idx+1:]
}

func lastLines(b []byte, n int) []byte {
	b = bytes.TrimRight(b, "\n")
	idx := len(b)
	for i := 0; i < n; i++ {
		j := bytes.LastIndexByte(b[:idx], '\n')
		if j < 0 {
			return append(b, '\n')
		}
		idx = j
	}
	return append(b[idx+1:], '\n')
}

// grepJSONLines keeps the JSON lines of r whose "sandbox" field is sb.
func grepJSONLines(r io.Reader, sb string, w io.Writer) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		var v struct {
			Sandbox string `json:"sandbox"`
		}
		if json.Unmarshal(sc.Bytes(), &v) == nil && v.Sandbox == sb {
			if _, err := w.Write(append(sc.Bytes(), '\n')); err != nil {
				return err
			}
		}
	}
	return sc.Err()
}

func openOrEmpty(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	return f, err
}

// rotated opens the log again and returns it when it is another file than
// cur (the log was rotated); nil otherwise.
func rotated(cur io.ReadCloser, open func() (io.ReadCloser, error)) io.ReadCloser {
	cf, ok := cur.(*os.File)
	if !ok {
		return nil
	}
	cst, err := cf.Stat()
	if err != nil {
		return nil
	}
	next, err := open()
	if err != nil {
		return nil
	}
	if nf, ok := next.(*os.File); ok {
		if nst, err := nf.Stat(); err == nil && !os.SameFile(cst, nst) {
			return next
		}
	}
	next.Close()
	return nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// presetDirs is $NEMOCLAVE_HOME/presets when it exists, as for validate.
func presetDirs(home string) []string {
	d := filepath.Join(home, "presets")
	if st, err := os.Stat(d); err == nil && st.IsDir() {
		return []string{d}
	}
	return nil
}
