package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
)

// Source is what the dashboard reads and does; the CLI implements it over
// the daemon client.
type Source interface {
	Sandboxes(ctx context.Context) ([]*pb.Sandbox, error)
	Logs(ctx context.Context, sandbox string, lines int) (string, error)
	Approvals(ctx context.Context) ([]*pb.Approval, error)
	Answer(ctx context.Context, id string, allow bool, scope string) error
	// Inference is each running sandbox's routes, provider health and
	// budget use.
	Inference(ctx context.Context) ([]*pb.SandboxInference, error)
}

type tab int

const (
	tabSandboxes tab = iota
	tabLogs
	tabApprovals
	tabInference
)

var tabNames = []string{"Sandboxes", "Logs", "Approvals", "Inference"}

// Model is the bubbletea model.
type Model struct {
	src      Source
	tab      tab
	width    int
	height   int
	sbs      []*pb.Sandbox
	sel      int
	logs     string
	apprs    []*pb.Approval
	apprSel  int
	infer    string
	status   string
	err      error
	interval time.Duration
}

// New returns the dashboard model refreshing every interval.
func New(src Source, interval time.Duration) Model {
	return Model{src: src, interval: interval}
}

type tickMsg struct{}

type dataMsg struct {
	sbs   []*pb.Sandbox
	logs  string
	apprs []*pb.Approval
	infer string
	err   error
}

type answeredMsg struct {
	text string
	err  error
}

func (m Model) Init() tea.Cmd { return m.refresh() }

func (m Model) refresh() tea.Cmd {
	src, sbName := m.src, m.selected()
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var d dataMsg
		if d.sbs, d.err = src.Sandboxes(ctx); d.err != nil {
			return d
		}
		if sbName == "" && len(d.sbs) > 0 {
			sbName = d.sbs[0].Name
		}
		if sbName != "" {
			d.logs, _ = src.Logs(ctx, sbName, 200)
		}
		d.apprs, _ = src.Approvals(ctx)
		live, err := src.Inference(ctx)
		if err == nil {
			d.infer = viewInference(live)
		}
		return d
	}
}

func (m Model) selected() string {
	if m.sel >= 0 && m.sel < len(m.sbs) {
		return m.sbs[m.sel].Name
	}
	return ""
}

func (m Model) tick() tea.Cmd {
	return tea.Tick(m.interval, func(time.Time) tea.Msg { return tickMsg{} })
}

func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tickMsg:
		return m, m.refresh()
	case dataMsg:
		m.err = msg.err
		if msg.err == nil {
			m.sbs, m.logs, m.apprs, m.infer = msg.sbs, msg.logs, msg.apprs, msg.infer
			if m.sel >= len(m.sbs) {
				m.sel = max(0, len(m.sbs)-1)
			}
			if m.apprSel >= len(m.apprs) {
				m.apprSel = max(0, len(m.apprs)-1)
			}
		}
		return m, m.tick()
	case answeredMsg:
		m.status = msg.text
		if msg.err != nil {
			m.status = "error: " + msg.err.Error()
		}
		return m, m.refresh()
	case tea.KeyMsg:
		return m.key(msg)
	}
	return m, nil
}

func (m Model) key(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch k.String() {
	case "q", "ctrl+c":
		return m, tea.Quit
	case "tab", "right", "l":
		m.tab = (m.tab + 1) % tab(len(tabNames))
	case "shift+tab", "left", "h":
		m.tab = (m.tab + tab(len(tabNames)) - 1) % tab(len(tabNames))
	case "1", "2", "3", "4":
		m.tab = tab(k.String()[0] - '1')
	case "up", "k":
		if m.tab == tabApprovals && m.apprSel > 0 {
			m.apprSel--
		} else if m.tab != tabApprovals && m.sel > 0 {
			m.sel--
			return m, m.refresh()
		}
	case "down", "j":
		if m.tab == tabApprovals && m.apprSel < len(m.apprs)-1 {
			m.apprSel++
		} else if m.tab != tabApprovals && m.sel < len(m.sbs)-1 {
			m.sel++
			return m, m.refresh()
		}
	case "a", "s", "p", "d":
		if m.tab != tabApprovals || len(m.apprs) == 0 {
			return m, nil
		}
		a := m.apprs[m.apprSel]
		allow, scope := k.String() != "d", map[string]string{"a": "once", "s": "sandbox", "p": "persist", "d": "once"}[k.String()]
		src := m.src
		return m, func() tea.Msg {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := src.Answer(ctx, a.Id, allow, scope)
			verb := "denied"
			if allow {
				verb = "approved (" + scope + ")"
			}
			return answeredMsg{text: fmt.Sprintf("%s %s:%d for %s", verb, a.Host, a.Port, a.Sandbox), err: err}
		}
	case "r":
		return m, m.refresh()
	}
	return m, nil
}

var (
	titleStyle  = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("12"))
	activeTab   = lipgloss.NewStyle().Bold(true).Underline(true).Foreground(lipgloss.Color("10"))
	inactiveTab = lipgloss.NewStyle().Foreground(lipgloss.Color("8"))
	selStyle    = lipgloss.NewStyle().Reverse(true)
	warnStyle   = lipgloss.NewStyle().Foreground(lipgloss.Color("11")).Bold(true)
	helpStyle   = lipgloss.NewStyle().Foreground(lipgloss.Color("8"))
)

func (m Model) View() string {
	var b strings.Builder
	b.WriteString(titleStyle.Render("nemoclave") + "  ")
	for i, n := range tabNames {
		label := fmt.Sprintf("[%d] %s", i+1, n)
		if tab(i) == tabApprovals && len(m.apprs) > 0 {
			label += fmt.Sprintf(" (%d)", len(m.apprs))
		}
		if tab(i) == m.tab {
			b.WriteString(activeTab.Render(label))
		} else {
			b.WriteString(inactiveTab.Render(label))
		}
		b.WriteString("  ")
	}
	b.WriteString("\n\n")
	if m.err != nil {
		b.WriteString(warnStyle.Render("daemon: "+m.err.Error()) + "\n\n")
	}
	switch m.tab {
	case tabSandboxes:
		b.WriteString(m.viewSandboxes())
	case tabLogs:
		b.WriteString(m.viewLogs())
	case tabApprovals:
		b.WriteString(m.viewApprovals())
	case tabInference:
		b.WriteString(m.infer)
	}
	if m.status != "" {
		b.WriteString("\n" + m.status + "\n")
	}
	b.WriteString("\n" + helpStyle.Render("tab/1-4 switch · ↑↓ select · approvals: a once, s sandbox, p persist, d deny · r refresh · q quit"))
	return b.String()
}

func (m Model) viewSandboxes() string {
	if len(m.sbs) == 0 {
		return "no sandboxes — start one with `nemoclave run <blueprint>`\n"
	}
	var b strings.Builder
	b.WriteString(fmt.Sprintf("%-20s %-14s %-8s %-14s %s\n", "NAME", "AGENT", "DRIVER", "STATE", "POLICY"))
	for i, s := range m.sbs {
		st := s.State
		if s.ExitCode != nil {
			st = fmt.Sprintf("%s (%d)", st, *s.ExitCode)
		}
		line := fmt.Sprintf("%-20s %-14s %-8s %-14s %s@%d", s.Name, s.Agent, s.Driver, st, s.Policy, s.PolicyRevision)
		if i == m.sel {
			line = selStyle.Render(line)
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

func (m Model) viewLogs() string {
	name := m.selected()
	if name == "" {
		return "no sandbox selected\n"
	}
	lines := strings.Split(strings.TrimRight(m.logs, "\n"), "\n")
	room := m.height - 8
	if room < 5 {
		room = 20
	}
	if len(lines) > room {
		lines = lines[len(lines)-room:]
	}
	return titleStyle.Render("logs of "+name) + "\n" + strings.Join(lines, "\n") + "\n"
}

func (m Model) viewApprovals() string {
	if len(m.apprs) == 0 {
		return "no pending approvals\n"
	}
	var b strings.Builder
	for i, a := range m.apprs {
		line := fmt.Sprintf("%s  %-16s %s:%d  waiting %s, expires in %s", a.Id, a.Sandbox, a.Host, a.Port,
			time.Since(a.Requested.AsTime()).Round(time.Second), time.Until(a.Expires.AsTime()).Round(time.Second))
		if i == m.apprSel {
			line = selStyle.Render(line)
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// viewInference shows each running sandbox's routes, provider health and
// budget use.
func viewInference(live []*pb.SandboxInference) string {
	if len(live) == 0 {
		return "no running sandbox\n"
	}
	var b strings.Builder
	for _, v := range live {
		fmt.Fprintf(&b, "%s (default alias %s)\n", v.Sandbox, v.Default)
		for _, r := range v.Routes {
			fmt.Fprintf(&b, "  %-12s → %s %s", r.Alias, r.Provider, r.Model)
			if len(r.Fallback) > 0 {
				fmt.Fprintf(&b, " (fallback %s)", strings.Join(r.Fallback, ", "))
			}
			b.WriteString("\n")
		}
		for _, p := range v.Providers {
			fmt.Fprintf(&b, "  provider %s: %s, %d consecutive failures", p.Provider, p.State, p.ConsecutiveFailures)
			if p.LastError != "" {
				fmt.Fprintf(&b, ", last error: %s", p.LastError)
			}
			b.WriteString("\n")
		}
		if u := v.Usage; u != nil {
			fmt.Fprintf(&b, "  %d tokens today, %d this month, $%.4f today\n", u.TokensToday, u.TokensMonth, u.CostTodayUsd)
		}
	}
	return b.String()
}
