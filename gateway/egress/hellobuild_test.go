package egress

import "encoding/binary"

// buildHello assembles a minimal TLS 1.2-style ClientHello record with the
// given server names (none when empty) and, when ech is set, an
// encrypted_client_hello extension.
func buildHello(names []string, ech bool) []byte {
	var exts []byte
	if len(names) > 0 {
		var list []byte
		for _, n := range names {
			list = append(list, 0)
			list = binary.BigEndian.AppendUint16(list, uint16(len(n)))
			list = append(list, n...)
		}
		var body []byte
		body = binary.BigEndian.AppendUint16(body, uint16(len(list)))
		body = append(body, list...)
		exts = appendExt(exts, extServerName, body)
	}
	if ech {
		exts = appendExt(exts, extECH, []byte{0, 0, 1, 0, 1, 0x42, 0, 0})
	}
	return helloWithExts(exts)
}

// helloWithExts frames a ClientHello record around a raw extensions block.
func helloWithExts(exts []byte) []byte {
	var hs []byte
	hs = append(hs, 3, 3)                // legacy version
	hs = append(hs, make([]byte, 32)...) // random
	hs = append(hs, 0)                   // session id
	hs = append(hs, 0, 2, 0x13, 0x01)    // one cipher suite
	hs = append(hs, 1, 0)                // null compression
	hs = binary.BigEndian.AppendUint16(hs, uint16(len(exts)))
	hs = append(hs, exts...)
	msg := []byte{handshakeClientHello, byte(len(hs) >> 16), byte(len(hs) >> 8), byte(len(hs))}
	msg = append(msg, hs...)
	rec := []byte{recordTypeHandshake, 3, 1}
	rec = binary.BigEndian.AppendUint16(rec, uint16(len(msg)))
	return append(rec, msg...)
}

func appendExt(b []byte, typ uint16, body []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

// splitRecord re-frames one handshake record as two records, the way a
// client hiding its SNI from middleboxes would.
func splitRecord(rec []byte, at int) []byte {
	payload := rec[5:]
	a, b := payload[:at], payload[at:]
	out := []byte{rec[0], rec[1], rec[2]}
	out = binary.BigEndian.AppendUint16(out, uint16(len(a)))
	out = append(out, a...)
	out = append(out, rec[0], rec[1], rec[2])
	out = binary.BigEndian.AppendUint16(out, uint16(len(b)))
	return append(out, b...)
}
