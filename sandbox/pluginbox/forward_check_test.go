package pluginbox

import (
	"strings"
	"testing"
)

func TestCheckForward(t *testing.T) {
	for _, tc := range []struct {
		f    Forward
		want string // "" accepted, else part of the refusal
	}{
		{Forward{Host: "192.0.2.10", Port: 5432}, ""},
		{Forward{Host: "2001:db8::10", Port: 5432}, ""},
		{Forward{Host: "::1", Port: 5432}, ""},
		{Forward{Host: "db.internal.test", Port: 5432}, ""},
		{Forward{Host: "fe80::1%eth0", Port: 5432}, "link-local"},
		{Forward{Host: "fe80::1", Port: 5432}, "link-local"},
		{Forward{Host: "ff02::1", Port: 5432}, "multicast"},
		{Forward{Host: "::", Port: 5432}, "unspecified"},
		{Forward{Host: "2001:db8::10", Port: 0}, "port out of range"},
	} {
		err := checkForward(tc.f)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.f, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want a refusal naming %q", tc.f, err, tc.want)
		}
	}
}
