// Package image assembles nemoclave's container images offline, with no
// container engine and no base image: an OCI image layout (the format of
// `podman save --format oci-archive` and `skopeo copy oci-archive:`) is a
// tar of content-addressed blobs, written here with the standard library
// from the static binaries `make image` builds.
//
// Two images come from one description (Images): the daemon/gateway image
// (nemoclave and every builtin plugin) and the sandbox base image (the
// nemoclave binary the in-pod supervisor runs; agent tools are added on top
// with a Containerfile FROM it). Both are scratch-based: the only files
// are the binaries, /etc/passwd and /etc/group naming the unprivileged user
// 65532, the host's CA bundle, and writable directories owned by that user.
//
// Beside each archive it writes a CycloneDX SBOM (from the Go build
// information of every binary) and an ECDSA P-256 signature of the image
// manifest in cosign's blob format, verifiable with `cosign verify-blob`.
// Layers are reproducible: fixed timestamps and owners, sorted entries.
package image
