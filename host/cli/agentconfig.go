package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/nemoclave/nemoclave/host/agent"
)

func newAgentConfigCmd(g *Globals) *cobra.Command {
	var model, workspace, write string
	cmd := &cobra.Command{
		Use:   "agent-config openclaw",
		Short: "Write an agent's configuration for the sandbox's gateway (OpenClaw)",
		Long: `Run inside a sandbox, prints (or with --write writes) the configuration that
points the agent at the sandbox's gateway: OpenClaw's openclaw.json with a
provider "nemoclave" at $OPENAI_BASE_URL (Chat Completions), a placeholder API
key (the gateway injects the real one), the model alias as default model,
/workspace as workspace and the blueprint's tools ($NEMOCLAVE_MCP_URL) as an
MCP server.`,
		Example: `  nemoclave agent-config openclaw --write "$HOME/.openclaw/openclaw.json"
  nemoclave agent-config openclaw --model smart`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"openclaw"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "openclaw" {
				return fmt.Errorf("agent-config knows openclaw only, not %q (Codex and Claude Code are configured with flags and environment: see docs/agents.md)", args[0])
			}
			b, err := agent.OpenClawConfig(os.Getenv, model, workspace)
			if err != nil {
				return err
			}
			b = append(b, '\n')
			if write == "" {
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			if err := os.MkdirAll(filepath.Dir(write), 0o700); err != nil {
				return err
			}
			return os.WriteFile(write, b, 0o600)
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "model alias (default $NEMOCLAVE_MODEL, else \"default\")")
	f.StringVar(&workspace, "workspace", "/workspace", "the agent's workspace directory")
	f.StringVar(&write, "write", "", "write the configuration to this file instead of printing it")
	return cmd
}
