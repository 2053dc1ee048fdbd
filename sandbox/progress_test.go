package sandbox

import (
	"context"
	"testing"
)

func TestReportProgress(t *testing.T) {
	// Without a reporter nothing happens (and nothing panics).
	ReportProgress(context.Background(), "ignored")

	var got []string
	ctx := WithProgress(context.Background(), func(m string) { got = append(got, m) })
	ReportProgress(ctx, "pod Pending")
	ReportProgress(ctx, "") // an empty message says nothing
	ReportProgress(context.WithoutCancel(ctx), "pod Running")
	if len(got) != 2 || got[0] != "pod Pending" || got[1] != "pod Running" {
		t.Fatalf("reported %q, want [pod Pending pod Running]", got)
	}
}
