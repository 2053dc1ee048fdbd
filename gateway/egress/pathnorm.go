package egress

import (
	"fmt"
	"net/url"
	"strings"
)

// NormalisePath reduces a raw request path (origin form, without the query)
// to the form the allow and deny rules judge, and the form forwarded
// upstream. Both describe the same resource, so an upstream cannot read a
// different path than the one judged:
//
//   - "/" and an encoded slash (%2F) both separate segments;
//   - each segment is percent-decoded, so %2e%2e is "..";
//   - empty segments (duplicate slashes), "." and ".." are resolved; ".."
//     never climbs above the root;
//   - a backslash, a NUL or control byte, ";" (path parameters, read as a
//     separator by some servers) or a malformed escape is refused.
//
// judged is the decoded path without a trailing slash ("/" for the root);
// forward keeps each remaining segment's original encoding and the trailing
// slash.
func NormalisePath(raw string) (judged, forward string, err error) {
	if !strings.HasPrefix(raw, "/") {
		return "", "", fmt.Errorf("%w: path %q must start with /", errBadRequest, raw)
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c <= ' ' || c >= 0x7f || c == '\\' || c == ';' || c == '#' || c == '?' {
			return "", "", fmt.Errorf("%w: path contains %q; backslashes, path parameters and control bytes are refused", errBadRequest, c)
		}
	}
	var dec, enc []string
	trailing := false
	for _, part := range splitEncodedSlash(raw[1:]) {
		d, err := url.PathUnescape(part)
		if err != nil {
			return "", "", fmt.Errorf("%w: path segment %q: %v", errBadRequest, part, err)
		}
		if strings.ContainsAny(d, "\\\x00;") || strings.ContainsFunc(d, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return "", "", fmt.Errorf("%w: path segment %q decodes to a backslash, ';' or control byte", errBadRequest, part)
		}
		trailing = false
		switch d {
		case "", ".":
			trailing = true
		case "..":
			trailing = true
			if len(dec) > 0 {
				dec, enc = dec[:len(dec)-1], enc[:len(enc)-1]
			}
		default:
			dec, enc = append(dec, d), append(enc, part)
		}
	}
	judged = "/" + strings.Join(dec, "/")
	forward = "/" + strings.Join(enc, "/")
	if trailing && len(enc) > 0 {
		forward += "/"
	}
	return judged, forward, nil
}

// splitEncodedSlash splits on "/" and on "%2F" in any case.
func splitEncodedSlash(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '/':
			out = append(out, s[start:i])
			start = i + 1
		case s[i] == '%' && i+2 < len(s) && s[i+1] == '2' && (s[i+2] == 'f' || s[i+2] == 'F'):
			out = append(out, s[start:i])
			start = i + 3
			i += 2
		}
	}
	return append(out, s[start:])
}

// matchPath reports whether a judged path matches a glob: "*" matches
// within one segment, "**" matches zero or more whole segments; every
// other character is literal.
func matchPath(pattern, path string) bool {
	return matchSegs(splitSegs(pattern), splitSegs(path))
}

func splitSegs(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func matchSegs(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for len(pat) > 0 && pat[0] == "**" {
				pat = pat[1:]
			}
			if len(pat) == 0 {
				return true
			}
			for i := 0; i <= len(segs); i++ {
				if matchSegs(pat, segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 || !matchSeg(pat[0], segs[0]) {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}

// matchSeg matches one segment against a pattern with "*" wildcards.
func matchSeg(pat, s string) bool {
	star, mark := -1, 0
	i, j := 0, 0
	for j < len(s) {
		switch {
		case i < len(pat) && pat[i] == '*':
			star, mark = i, j
			i++
		case i < len(pat) && pat[i] == s[j]:
			i++
			j++
		case star >= 0:
			i = star + 1
			mark++
			j = mark
		default:
			return false
		}
	}
	for i < len(pat) && pat[i] == '*' {
		i++
	}
	return i == len(pat)
}
