package egress

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ClientHello is what the gateway learns from the first TLS record of a
// CONNECT tunnel before any byte reaches the upstream.
type ClientHello struct {
	// ServerNames lists every host_name entry of the server_name
	// extension, in order. Well-formed clients send at most one.
	ServerNames []string
	// ECH is set when the hello carries an encrypted_client_hello
	// extension: the real server name is hidden, so the SNI check means
	// nothing and the hello is refused unless the endpoint allows opaque
	// tunnels.
	ECH bool
	// ALPN lists the offered application protocols.
	ALPN []string
}

// Errors from ParseClientHello; each is refused unless the endpoint allows
// opaque tunnels.
var (
	ErrNotTLS         = errors.New("not a TLS handshake record")
	ErrSplitHello     = errors.New("TLS ClientHello split across records")
	ErrMalformedHello = errors.New("malformed TLS ClientHello")
	ErrDuplicateExt   = errors.New("TLS ClientHello repeats an extension")
)

const (
	recordTypeHandshake  = 0x16
	handshakeClientHello = 0x01
	maxRecordLen         = 1<<14 + 256 // TLSPlaintext limit plus slack for legacy stacks
	extServerName        = 0
	extALPN              = 16
	extECH               = 0xfe0d
)

// ReadClientHelloRecord reads exactly one TLS record from r and returns its
// raw bytes (to be replayed to the upstream). When the first byte is not a
// TLS handshake record it returns the one byte read and ErrNotTLS, so an
// opaque tunnel can replay it.
func ReadClientHelloRecord(r io.Reader) ([]byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:1]); err != nil {
		return nil, fmt.Errorf("reading the first tunnel byte: %w", err)
	}
	if hdr[0] != recordTypeHandshake {
		return hdr[:1:1], ErrNotTLS
	}
	if n, err := io.ReadFull(r, hdr[1:]); err != nil {
		return hdr[:1+n], fmt.Errorf("%w: short record header: %v", ErrMalformedHello, err)
	}
	length := int(binary.BigEndian.Uint16(hdr[3:5]))
	if hdr[1] != 3 || length == 0 || length > maxRecordLen {
		return hdr[:], fmt.Errorf("%w: record version %d.%d length %d", ErrMalformedHello, hdr[1], hdr[2], length)
	}
	buf := make([]byte, 5+length)
	copy(buf, hdr[:])
	if n, err := io.ReadFull(r, buf[5:]); err != nil {
		return buf[:5+n], fmt.Errorf("%w: short record: %v", ErrMalformedHello, err)
	}
	return buf, nil
}

// ParseClientHello parses one complete TLS record holding a ClientHello. A
// hello that does not fit in the record is refused (ErrSplitHello) rather
// than reassembled: no mainstream client splits it, and a split is a known
// way to hide the SNI from middleboxes.
func ParseClientHello(record []byte) (*ClientHello, error) {
	if len(record) < 5 || record[0] != recordTypeHandshake {
		return nil, ErrNotTLS
	}
	if record[1] != 3 {
		return nil, fmt.Errorf("%w: record version %d.%d", ErrMalformedHello, record[1], record[2])
	}
	if int(binary.BigEndian.Uint16(record[3:5])) != len(record)-5 {
		return nil, fmt.Errorf("%w: record length does not match its header", ErrMalformedHello)
	}
	s := cursor(record[5:])
	typ, ok := s.u8()
	if !ok || typ != handshakeClientHello {
		return nil, fmt.Errorf("%w: first handshake message is type %d, not ClientHello", ErrMalformedHello, typ)
	}
	hsLen, ok := s.u24()
	if !ok {
		return nil, fmt.Errorf("%w: short handshake header", ErrMalformedHello)
	}
	if hsLen > len(s) {
		return nil, ErrSplitHello
	}
	if hsLen < len(s) {
		return nil, fmt.Errorf("%w: trailing data after the ClientHello in its record", ErrMalformedHello)
	}
	var (
		vers, sess, suites, comp cursor
	)
	if vers, ok = s.bytes(2); !ok || vers[0] != 3 {
		return nil, fmt.Errorf("%w: legacy version", ErrMalformedHello)
	}
	if _, ok = s.bytes(32); !ok {
		return nil, fmt.Errorf("%w: short random", ErrMalformedHello)
	}
	if sess, ok = s.vec8(); !ok || len(sess) > 32 {
		return nil, fmt.Errorf("%w: session id", ErrMalformedHello)
	}
	if suites, ok = s.vec16(); !ok || len(suites) == 0 || len(suites)%2 != 0 {
		return nil, fmt.Errorf("%w: cipher suites", ErrMalformedHello)
	}
	if comp, ok = s.vec8(); !ok || len(comp) == 0 {
		return nil, fmt.Errorf("%w: compression methods", ErrMalformedHello)
	}
	hello := &ClientHello{}
	if len(s) == 0 {
		return hello, nil // no extensions: no SNI
	}
	exts, ok := s.vec16()
	if !ok || len(s) != 0 {
		return nil, fmt.Errorf("%w: extensions block", ErrMalformedHello)
	}
	seen := map[uint16]bool{}
	for len(exts) > 0 {
		typ, ok1 := exts.u16()
		body, ok2 := exts.vec16()
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: extension framing", ErrMalformedHello)
		}
		if seen[typ] {
			return nil, fmt.Errorf("%w: type %d", ErrDuplicateExt, typ)
		}
		seen[typ] = true
		switch typ {
		case extServerName:
			names, err := parseServerNames(body)
			if err != nil {
				return nil, err
			}
			hello.ServerNames = names
		case extALPN:
			list, ok := body.vec16()
			if !ok || len(body) != 0 {
				return nil, fmt.Errorf("%w: ALPN extension", ErrMalformedHello)
			}
			for len(list) > 0 {
				p, ok := list.vec8()
				if !ok || len(p) == 0 {
					return nil, fmt.Errorf("%w: ALPN protocol", ErrMalformedHello)
				}
				hello.ALPN = append(hello.ALPN, string(p))
			}
		case extECH:
			hello.ECH = true
		}
	}
	return hello, nil
}

func parseServerNames(body cursor) ([]string, error) {
	list, ok := body.vec16()
	if !ok || len(body) != 0 || len(list) == 0 {
		return nil, fmt.Errorf("%w: server_name extension", ErrMalformedHello)
	}
	var names []string
	for len(list) > 0 {
		typ, ok1 := list.u8()
		name, ok2 := list.vec16()
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: server_name entry", ErrMalformedHello)
		}
		if typ != 0 {
			return nil, fmt.Errorf("%w: server_name entry of unknown type %d", ErrMalformedHello, typ)
		}
		if len(name) == 0 {
			return nil, fmt.Errorf("%w: empty server_name", ErrMalformedHello)
		}
		names = append(names, string(name))
	}
	return names, nil
}

// cursor is a bounds-checked reader over a byte slice; every method reports
// false instead of panicking when the input is short.
type cursor []byte

func (c *cursor) bytes(n int) (cursor, bool) {
	if n < 0 || len(*c) < n {
		return nil, false
	}
	b := (*c)[:n:n]
	*c = (*c)[n:]
	return b, true
}

func (c *cursor) u8() (byte, bool) {
	b, ok := c.bytes(1)
	if !ok {
		return 0, false
	}
	return b[0], true
}

func (c *cursor) u16() (uint16, bool) {
	b, ok := c.bytes(2)
	if !ok {
		return 0, false
	}
	return binary.BigEndian.Uint16(b), true
}

func (c *cursor) u24() (int, bool) {
	b, ok := c.bytes(3)
	if !ok {
		return 0, false
	}
	return int(b[0])<<16 | int(b[1])<<8 | int(b[2]), true
}

func (c *cursor) vec8() (cursor, bool) {
	n, ok := c.u8()
	if !ok {
		return nil, false
	}
	return c.bytes(int(n))
}

func (c *cursor) vec16() (cursor, bool) {
	n, ok := c.u16()
	if !ok {
		return nil, false
	}
	return c.bytes(int(n))
}
