package policy

import (
	"encoding/json"
	"testing"
)

// FuzzDecodePolicy is the policy decoder of SECURITY-TESTS.md: any JSON an
// operator hands `nemoclave policy set` must decode, validate and clone
// without panicking, and a policy that validates must survive a round trip
// unchanged (what is enforced is what was accepted).
func FuzzDecodePolicy(f *testing.F) {
	f.Add([]byte(`{"name":"p","unknown_hosts":"deny","filesystem":{"read_only":["/usr"],"read_write":["/workspace"]},"network":[{"name":"gh","endpoints":[{"host":"*.github.com","ports":[443],"inspect":true,"allow":[{"methods":["GET"],"paths":["/repos/**"]}]}]}]}`))
	f.Add([]byte(`{"name":"p","unknown_hosts":"ask","filesystem":{"read_write":["/tmp"]},"network":[{"name":"x","endpoints":[{"host":"*"}]}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Policy
		if err := json.Unmarshal(data, &p); err != nil {
			return
		}
		_ = p.Hosts()
		if p.Validate() != nil {
			return
		}
		for _, r := range p.Network {
			for _, e := range r.Endpoints {
				if e.Host == "*" || e.Host == "" {
					t.Fatalf("Validate accepted host pattern %q", e.Host)
				}
			}
		}
		c := p.Clone()
		if normalise(&p) != normalise(c) {
			t.Fatalf("clone differs:\n%+v\n%+v", p, *c)
		}
	})
}

// normalise maps empty slices and maps to nil, which JSON cannot tell apart.
func normalise(p *Policy) string {
	b, _ := json.Marshal(p)
	return string(b)
}
