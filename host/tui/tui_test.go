package tui

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
)

type fakeSource struct {
	mu       sync.Mutex
	apprs    []*pb.Approval
	answered []string
	// tokens is the sandbox's usage today, grown by step at each refresh.
	tokens, step int64
}

func (f *fakeSource) Sandboxes(context.Context) ([]*pb.Sandbox, error) {
	return []*pb.Sandbox{{Name: "quickstart", Agent: "assistant", Driver: "local", State: "running", Policy: "qs", PolicyRevision: 2}}, nil
}
func (f *fakeSource) Logs(_ context.Context, sb string, _ int) (string, error) {
	return "hello from " + sb + "\n", nil
}
func (f *fakeSource) Approvals(context.Context) ([]*pb.Approval, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.apprs, nil
}
func (f *fakeSource) Answer(_ context.Context, id string, allow bool, scope string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answered = append(f.answered, id+":"+scope)
	f.apprs = nil
	return nil
}
func (f *fakeSource) Inference(context.Context) ([]*pb.SandboxInference, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens += f.step
	return []*pb.SandboxInference{{Sandbox: "quickstart", Default: "default",
		Routes:    []*pb.Route{{Alias: "default", Provider: "plugin.llm.replay", Model: "replay-1", Fallback: []string{"backup"}}},
		Providers: []*pb.ProviderHealth{{Provider: "plugin.llm.replay", State: "closed"}},
		Usage:     &pb.BudgetStatus{TokensToday: f.tokens, TokensMonth: f.tokens + 1000, Budget: &pb.Budget{TokensPerDay: 50000}}}}, nil
}

// drive runs a command and feeds its message back, as the runtime would.
func drive(t *testing.T, m tea.Model, cmd tea.Cmd) tea.Model {
	t.Helper()
	if cmd == nil {
		return m
	}
	msg := cmd()
	if _, ok := msg.(tickMsg); ok {
		return m
	}
	m, _ = m.Update(msg)
	return m
}

func TestDashboardShowsAndAnswers(t *testing.T) {
	t.Parallel()
	src := &fakeSource{apprs: []*pb.Approval{{Id: "ab12", Sandbox: "quickstart", Host: "example.com", Port: 443, Requested: timestamppb.Now(), Expires: timestamppb.New(time.Now().Add(time.Minute))}}}
	var m tea.Model = New(src, time.Hour)
	m = drive(t, m, m.Init())
	if v := m.View(); !strings.Contains(v, "quickstart") || !strings.Contains(v, "Approvals (1)") {
		t.Fatalf("view:\n%s", v)
	}
	m, _ = m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("2")})
	if v := m.View(); !strings.Contains(v, "hello from quickstart") {
		t.Fatalf("logs tab:\n%s", v)
	}
	m, _ = m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("3")})
	v := m.View()
	if !strings.Contains(v, "example.com:443") {
		t.Fatalf("approvals tab:\n%s", v)
	}
	// The approvals are a table with column headings above the values.
	head, row := lineWith(v, "DESTINATION"), lineWith(v, "example.com:443")
	for _, col := range []string{"ID", "SANDBOX", "DESTINATION", "WAITING", "EXPIRES IN"} {
		if !strings.Contains(head, col) {
			t.Errorf("approvals heading %q lacks %s", head, col)
		}
	}
	if strings.Index(head, "DESTINATION") != strings.Index(row, "example.com:443") {
		t.Errorf("the destination is not under its heading:\n%s\n%s", head, row)
	}
	var cmd tea.Cmd
	m, cmd = m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("s")})
	m = drive(t, m, cmd) // answered → refresh command
	if len(src.answered) != 1 || src.answered[0] != "ab12:sandbox" {
		t.Fatalf("answered = %v", src.answered)
	}
	if v := m.View(); !strings.Contains(v, "approved (sandbox) example.com:443") {
		t.Fatalf("status line missing:\n%s", v)
	}
}

// lineWith is the first line of v containing s, without styling.
func lineWith(v, s string) string {
	for _, l := range strings.Split(v, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// The inference tab is a table of routes, provider circuits and usage
// against the budget, and a chart of the tokens used per refresh.
func TestDashboardInferenceTableAndChart(t *testing.T) {
	t.Parallel()
	src := &fakeSource{tokens: 100, step: 0}
	var m tea.Model = New(src, 2*time.Second)
	m, _ = m.Update(tea.WindowSizeMsg{Width: 100, Height: 40})
	m = drive(t, m, m.Init())
	m, _ = m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("4")})
	v := m.View()
	for _, want := range []string{"ALIAS", "PROVIDER", "MODEL", "FALLBACK", "default (default)", "replay-1", "backup",
		"CIRCUIT", "closed", "USAGE", "TODAY", "THIS MONTH", "100 of 50000", "1100", "the chart fills in"} {
		if !strings.Contains(v, want) {
			t.Errorf("inference tab lacks %q:\n%s", want, v)
		}
	}
	if strings.Contains(v, "plugin.llm.") || strings.Contains(v, "{") {
		t.Errorf("inference tab shows raw names or JSON:\n%s", v)
	}
	if strings.Index(lineWith(v, "ALIAS"), "MODEL") != strings.Index(lineWith(v, "replay-1"), "replay-1") {
		t.Errorf("the model is not under its heading:\n%s", v)
	}
	// Three refreshes: 40, then 0, then 80 tokens used.
	for _, step := range []int64{40, 0, 80} {
		src.mu.Lock()
		src.step = step
		src.mu.Unlock()
		m = drive(t, m, m.(Model).refresh())
	}
	v = m.View()
	t.Logf("inference tab:\n%s", v)
	if !strings.Contains(v, "tokens per 2s, last 6s") || !strings.Contains(v, "(total 120, peak 80)") {
		t.Fatalf("chart heading:\n%s", v)
	}
	// Five rows of bars: the 80 fills all five, 40 half (two and a half),
	// 0 none.
	var bars []string
	for _, l := range strings.Split(v, "\n") {
		if i := strings.Index(l, "│"); i >= 0 {
			bars = append(bars, l[i+len("│"):])
		}
	}
	want := []string{"  █", "  █", "▄ █", "█ █", "█ █"}
	if len(bars) != len(want) {
		t.Fatalf("chart rows %q, want %q:\n%s", bars, want, v)
	}
	for i := range want {
		if bars[i] != want[i] {
			t.Errorf("chart row %d = %q, want %q\n%s", i, bars[i], want[i], v)
		}
	}
}
