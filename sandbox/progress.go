package sandbox

import "context"

type progressKey struct{}

// WithProgress returns a context whose slow operations report what they
// wait for (a pod's phase and its last event, the plugin being launched)
// to f, so the operator sees why a step takes long. f must be safe for
// concurrent use and must not block.
func WithProgress(ctx context.Context, f func(msg string)) context.Context {
	return context.WithValue(ctx, progressKey{}, f)
}

// ReportProgress tells whoever runs the operation under ctx what it waits
// for now; without a WithProgress context it does nothing.
func ReportProgress(ctx context.Context, msg string) {
	if f, ok := ctx.Value(progressKey{}).(func(string)); ok && f != nil && msg != "" {
		f(msg)
	}
}

// RunningWaiter is a driver whose Start returns before the agent runs
// (a pod must be scheduled and its image pulled first). WaitRunning
// blocks until the agent runs, or returns why it never will, reporting
// what it waits for through ReportProgress.
type RunningWaiter interface {
	WaitRunning(ctx context.Context, name string) (Info, error)
}

// HasProgress says whether ctx carries a progress reporter, so a driver
// can skip the work of describing a wait nobody watches.
func HasProgress(ctx context.Context) bool {
	f, ok := ctx.Value(progressKey{}).(func(string))
	return ok && f != nil
}
