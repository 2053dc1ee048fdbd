// Package wsfs is how host-side code touches a sandbox's workspace on the
// agent's behalf (the gateway's document tools, tools-files). The agent
// controls every byte of the workspace, including its symlinks, FIFOs and
// how fast it swaps them, so each operation here is built to be decided by
// the kernel at open time rather than checked first and used later:
//
//   - reads resolve with openat2(RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS):
//     symlinks inside the workspace work, any that leads out (absolute, or
//     ".." past the root) fails in the kernel, whatever the agent swaps in
//     between (T1, T2);
//   - writes resolve with RESOLVE_NO_SYMLINKS as well, one directory at a
//     time, so the path written is exactly the path checked against the
//     sandbox's protected list (T4, F17);
//   - every open is O_NONBLOCK|O_NOCTTY and is followed by fstat on the
//     descriptor: FIFOs, sockets and devices are refused before a single
//     byte moves, and a FIFO without a writer cannot block a thread (T3);
//   - every read is bounded by a size given by the caller (checked on the
//     descriptor's size before reading, and again while reading, since the
//     agent may grow the file) and by the caller's context; a Dir also
//     bounds how many operations run at once, so thousands of concurrent
//     calls wait in goroutines instead of holding threads and descriptors.
//
// It owns path mapping and these rules; it must not know about tools, MCP
// or plugins.
package wsfs
