// Package lrmd is ringmaster's local resource manager (pacemaker-execd):
// it runs resource-agent actions on this node through agent classes (ocf,
// lsb, builtin), one operation at a time per resource with timeouts that
// kill the agent's whole process group, validates parameters against the
// agents' meta-data before running them, runs recurring monitors that
// report only changes, and keeps fail counts. See README.md for the API,
// its concurrency contract and the builtin agents.
//
// The Manager does not know about the ring: the crm controller calls Exec,
// StartRecurring and Cancel and reads Events; ringctl uses the same
// Manager for one-shot `agent exec`.
package lrmd
