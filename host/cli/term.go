package cli

import (
	"bytes"
	"context"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"

	pb "github.com/nemoclave/nemoclave/host/api/daemonpb"
	"github.com/nemoclave/nemoclave/host/daemon"
	"github.com/nemoclave/nemoclave/host/tui"
)

func newTermCmd(g *Globals) *cobra.Command {
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "term",
		Short: "Terminal dashboard: sandboxes, live logs, approvals, inference",
		Long: `A dashboard of this daemon: [1] sandboxes, [2] the selected sandbox's logs,
[3] pending egress approvals (ID, sandbox, destination, waiting, expires in;
answer with a once, s for the sandbox, p persist, d deny) and [4] inference:
each running sandbox's routes, provider circuits and token and cost usage
against its budget, and a chart of the tokens used per refresh interval.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := connect(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer c.Close()
			p := tea.NewProgram(tui.New(daemonSource{c}, interval), tea.WithAltScreen(), tea.WithContext(cmd.Context()))
			_, err = p.Run()
			if err == tea.ErrProgramKilled && cmd.Context().Err() != nil {
				return nil
			}
			return err
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "refresh interval")
	return cmd
}

// daemonSource feeds the dashboard from the daemon.
type daemonSource struct{ c *daemon.Client }

func (s daemonSource) Sandboxes(ctx context.Context) ([]*pb.Sandbox, error) {
	return s.c.ListSandboxes(ctx)
}

func (s daemonSource) Logs(ctx context.Context, sandbox string, lines int) (string, error) {
	var buf bytes.Buffer
	err := s.c.Logs(ctx, daemon.LogsRequest{Sandbox: sandbox, Tail: lines}, &buf)
	return buf.String(), err
}

func (s daemonSource) Approvals(ctx context.Context) ([]*pb.Approval, error) {
	return s.c.ListApprovals(ctx, "")
}

func (s daemonSource) Answer(ctx context.Context, id string, allow bool, scope string) error {
	_, err := s.c.AnswerApproval(ctx, id, allow, scope)
	return err
}

func (s daemonSource) Inference(ctx context.Context) ([]*pb.SandboxInference, error) {
	st, err := s.c.InferenceStatus(ctx, "")
	if err != nil {
		return nil, err
	}
	return st.Live, nil
}
