// Package wire holds the executive's numbers that clients share: the
// service IDs, which name a service both on the ring and on the IPC socket.
// It imports nothing, so client libraries can use it without depending on
// the executive.
package wire

// ServiceID numbers a service on the ring and on the IPC socket. Numbers are
// part of the protocol: append only.
type ServiceID uint16

// Service IDs.
const (
	ServiceExec    ServiceID = 0 // the executive itself (handshake, sync barrier)
	ServiceCPG     ServiceID = 1
	ServiceQuorum  ServiceID = 2
	ServiceConfdb  ServiceID = 3
	ServiceCRM     ServiceID = 4
	ServiceLRMD    ServiceID = 5
	ServiceStonith ServiceID = 6
	ServiceStatus  ServiceID = 7 // node/ring status for ringctl
	// ServiceReconfig: the cluster-wide configuration reload (reconfig).
	ServiceReconfig ServiceID = 8
)
