// Command nemoclave-plugin-tools-files is a built-in tools plugin that lets
// an agent list, read, write and search files inside one directory tree, the
// workspace, and nowhere else.
//
// Every path is opened through an os.Root on the configured root, so the
// kernel-level resolution of "..", absolute paths and symlinks cannot leave
// the tree: a symlink that points outside, or a path that climbs above the
// root, fails with a readable tool error instead of touching the file. The
// sandbox adds its own walls (Landlock, a read-only system view); this
// plugin does not rely on them.
//
// Failures the model can fix (no such file, bad regex, too large) are tool
// results with IsError set; Go errors are kept for failures of the plugin
// itself. This package owns only its config and the files below root; it
// must not open anything else.
package main
