package plugin

import (
	"context"
	"os"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/nemoclave/nemoclave/sdk/internal/callctx"
)

// servedLogger is the logger Serve runs with.
var servedLogger atomic.Pointer[hclog.Logger]

// stderrLogger is Serve's default: hclog JSON on stderr, at the level the
// host asks for, the format the host reads.
func stderrLogger(name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Output:     os.Stderr,
		JSONFormat: true,
		Level:      hclog.LevelFromString(envOr("NEMOCLAVE_PLUGIN_LOG_LEVEL", "info")),
	})
}

// Logger returns the plugin's logger for the call whose context is ctx:
// Serve's logger (hclog JSON on stderr unless WithLogger replaced it) with
// a "sandbox" field naming the calling sandbox when the call names one
// (tools calls do, in their CallContext). The host writes a line with that
// field to the caller's plugin log alone, so the sandboxes sharing a
// plugin process do not see each other's calls; lines without it go to
// every sandbox using the process. Outside a call (Configure, background
// work) pass context.Background() for an untagged logger.
func Logger(ctx context.Context) hclog.Logger {
	var l hclog.Logger
	if p := servedLogger.Load(); p != nil {
		l = *p
	} else {
		// Published once and never written again: another call may
		// read it as soon as the swap succeeds.
		fresh := stderrLogger("")
		servedLogger.CompareAndSwap(nil, &fresh)
		l = *servedLogger.Load()
	}
	if sb := callctx.Sandbox(ctx); sb != "" {
		return l.With("sandbox", sb)
	}
	return l
}
