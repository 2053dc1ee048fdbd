package serve

import (
	"context"
	"sync"

	"github.com/nemoclave/nemoclave/host/credentials"
)

// daemonCredentials resolves credential("NAME") from credentials.json,
// then the daemon's environment, and redacts every value it has handed to
// a plugin from text leaving the gateway.
func daemonCredentials(home string) (lookup func(string) (string, error), redact func(string) string, err error) {
	store := credentials.Default(home)
	var mu sync.Mutex
	// Every value the daemon may hand out: the stored ones now, and
	// environment values as they are resolved.
	var used []credentials.Secret
	if infos, err := store.List(context.Background()); err == nil {
		for _, i := range infos {
			if s, err := store.Get(context.Background(), i.Name); err == nil {
				used = append(used, s)
			}
		}
	} else {
		return nil, nil, err
	}
	red := credentials.NewRedactor(used...)
	lookup = func(name string) (string, error) {
		s, err := store.Get(context.Background(), name)
		if err != nil {
			return "", err
		}
		mu.Lock()
		used = append(used, s)
		red = credentials.NewRedactor(used...)
		mu.Unlock()
		return s.Reveal(), nil
	}
	redact = func(text string) string {
		mu.Lock()
		r := red
		mu.Unlock()
		return r.Redact(text)
	}
	return lookup, redact, nil
}
