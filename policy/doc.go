// Package policy defines the effective policy: the fully merged, typed set of
// rules (presets, blueprint rules and operator approvals) that bounds one
// sandbox. The blueprint evaluator produces it; the sandbox driver enforces its
// filesystem, process and Landlock parts; the egress gateway enforces its
// network part.
//
// This package owns the type, its validation and its canonical JSON form. It
// must not parse HCL, touch the filesystem, or know how a rule is enforced.
package policy
