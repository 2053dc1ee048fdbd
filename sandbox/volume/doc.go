// Package volume bounds a sandbox workspace's total size (catalogue row
// P11): for the length of a run the workspace directory is covered by a
// loop-mounted ext4 image of the bound's size, built from the directory's
// files and copied back into it at the end.
//
// It owns the images under the daemon's volumes directory and the loop
// mounts it makes over workspace directories; it must not touch other
// mounts, and it must never remove an image whose files have not been
// copied back: the error then says where they are.
package volume
