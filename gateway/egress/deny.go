package egress

import (
	"fmt"
	"io"
	"net/http"
	"strings"
)

// writeRefusal answers a refused request. The body is for the agent (and
// the human reading its transcript): what was refused, why, and how to ask
// for access. It never echoes request headers.
func writeRefusal(w io.Writer, status int, sandboxID, what, reason string, closeConn bool) {
	var b strings.Builder
	fmt.Fprintf(&b, "nemoclave egress gateway: %s refused for sandbox %q.\n", what, sandboxID)
	fmt.Fprintf(&b, "Reason: %s.\n", reason)
	switch status {
	case http.StatusForbidden:
		b.WriteString("\nThis sandbox may only reach the hosts its network policy names.\n" +
			"To request access, ask the operator to approve it (nemoclave approvals list / answer,\n" +
			"when the policy sets unknown_hosts = \"ask\"), or to add an endpoint to the blueprint's\n" +
			"policy block, e.g.  network \"name\" { endpoint { host = \"example.com\" port = 443 } },\n" +
			"and apply it with nemoclave policy set. Retrying the same request will not help.\n")
	case http.StatusBadRequest:
		b.WriteString("\nThe request was malformed or ambiguous; send a plain HTTP/1.1 request.\n")
	case http.StatusMisdirectedRequest:
		b.WriteString("\nThe Host header must name the same host as the request target.\n")
	}
	body := b.String()
	conn := "keep-alive"
	if closeConn {
		conn = "close"
	}
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: %s\r\nX-Nemoclave-Egress: denied\r\n\r\n%s",
		status, http.StatusText(status), len(body), conn, body)
}
