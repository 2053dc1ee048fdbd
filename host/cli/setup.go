package cli

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/nemoclave/nemoclave/sandbox/confine"
)

func newSetupCmd(g *Globals) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "setup --user NAME",
		Short: "Prepare this host for an ordinary user (run once as root)",
		Long: `Create cgroups for NAME and delegate them to that user, so sandboxes the
user's daemon starts get memory, CPU and process limits. On cgroup v1 and
hybrid hosts this is one directory per controller (memory, pids, cpu); on
pure cgroup v2, one directory. Idempotent. A user whose daemon already runs
in a systemd-delegated cgroup (Delegate=yes) does not need it.`,
		Example: `  sudo nemoclave setup --user alice`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return errors.New("name the user: `nemoclave setup --user NAME`")
			}
			if os.Geteuid() != 0 {
				return fmt.Errorf("setup creates cgroups for another user and needs root: run `sudo nemoclave setup --user %s`", name)
			}
			u, err := user.Lookup(name)
			if err != nil {
				return fmt.Errorf("user %q: %w (create it first, e.g. `useradd %s`)", name, err, name)
			}
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			dirs, err := confine.SetupUserCgroups(uid, gid)
			if err != nil {
				return err
			}
			for _, d := range dirs {
				fmt.Fprintf(cmd.OutOrStdout(), "delegated %s to %s\n", d, name)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s's sandboxes now run with resource limits (restart their daemon: `nemoclave daemon stop`)\n", name)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "user", "", "the user to prepare")
	return cmd
}
