// Package version holds the nemoclave release version. Blueprints check
// their `nemoclave { required_version }` constraint against it and the CLI
// prints it. It must not import anything: every package may depend on it.
package version

// Version is the nemoclave release this binary was built from, in semantic
// version form without a leading "v".
const Version = "0.1.0"
