package egress

import "sort"

// Grants lists the host:port targets approved for the sandbox's lifetime
// (answers of "sandbox" scope). They are not part of a policy revision, so
// `policy get --full` shows them separately.
func (p *Proxy) Grants(sandboxID string) []string {
	sb, ok := p.lookupSandbox(sandboxID)
	if !ok {
		return nil
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	out := make([]string, 0, len(sb.grants))
	for t := range sb.grants {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
