package agentapi

import (
	"encoding/json"
	"strings"
)

// checkToolPaths is the gateway's net under tools plugins that write files
// (tools-files and any third-party plugin): before a destructive tool runs,
// every string argument whose name ends in "path" that lands inside the
// workspace is checked against the sandbox's protected paths and workspace
// mode, so `write_file {"path": ".git/config"}` is refused exactly as a
// direct write from the sandbox is. Paths outside the workspace are left
// to the plugin (a URL path of an HTTP tool is not a file). The plugin's
// own resolution still has to refuse symlinks (tools-files uses wsfs,
// which resolves without following any), since a lexical check alone
// cannot see them.
func (h *Handler) checkToolPaths(raw json.RawMessage) error {
	if h.ws == nil || len(raw) == 0 {
		return nil
	}
	var args map[string]any
	if json.Unmarshal(raw, &args) != nil {
		return nil // the plugin reports malformed arguments itself
	}
	for k, v := range args {
		s, ok := v.(string)
		if !ok || !strings.HasSuffix(strings.ToLower(k), "path") {
			continue
		}
		rel, err := h.ws.Rel(s)
		if err != nil {
			continue
		}
		if err := h.ws.CheckWritable(s, rel); err != nil {
			return err
		}
	}
	return nil
}
