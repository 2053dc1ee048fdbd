package local

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nemoclave/nemoclave/policy"
	"github.com/nemoclave/nemoclave/sandbox"
)

// Policy lifecycle rows L1–L3.

func TestEscape_L1_BadPolicyRefusesToStart(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		invalid := testPolicy()
		invalid.UnknownHosts = "allow"
		tooNew := testPolicy()
		tooNew.Landlock.MinABI = 99
		cases := []struct {
			name   string
			policy *policy.Policy
			nilPol bool
			want   string
			atCrea bool
		}{
			{"missing", nil, true, "no policy", true},
			{"empty", &policy.Policy{}, false, "invalid policy", true},
			{"invalid", invalid, false, `unknown_hosts = "allow"`, true},
			{"landlock ABI below minimum", tooNew, false, "policy requires at least ABI 99", false},
		}
		for _, c := range cases {
			dir, ws := jobDir(t, mode)
			j := job{Argv: []string{"/bin/sh", "-c", "echo AGENT RAN > /workspace/ran"}, Policy: c.policy, NoPolicy: c.nilPol}
			res := run(t, mode, dir, ws, j)
			got := res.StartErr
			if c.atCrea {
				got = res.CreateErr
			}
			if !strings.Contains(got, c.want) {
				t.Errorf("%s: want a refusal mentioning %q, got create=%q start=%q", c.name, c.want, res.CreateErr, res.StartErr)
			}
			if _, err := os.Stat(filepath.Join(ws, "ran")); err == nil {
				t.Errorf("%s: the agent ran", c.name)
			}
			if !c.atCrea && res.Info.State != sandbox.StateExited {
				t.Errorf("%s: state %s after a refused start, want exited", c.name, res.Info.State)
			}
		}
		// The same too-new minimum with an explicit best_effort opt-in runs,
		// and says so.
		opt := testPolicy()
		opt.Landlock = policy.Landlock{MinABI: 99, BestEffort: true}
		out, _ := sh(t, mode, "echo ran", func(j *job) { j.Policy = opt })
		expectLines(t, out, "WARNING: Landlock ABI", "ran")
	})
}

func TestEscape_L2_EmptyNetworkAllowList(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		p := testPolicy()
		p.Network = nil
		out, _ := sh(t, mode, `$PROBE connect-tcp 127.0.0.1:80; $PROBE connect-tcp 1.1.1.1:443; $PROBE connect-tcp "[::1]:443"
$PROBE udp-send 8.8.8.8:53; echo "proxy: ${HTTP_PROXY:-none}"`, func(j *job) { j.Policy = p })
		if strings.Contains(out, ": ok") {
			t.Errorf("network reachable with an empty allow list:\n%s", out)
		}
		expectLines(t, out, "connect-tcp: errno=EACCES", "udp-send: errno=ENETUNREACH", "proxy: none")
	})
}

func TestEscape_L3_HotReloadCannotWidenFilesystem(t *testing.T) {
	modes(t, func(t *testing.T, mode string) {
		dir, ws := jobDir(t, mode)
		extra := filepath.Join(dir, "extra")
		if err := os.Mkdir(extra, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(extra, "secret"), []byte("WIDENED"), 0o644); err != nil {
			t.Fatal(err)
		}
		wider := testPolicy()
		wider.Revision = 2
		wider.Filesystem.ReadOnly = append(wider.Filesystem.ReadOnly, extra, "/")
		wider.Filesystem.ReadWrite = append(wider.Filesystem.ReadWrite, "/etc", "/usr")
		marker := "nemoclave-l3-" + filepath.Base(dir)
		res := run(t, mode, dir, ws, job{
			Argv: []string{"/bin/sh", "-c", `while [ ! -e /workspace/reloaded ]; do sleep 0.01; done
cat ` + extra + `/secret 2>&1; ls / >/dev/null 2>&1 && echo "LISTED /" || echo "root still unlisted"
echo x > /etc/` + marker + ` 2>/dev/null && echo "WROTE etc" || echo "etc still read-only"`},
			Reload: wider,
		})
		if res.StartErr != "" {
			t.Fatal(res.StartErr)
		}
		if strings.Contains(res.Output, "WIDENED") || strings.Contains(res.Output, "WROTE") || strings.Contains(res.Output, "LISTED") {
			t.Errorf("a reloaded policy widened the running sandbox:\n%s", res.Output)
		}
		expectLines(t, res.Output, "root still unlisted", "etc still read-only")
		os.Remove("/etc/" + marker)
	})
}
