package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"

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
	src     Source
	tab     tab
	width   int
	height  int
	sbs     []*pb.Sandbox
	sel     int
	logs    string
	apprs   []*pb.Approval
	apprSel int
	infer   []*pb.SandboxInference
	// tokens is the tokens used in each refresh interval, oldest first,
	// for the chart on the inference tab; lastTotal is the running total
	// the last refresh saw (-1 before the first).
	tokens    []int64
	lastTotal int64
	status    string
	err       error
	interval  time.Duration
}

// New returns the dashboard model refreshing every interval.
func New(src Source, interval time.Duration) Model {
	return Model{src: src, interval: interval, lastTotal: -1}
}

type tickMsg struct{}

type dataMsg struct {
	sbs   []*pb.Sandbox
	logs  string
	apprs []*pb.Approval
	infer []*pb.SandboxInference
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
		d.infer, _ = src.Inference(ctx)
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
			m.sampleTokens()
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
		b.WriteString(m.viewInference())
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
	rows := make([][]string, 0, len(m.apprs))
	for _, a := range m.apprs {
		rows = append(rows, []string{a.Id, a.Sandbox, fmt.Sprintf("%s:%d", a.Host, a.Port),
			time.Since(a.Requested.AsTime()).Round(time.Second).String(), time.Until(a.Expires.AsTime()).Round(time.Second).String()})
	}
	return grid([]string{"ID", "SANDBOX", "DESTINATION", "WAITING", "EXPIRES IN"}, rows, m.apprSel) + "\n"
}

// grid renders a table with a heading row; the row numbered sel (-1:
// none) is highlighted.
func grid(headers []string, rows [][]string, sel int) string {
	return table.New().
		Border(lipgloss.NormalBorder()).
		BorderTop(false).BorderBottom(false).BorderLeft(false).BorderRight(false).
		BorderColumn(false).BorderHeader(true).
		BorderStyle(helpStyle).
		Headers(headers...).
		Rows(rows...).
		StyleFunc(func(row, _ int) lipgloss.Style {
			st := lipgloss.NewStyle().PaddingRight(2)
			switch {
			case row == table.HeaderRow:
				return st.Bold(true)
			case row == sel:
				return st.Reverse(true)
			}
			return st
		}).
		String()
}

// sampleTokens records the tokens used since the last refresh, summed
// over the running sandboxes, for the chart.
func (m *Model) sampleTokens() {
	var total int64
	for _, v := range m.infer {
		total += v.GetUsage().GetTokensToday()
	}
	if m.lastTotal >= 0 {
		// A new day or a sandbox gone lowers the total: nothing was used.
		m.tokens = append(m.tokens, max(0, total-m.lastTotal))
		if n := len(m.tokens) - maxSamples; n > 0 {
			m.tokens = m.tokens[n:]
		}
	}
	m.lastTotal = total
}

// maxSamples bounds the chart's history.
const maxSamples = 240

func (m Model) viewInference() string {
	if len(m.infer) == 0 {
		return "no running sandbox — inference routes and usage show here once one runs\n"
	}
	var b strings.Builder
	for _, v := range m.infer {
		st := v
		b.WriteString(titleStyle.Render(v.Sandbox) + "\n")
		var routes [][]string
		for _, r := range st.Routes {
			alias := r.Alias
			if alias == st.Default {
				alias += " (default)"
			}
			fb := strings.Join(r.Fallback, ", ")
			if fb == "" {
				fb = "-"
			}
			routes = append(routes, []string{alias, strings.TrimPrefix(r.Provider, "plugin.llm."), r.Model, fb})
		}
		if len(routes) > 0 {
			b.WriteString(grid([]string{"ALIAS", "PROVIDER", "MODEL", "FALLBACK"}, routes, -1) + "\n\n")
		}
		var health [][]string
		for _, p := range st.Providers {
			last := p.LastError
			if last == "" {
				last = "-"
			}
			health = append(health, []string{strings.TrimPrefix(p.Provider, "plugin.llm."), p.State, fmt.Sprint(p.ConsecutiveFailures), last})
		}
		if len(health) > 0 {
			b.WriteString(grid([]string{"PROVIDER", "CIRCUIT", "FAILURES", "LAST ERROR"}, health, -1) + "\n\n")
		}
		u, bud := st.GetUsage(), st.GetUsage().GetBudget()
		b.WriteString(grid([]string{"USAGE", "TODAY", "THIS MONTH"}, [][]string{
			{"tokens", limited(fmt.Sprint(u.GetTokensToday()), bud.GetTokensPerDay()), limited(fmt.Sprint(u.GetTokensMonth()), bud.GetTokensPerMonth())},
			{"cost (USD)", limitedUSD(u.GetCostTodayUsd(), bud.GetCostPerDayUsd()), limitedUSD(u.GetCostMonthUsd(), bud.GetCostPerMonthUsd())},
		}, -1) + "\n\n")
	}
	b.WriteString(m.viewTokenChart())
	return b.String()
}

func limited(v string, limit int64) string {
	if limit <= 0 {
		return v
	}
	return fmt.Sprintf("%s of %d", v, limit)
}

func limitedUSD(v, limit float64) string {
	if limit <= 0 {
		return fmt.Sprintf("%.4f", v)
	}
	return fmt.Sprintf("%.4f of %.2f", v, limit)
}

// viewTokenChart draws the tokens used per refresh interval, all running
// sandboxes together, as bars over the last samples that fit the window.
func (m Model) viewTokenChart() string {
	width := m.width - 12
	if width < 10 {
		width = 60
	}
	samples := m.tokens
	if len(samples) > width {
		samples = samples[len(samples)-width:]
	}
	span := time.Duration(len(samples)) * m.interval
	head := fmt.Sprintf("tokens per %s, last %s", m.interval, span.Round(time.Second))
	if len(samples) == 0 {
		return titleStyle.Render(head) + "\n(the chart fills in as the dashboard refreshes)\n"
	}
	var peak, sum int64
	for _, n := range samples {
		peak = max(peak, n)
		sum += n
	}
	const rows = 5
	bars := []rune(" ▁▂▃▄▅▆▇█")
	var b strings.Builder
	b.WriteString(titleStyle.Render(head) + fmt.Sprintf("  (total %d, peak %d)\n", sum, peak))
	for r := rows - 1; r >= 0; r-- {
		label := ""
		switch r {
		case rows - 1:
			label = fmt.Sprint(peak)
		case 0:
			label = "0"
		}
		b.WriteString(fmt.Sprintf("%8s │", label))
		for _, n := range samples {
			// The bar's height in eighths of a row, rows*8 at the peak.
			h := 0
			if peak > 0 {
				h = int((n*rows*8 + peak - 1) / peak)
			}
			fill := min(max(h-r*8, 0), 8)
			b.WriteRune(bars[fill])
		}
		b.WriteString("\n")
	}
	b.WriteString(fmt.Sprintf("%8s └%s\n", "", strings.Repeat("─", len(samples))))
	return b.String()
}
