package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/nemoclave/nemoclave/host/agent"
)

func newAgentCmd(g *Globals) *cobra.Command {
	var o agent.Options
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "The built-in agent: chat with tools, run inside a sandbox",
		Long: `The built-in agent talks to the inference gateway (OPENAI_BASE_URL) and the
tools MCP server (NEMOCLAVE_MCP_URL) that the sandbox provides. Without -p it
is an interactive chat (/exit or Ctrl-D to leave; Ctrl-C stops the answer
being written and returns to the prompt); with -p it answers one prompt.`,
		Example: `  nemoclave agent -p "What files are in my workspace?"
  nemoclave agent --model smart`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.BaseURL == "" {
				o.BaseURL = os.Getenv("OPENAI_BASE_URL")
			}
			if o.MCPURL == "" {
				o.MCPURL = os.Getenv("NEMOCLAVE_MCP_URL")
			}
			if o.Model == "" {
				o.Model = os.Getenv("NEMOCLAVE_MODEL")
			}
			o.In, o.Out, o.Progress = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			ctx := cmd.Context()
			if o.Prompt == "" {
				// In a chat Ctrl-C (SIGINT) stops the answer being
				// written and returns to the prompt; it does not end
				// the agent (nor the run or sandbox it is in).
				// SIGTERM still does.
				ints := make(chan os.Signal, 1)
				signal.Notify(ints, os.Interrupt)
				defer signal.Stop(ints)
				o.Interrupts = ints
				var stop context.CancelFunc
				ctx, stop = signal.NotifyContext(context.WithoutCancel(ctx), syscall.SIGTERM, syscall.SIGHUP)
				defer stop()
			}
			return agent.Run(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Prompt, "prompt", "p", "", "answer this prompt and exit")
	f.StringVar(&o.Model, "model", "", "model alias (default $NEMOCLAVE_MODEL, else \"default\")")
	f.StringVar(&o.System, "system", "", "system prompt")
	f.IntVar(&o.MaxSteps, "max-steps", 8, "maximum model calls per turn")
	f.BoolVar(&o.NoStream, "no-stream", false, "use unary completions instead of streaming")
	f.StringArrayVarP(&o.Attachments, "attach", "a", nil, "attach a file to the -p prompt: images go to vision models, documents are read through the gateway (repeatable)")
	f.StringVar(&o.BaseURL, "base-url", "", "inference endpoint (default $OPENAI_BASE_URL)")
	f.StringVar(&o.MCPURL, "mcp-url", "", "tools MCP endpoint (default $NEMOCLAVE_MCP_URL)")
	return cmd
}
