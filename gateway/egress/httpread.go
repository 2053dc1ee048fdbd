package egress

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// errBadRequest marks a request refused with 400 before any policy decision.
var errBadRequest = errors.New("bad request")

const maxHeaderBytes = 64 << 10

// readRequest reads one request and refuses the framing tricks that make a
// proxy and an upstream disagree about where a request ends (row N16):
// Content-Length with Transfer-Encoding, repeated Content-Length or
// Transfer-Encoding, obsolete line folding, bare LF line ends, protocol
// upgrades (h2c), and methods that are not upper case (HTTP methods are
// case-sensitive; "get" is refused, not silently treated as GET).
func readRequest(br *bufio.Reader) (*http.Request, error) {
	head, err := peekHead(br)
	if err != nil {
		return nil, err
	}
	hosts, err := checkHead(head)
	if err != nil {
		return nil, err
	}
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	// net/http moves Host out of the header map; keep every raw value so
	// the target checks see duplicates too.
	req.Header["Host"] = hosts
	if req.Method != strings.ToUpper(req.Method) {
		return nil, fmt.Errorf("%w: method %q is not upper case; HTTP methods are case-sensitive, send %q", errBadRequest, req.Method, strings.ToUpper(req.Method))
	}
	if req.ProtoMajor != 1 {
		return nil, fmt.Errorf("%w: only HTTP/1.x is accepted by the egress proxy", errBadRequest)
	}
	if len(req.Header["Upgrade"]) > 0 || len(req.Header["Http2-Settings"]) > 0 {
		return nil, fmt.Errorf("%w: protocol upgrades (h2c, websocket) are not relayed; use HTTPS through CONNECT", errBadRequest)
	}
	if len(req.TransferEncoding) > 0 && (len(req.TransferEncoding) != 1 || req.TransferEncoding[0] != "chunked") {
		return nil, fmt.Errorf("%w: transfer-encoding %v; only chunked is accepted", errBadRequest, req.TransferEncoding)
	}
	return req, nil
}

// peekHead returns the header block (through the blank line) without
// consuming it, or fails when it exceeds maxHeaderBytes.
func peekHead(br *bufio.Reader) ([]byte, error) {
	n, from := 1, 0
	for {
		b, err := br.Peek(n)
		if i := bytes.Index(b[from:], []byte("\r\n\r\n")); i >= 0 {
			return b[:from+i+4], nil
		}
		for i := max(from, 1); i < len(b); i++ {
			if b[i] == '\n' && b[i-1] != '\r' {
				return nil, fmt.Errorf("%w: header lines must end in CRLF", errBadRequest)
			}
		}
		if len(b) > 0 && b[0] == '\n' {
			return nil, fmt.Errorf("%w: header lines must end in CRLF", errBadRequest)
		}
		from = max(0, len(b)-3)
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) || len(b) >= maxHeaderBytes {
				return nil, fmt.Errorf("%w: request header over %d bytes", errBadRequest, maxHeaderBytes)
			}
			return nil, err
		}
		if n >= maxHeaderBytes {
			return nil, fmt.Errorf("%w: request header over %d bytes", errBadRequest, maxHeaderBytes)
		}
		if br.Buffered() > n {
			n = br.Buffered()
		} else {
			n++
		}
	}
}

func checkHead(head []byte) (hosts []string, err error) {
	lines := bytes.Split(head[:len(head)-4], []byte("\r\n"))
	var cl, te int
	for i, l := range lines {
		if bytes.IndexByte(l, '\n') >= 0 || bytes.IndexByte(l, '\r') >= 0 {
			return nil, fmt.Errorf("%w: bare CR or LF in the header", errBadRequest)
		}
		if i == 0 {
			continue
		}
		if len(l) > 0 && (l[0] == ' ' || l[0] == '\t') {
			return nil, fmt.Errorf("%w: obsolete header line folding", errBadRequest)
		}
		name, value, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			return nil, fmt.Errorf("%w: malformed header line", errBadRequest)
		}
		if bytes.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("%w: whitespace in a header name", errBadRequest)
		}
		switch strings.ToLower(string(name)) {
		case "content-length":
			cl++
		case "transfer-encoding":
			te++
		case "host":
			hosts = append(hosts, string(bytes.TrimSpace(value)))
		}
	}
	switch {
	case cl > 1:
		return nil, fmt.Errorf("%w: repeated Content-Length", errBadRequest)
	case te > 1:
		return nil, fmt.Errorf("%w: repeated Transfer-Encoding", errBadRequest)
	case cl > 0 && te > 0:
		return nil, fmt.Errorf("%w: both Content-Length and Transfer-Encoding", errBadRequest)
	}
	return hosts, nil
}

// hopHeaders are connection-scoped and never forwarded.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func stripHop(h http.Header) {
	for _, f := range h.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}
