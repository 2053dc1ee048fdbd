package credentials

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"
)

// ErrNotFound is returned (wrapped) when no backend has the name.
var ErrNotFound = errors.New("credential not found")

// Secret is a credential value. Every way of printing it gives
// [REDACTED]; Reveal is the one way to the value.
type Secret struct{ v string }

// NewSecret wraps a value.
func NewSecret(v string) Secret { return Secret{v: v} }

const redacted = "[REDACTED]"

// Reveal returns the value. Call it only to hand the value to a plugin.
func (s Secret) Reveal() string { return s.v }

// Empty reports whether there is no value.
func (s Secret) Empty() bool { return s.v == "" }

func (Secret) String() string                  { return redacted }
func (Secret) GoString() string                { return redacted }
func (Secret) Format(f fmt.State, _ rune)      { _, _ = f.Write([]byte(redacted)) }
func (Secret) MarshalJSON() ([]byte, error)    { return []byte(`"` + redacted + `"`), nil }
func (Secret) MarshalText() ([]byte, error)    { return []byte(redacted), nil }
func (Secret) LogValue() slog.Value            { return slog.StringValue(redacted) }
func (Secret) MarshalYAML() (any, error)       { return redacted, nil }
func (s Secret) Equal(o Secret) bool           { return s.v == o.v }
func (s Secret) redactorValue() (string, bool) { return s.v, s.v != "" }

// Info describes a stored credential without its value.
type Info struct {
	Name      string    `json:"name"`
	Backend   string    `json:"backend"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// Backend is one credential store.
type Backend interface {
	// Name identifies the backend in listings ("file", "env").
	Name() string
	// Get returns the value, or an error wrapping ErrNotFound.
	Get(ctx context.Context, name string) (Secret, error)
	// List describes the stored credentials, never their values.
	List(ctx context.Context) ([]Info, error)
	// Set stores a value; read-only backends return an error saying so.
	Set(ctx context.Context, name string, value Secret) error
	// Delete removes a value; deleting a missing name wraps ErrNotFound.
	Delete(ctx context.Context, name string) error
}

var namePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,127}$`)

// ValidName checks a credential name: letters, digits, _ . -, starting
// with a letter or underscore, at most 128 characters.
func ValidName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("credential name %q is not valid: use letters, digits, _ . - (like NVIDIA_API_KEY)", name)
	}
	return nil
}

// Chain looks names up in each backend in order (the file, then the
// environment); writes go to the first.
type Chain []Backend

// Name is "chain".
func (c Chain) Name() string { return "chain" }

// Get returns the first backend's value for name.
func (c Chain) Get(ctx context.Context, name string) (Secret, error) {
	var tried []string
	for _, b := range c {
		s, err := b.Get(ctx, name)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return Secret{}, err
		}
		tried = append(tried, b.Name())
	}
	return Secret{}, fmt.Errorf("%w: %q is in none of %v; add it with: nemoclave provider add %s", ErrNotFound, name, tried, name)
}

// List merges the backends' listings; an earlier backend hides a later
// one's entry of the same name.
func (c Chain) List(ctx context.Context) ([]Info, error) {
	seen := map[string]bool{}
	var out []Info
	for _, b := range c {
		infos, err := b.List(ctx)
		if err != nil {
			return nil, err
		}
		for _, i := range infos {
			if !seen[i.Name] {
				seen[i.Name] = true
				out = append(out, i)
			}
		}
	}
	return out, nil
}

// Set writes to the first backend.
func (c Chain) Set(ctx context.Context, name string, value Secret) error {
	if len(c) == 0 {
		return errors.New("no credential backend configured")
	}
	return c[0].Set(ctx, name, value)
}

// Delete removes from the first backend.
func (c Chain) Delete(ctx context.Context, name string) error {
	if len(c) == 0 {
		return errors.New("no credential backend configured")
	}
	return c[0].Delete(ctx, name)
}

// Default is the daemon's store: the file in home, then the environment.
func Default(home string) Chain {
	return Chain{NewFile(home), Env{}}
}
