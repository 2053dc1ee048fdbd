package credentials

import (
	"context"

	"github.com/nemoclave/nemoclave/internal/secrets"
)

// minRedactLen is the shortest value Redactor replaces: shorter values
// would match ordinary words and say nothing about the key anyway.
const minRedactLen = 6

// Redactor replaces known credential values in text with [REDACTED]:
// each value whole, any 8-byte piece of it (providers echo "sk-abc…xyz"),
// and any token shaped like a provider key. The gateway runs every error
// and answer it sends through one.
type Redactor struct {
	s *secrets.Scrubber
}

// NewRedactor builds a redactor for the given values.
func NewRedactor(values ...Secret) *Redactor {
	var vs []string
	for _, s := range values {
		if v, ok := s.redactorValue(); ok && len(v) >= minRedactLen {
			vs = append(vs, v)
		}
	}
	return &Redactor{s: secrets.New(minRedactLen, vs)}
}

// Redact returns text with every known value replaced.
func (r *Redactor) Redact(text string) string {
	if r == nil {
		return secrets.New(minRedactLen, nil).Scrub(text)
	}
	return r.s.Scrub(text)
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
