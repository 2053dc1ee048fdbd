package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"gopkg.in/yaml.v3"
)

// tabWriter is what table renderers write to.
type tabWriter = *tabwriter.Writer

// Render writes v as JSON or YAML, or calls table for the table format.
// Messages of the daemon's API print with their .proto field names
// (apiJSON).
func Render(w io.Writer, format string, v any, table func(tw *tabwriter.Writer)) error {
	if format == "json" || format == "yaml" {
		v = apiJSON(v)
	}
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		// Round-trip through JSON so yaml keys follow the json tags.
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		// UseNumber keeps integers beyond 2^53 (token counts) exact.
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var generic any
		if err := dec.Decode(&generic); err != nil {
			return err
		}
		generic = yamlNumbers(generic)
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		return enc.Encode(generic)
	case "table", "":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		table(tw)
		return tw.Flush()
	default:
		return fmt.Errorf("unknown output format %q: use -o table, -o json or -o yaml", format)
	}
}

// yamlNumbers turns the json.Numbers of a decoded document into int64 or
// float64, which yaml writes as numbers.
func yamlNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = yamlNumbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = yamlNumbers(e)
		}
	}
	return v
}
