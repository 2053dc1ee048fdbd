package termquiet

import "os"

// set is true when init set CI (it was not set before).
var set bool

func init() {
	if _, ok := os.LookupEnv("CI"); !ok {
		set = os.Setenv("CI", "1") == nil
	}
}

// Restore undoes init's change. Call it first in main.
func Restore() {
	if set {
		_ = os.Unsetenv("CI")
		set = false
	}
}
