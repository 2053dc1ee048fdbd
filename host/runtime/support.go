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
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/nemoclave/nemoclave/blueprints"
	"github.com/nemoclave/nemoclave/host/plugins"
	"github.com/nemoclave/nemoclave/sdk/plugin"
	"github.com/nemoclave/nemoclave/sdk/schema"
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
// new data until ctx ends. tail > 0 starts at the last tail lines.
func followFile(ctx context.Context, open func() (io.ReadCloser, error), w io.Writer, follow bool, tail int) error {
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	if tail > 0 {
		all, err := io.ReadAll(rc)
		if err != nil {
			return err
		}
		if _, err := w.Write(lastLines(all, tail)); err != nil {
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
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return err
		}
	}
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

// pluginSchemas asks the plugins themselves for schemas and validation,
// so a third-party plugin's config is checked by its own rules.
type pluginSchemas struct{ m *plugins.Manager }

// PluginSchemaSource is the blueprints.SchemaSource backed by real plugins.
func PluginSchemaSource(m *plugins.Manager) blueprints.SchemaSource { return pluginSchemas{m} }

func (p pluginSchemas) source(source string) string {
	if source == "mcp" {
		return "builtin/tools-mcp"
	}
	return source
}

func (p pluginSchemas) ConfigSchema(ctx context.Context, kind, source string) (*schema.Schema, error) {
	l, _, err := p.m.Client(ctx, p.source(source))
	if err != nil {
		return nil, err
	}
	return l.Schema(ctx)
}

func (p pluginSchemas) ValidateConfig(ctx context.Context, kind, source string, config json.RawMessage) ([]blueprints.ConfigDiagnostic, error) {
	l, _, err := p.m.Client(ctx, p.source(source))
	if err != nil {
		return nil, err
	}
	ds, err := l.ValidateConfig(ctx, config)
	if err != nil {
		return nil, err
	}
	out := make([]blueprints.ConfigDiagnostic, 0, len(ds))
	for _, d := range ds {
		out = append(out, blueprints.ConfigDiagnostic{Severity: severity(d.Severity), Summary: d.Summary, Detail: d.Detail, Path: d.Path})
	}
	return out, nil
}

func severity(s plugin.Severity) hcl.DiagnosticSeverity {
	if s == plugin.SeverityWarning {
		return hcl.DiagWarning
	}
	return hcl.DiagError
}
