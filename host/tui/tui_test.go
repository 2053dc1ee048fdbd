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
	return []*pb.SandboxInference{{Sandbox: "quickstart", Default: "default",
		Routes:    []*pb.Route{{Alias: "default", Provider: "plugin.llm.main", Model: "replay", Fallback: []string{"backup"}}},
		Providers: []*pb.ProviderHealth{{Provider: "plugin.llm.main", State: "closed"}},
		Usage:     &pb.BudgetStatus{TokensToday: 12, TokensMonth: 40}}}, nil
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
	if v := m.View(); !strings.Contains(v, "example.com:443") {
		t.Fatalf("approvals tab:\n%s", v)
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
	m, _ = m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("4")})
	v := m.View()
	for _, want := range []string{"quickstart (default alias default)", "→ plugin.llm.main replay (fallback backup)", "provider plugin.llm.main: closed", "12 tokens today, 40 this month"} {
		if !strings.Contains(v, want) {
			t.Fatalf("inference tab lacks %q:\n%s", want, v)
		}
	}
}
