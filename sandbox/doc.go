// Package sandbox defines the contract between the runtime and a sandbox
// driver: the Driver interface, the Spec a sandbox is created from, and the
// Info a driver reports about it.
//
// A sandbox is where an agent runs. The promise a driver makes is that the
// agent cannot read what its policy does not grant, cannot write outside the
// writable roots, and cannot reach anything but the gateway listeners the
// driver created for it. A driver that cannot keep that promise on the host
// it runs on refuses to start the sandbox; it never degrades silently.
//
// This package owns the types only. Drivers live in subpackages (local,
// later kubernetes). It must not import the gateway, the host or any driver,
// and it must not start processes itself.
package sandbox
