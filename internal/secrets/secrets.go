package secrets

import (
	"net/url"
	"regexp"
	"strings"
)

// Redacted replaces every secret this package removes.
const Redacted = "[REDACTED]"

// Piece is the shortest run of a key's bytes that is redacted on its own:
// a provider error quoting the first or last 8 characters of a key gives
// away a quarter of it.
const Piece = 8

// ShowURL is raw as it may appear in messages, logs and status: without
// userinfo and with the query replaced, so a token in either never shows.
// An unparsable URL is shown as its scheme and host only, or not at all.
func ShowURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.IndexAny(raw, "@?"); i >= 0 {
			return Redacted
		}
		return raw
	}
	u.User = nil
	if u.RawQuery != "" || u.ForceQuery {
		u.RawQuery = ""
		u.ForceQuery = false
		return u.String() + "?" + Redacted
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// URLSecrets lists the parts of raw that are secrets: the userinfo (user
// and password), the raw query and each query value.
func URLSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	var out []string
	if u.User != nil {
		out = append(out, u.User.String(), u.User.Username())
		if p, ok := u.User.Password(); ok {
			out = append(out, p, url.QueryEscape(p))
		}
	}
	if u.RawQuery != "" {
		out = append(out, u.RawQuery)
		for _, vs := range u.Query() {
			for _, v := range vs {
				out = append(out, v, url.QueryEscape(v))
			}
		}
	}
	return out
}

// JoinURL appends path to base's path, keeping base's query, so a
// base_url with a signed query still reaches the right endpoint.
func JoinURL(base, path string) string {
	u, err := url.Parse(base)
	if err != nil || u.RawQuery == "" {
		return base + path
	}
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawPath = ""
	return u.String()
}

// keyPrefix matches tokens shaped like provider keys even when they are
// not configured here (a key of another account echoed by a proxy).
var keyPrefix = regexp.MustCompile(`\b(?:sk-(?:ant-|proj-)?|nvapi-|xai-|gsk_|hf_|AIza)[A-Za-z0-9_\-]{16,}`)

// Scrubber redacts a fixed set of secrets.
type Scrubber struct {
	whole  []string            // longest first
	pieces map[string]struct{} // every Piece-long run of every key
}

// New builds a Scrubber. keys are redacted whole and by any Piece-long
// run of their bytes; others (URL parts) whole only. Values shorter than
// minLen are ignored: they would match ordinary words.
func New(minLen int, keys []string, others ...string) *Scrubber {
	s := &Scrubber{pieces: map[string]struct{}{}}
	for _, k := range keys {
		if len(k) < minLen {
			continue
		}
		s.whole = append(s.whole, k)
		if len(k) >= 2*Piece {
			for i := 0; i+Piece <= len(k); i++ {
				s.pieces[k[i:i+Piece]] = struct{}{}
			}
		}
	}
	for _, o := range others {
		if len(o) >= minLen {
			s.whole = append(s.whole, o)
		}
	}
	sortLongestFirst(s.whole)
	return s
}

func sortLongestFirst(v []string) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && len(v[j]) > len(v[j-1]); j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}

// Scrub returns text with every secret, every piece of a key and every
// key-shaped token replaced.
func (s *Scrubber) Scrub(text string) string {
	if s == nil {
		return keyPrefix.ReplaceAllString(text, Redacted)
	}
	for _, w := range s.whole {
		text = strings.ReplaceAll(text, w, Redacted)
	}
	if len(s.pieces) > 0 && len(text) >= Piece {
		text = s.scrubPieces(text)
	}
	return keyPrefix.ReplaceAllString(text, Redacted)
}

// scrubPieces marks every byte covered by a Piece-long run of some key
// and replaces each marked span once.
func (s *Scrubber) scrubPieces(text string) string {
	var mark []bool
	for i := 0; i+Piece <= len(text); i++ {
		if _, ok := s.pieces[text[i:i+Piece]]; ok {
			if mark == nil {
				mark = make([]bool, len(text))
			}
			for j := i; j < i+Piece; j++ {
				mark[j] = true
			}
		}
	}
	if mark == nil {
		return text
	}
	var b strings.Builder
	for i := 0; i < len(text); {
		if !mark[i] {
			b.WriteByte(text[i])
			i++
			continue
		}
		b.WriteString(Redacted)
		for i < len(text) && mark[i] {
			i++
		}
	}
	return b.String()
}

// sensitiveParam matches query parameter names whose values are
// credentials by convention (signed URLs, OAuth, API keys).
var sensitiveParam = regexp.MustCompile(`(?i)(sig|signature|token|key|secret|password|passwd|auth|credential|code|session)`)

// Query is rawQuery as the audit log may keep it: parameter names as
// sent, the values of parameters named like credentials (sig, token,
// api_key, X-Amz-Signature, …) replaced, key-shaped values in the others
// replaced, and the whole cut to max bytes (marked with "…"). An
// unparsable query is redacted whole: it cannot be judged piece by piece.
func Query(rawQuery string, max int) string {
	if rawQuery == "" {
		return ""
	}
	var b strings.Builder
	for i, part := range strings.Split(rawQuery, "&") {
		if i > 0 {
			b.WriteByte('&')
		}
		name, value, hasValue := strings.Cut(part, "=")
		dn, err1 := url.QueryUnescape(name)
		dv, err2 := url.QueryUnescape(value)
		if err1 != nil || err2 != nil {
			return Redacted
		}
		b.WriteString(name)
		if !hasValue {
			continue
		}
		b.WriteByte('=')
		if sensitiveParam.MatchString(dn) || keyPrefix.MatchString(dv) {
			b.WriteString(Redacted)
		} else {
			b.WriteString(value)
		}
		if max > 0 && b.Len() > max {
			break
		}
	}
	out := b.String()
	if max > 0 && len(out) > max {
		out = out[:max] + "…"
	}
	return out
}
