package confine

import (
	"testing"
)

func TestParseCgroupLayout(t *testing.T) {
	hybrid := `25 24 0:22 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
26 25 0:23 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
27 25 0:24 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
28 25 0:25 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
29 25 0:26 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
30 25 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	hybridSelf := "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n"
	l := parseCgroupLayout(hybrid, hybridSelf)
	if l.v2Mount != "" {
		t.Errorf("hybrid host taken for pure v2 (%q)", l.v2Mount)
	}
	for c, want := range map[string]string{"memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids", "cpu": "/sys/fs/cgroup/cpu"} {
		if l.v1[c] != want {
			t.Errorf("v1 %s mount %q, want %q", c, l.v1[c], want)
		}
	}
	if l.self["memory"] != "/process_api/abc" || l.self["pids"] != "/" {
		t.Errorf("own cgroups %v", l.self)
	}

	pure := "30 25 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
	l = parseCgroupLayout(pure, "0::/user.slice/user-1000.slice/session-2.scope\n")
	if l.v2Mount != "/sys/fs/cgroup" || len(l.v1) != 0 || l.self[""] != "/user.slice/user-1000.slice/session-2.scope" {
		t.Errorf("pure v2 parsed as %+v", l)
	}
	// cpu,cpuacct co-mounted (common on v1 hosts).
	l = parseCgroupLayout("26 25 0:23 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n", "3:cpu,cpuacct:/x\n")
	if l.v1["cpu"] != "/sys/fs/cgroup/cpu,cpuacct" || l.self["cpu"] != "/x" {
		t.Errorf("co-mounted cpu,cpuacct parsed as %+v", l)
	}
}
