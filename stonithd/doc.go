// Package stonithd is ringmaster's fencer: the part of the resource manager
// that powers off or reboots a node the cluster lost uncleanly, so its
// resources can be recovered elsewhere without running twice.
//
// It is split the way the rest of ringmaster is (see
// shared/design/STYLE.md, "Pure core, thin driver"):
//
//   - Device (device.go) is a fence device built from a CIB primitive of
//     class stonith, with Pacemaker's pcmk_host_* handling; it is pure.
//   - Metadata (metadata.go) parses a fence agent's meta-data XML.
//   - Topology (topology.go) is the CIB's fencing-topology.
//   - Fencer (fencer.go) is the pure core: requests, device and level
//     selection, retries and timeouts, with time as an input. It never
//     runs anything: it emits Commands and is told their Results.
//   - History (history.go) is the bounded, mergeable fence history that
//     every node keeps and the ringd wiring replicates over the ring.
//   - Driver (driver.go) owns goroutines and the clock; it runs the core's
//     Commands through an Executor (stonithd/agent implements one for
//     Debian's fence-agents, builtin:fence-script and builtin:fence-vsock).
//
// The package is a library: ringd does not use it yet (see README.md).
package stonithd
