package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// procStatus is read to decide whether the plugin is itself confined; a
// variable so tests can point it at a fixture.
var procStatus = "/proc/self/status"

// checkInheritedSandbox fails unless this process is visibly confined:
// no_new_privs set and a seccomp filter installed, which the nemoclave
// sandbox (and any serious sandbox) always applies and which a child
// inherits through fork and exec, together with the Landlock domain and
// the namespaces. It cannot prove Landlock is active — the kernel does not
// report that — so it is a fail-closed guard against the common mistake,
// running "inherit" in a plugin the host launched unconfined, not proof of
// a particular policy.
func checkInheritedSandbox() error {
	f, err := os.Open(procStatus)
	if err != nil {
		return fmt.Errorf(`sandbox = "inherit": cannot read %s to check that this plugin is confined: %w`, procStatus, err)
	}
	defer f.Close()
	fields := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	if fields["NoNewPrivs"] != "1" || fields["Seccomp"] != "2" {
		return fmt.Errorf(`sandbox = "inherit", but this plugin is not running sandboxed (NoNewPrivs=%q, Seccomp=%q in %s), so the MCP server would run unconfined; `+
			`run the plugin under a host that sandboxes plugins, or set sandbox = "none" to accept an unsandboxed server`,
			fields["NoNewPrivs"], fields["Seccomp"], procStatus)
	}
	return nil
}
