package credentials

import (
	"context"
	"sort"
	"strings"
)

// minRedactLen is the shortest value Redactor replaces: shorter values
// would match ordinary words and say nothing about the key anyway.
const minRedactLen = 6

// Redactor replaces known credential values in text with [REDACTED].
// The gateway runs every error and answer it sends through one.
type Redactor struct {
	r *strings.Replacer
}

// NewRedactor builds a redactor for the given values.
func NewRedactor(values ...Secret) *Redactor {
	var vs []string
	for _, s := range values {
		if v, ok := s.redactorValue(); ok && len(v) >= minRedactLen {
			vs = append(vs, v)
		}
	}
	// Longest first, so a key that contains another is replaced whole.
	sort.Slice(vs, func(i, j int) bool { return len(vs[i]) > len(vs[j]) })
	pairs := make([]string, 0, 2*len(vs))
	for _, v := range vs {
		pairs = append(pairs, v, redacted)
	}
	if len(pairs) == 0 {
		return &Redactor{}
	}
	return &Redactor{r: strings.NewReplacer(pairs...)}
}

// Redact returns text with every known value replaced.
func (r *Redactor) Redact(text string) string {
	if r == nil || r.r == nil {
		return text
	}
	return r.r.Replace(text)
}

// RedactorFor builds a redactor over every credential b lists.
func RedactorFor(ctx context.Context, b Backend) (*Redactor, error) {
	infos, err := b.List(ctx)
	if err != nil {
		return nil, err
	}
	var values []Secret
	for _, i := range infos {
		if s, err := b.Get(ctx, i.Name); err == nil {
			values = append(values, s)
		}
	}
	return NewRedactor(values...), nil
}
