package sandbox

import (
	"fmt"
	"regexp"
	"sync"
)

// MaxNameLen is the longest sandbox name. Names become cgroup and
// directory names on the local driver and label values and object-name
// prefixes on Kubernetes, whose DNS labels stop at 63 characters; 48 leaves
// room for the suffixes the drivers add.
const MaxNameLen = 48

// nameRE is compiled on first use: its {0,46} repetition is a large
// program, and compiling it at package initialisation cost every process
// that links this package (each sandbox's init stage among them) about
// 4 % of its start-up CPU.
var nameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$`)
})

// ValidName checks a sandbox name: 1-48 lower-case letters, digits and
// '-', starting and ending with a letter or digit (a DNS label, so one name
// works on every driver). It is the one place the rule lives: the
// blueprint language reports a violation as a diagnostic, and every driver
// refuses it again in Create as a last line of defence.
func ValidName(name string) error {
	if !nameRE().MatchString(name) {
		return fmt.Errorf("sandbox name %q is not valid: use 1-%d lower-case letters, digits and '-', starting and ending with a letter or digit (like %q)", name, MaxNameLen, suggestName(name))
	}
	return nil
}

// suggestName turns an invalid name into the nearest valid one, for the
// error message.
func suggestName(name string) string {
	b := make([]byte, 0, len(name))
	for i := 0; i < len(name) && len(b) < MaxNameLen; i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b = append(b, c)
		case len(b) > 0 && b[len(b)-1] != '-':
			b = append(b, '-')
		}
	}
	for len(b) > 0 && b[len(b)-1] == '-' {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return "sandbox"
	}
	return string(b)
}
