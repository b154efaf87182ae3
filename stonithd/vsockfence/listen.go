package vsockfence

import (
	"context"
	"net"

	"github.com/mdlayher/vsock"
)

// ListenVsock listens on an AF_VSOCK port of this host (any CID).
//
// Untested here: the build and test machines have no vsock host device,
// so only the protocol is tested, over Unix sockets and net.Pipe. On a
// KVM host this needs the vhost_vsock module loaded.
func ListenVsock(port uint32) (net.Listener, error) {
	return vsock.Listen(port, nil)
}

// VsockDialer dials the host (cid DefaultHostCID) or another context id.
// Untested here for the same reason as ListenVsock.
func VsockDialer(cid, port uint32) Dialer {
	return func(ctx context.Context) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			c, err := vsock.Dial(cid, port, nil)
			ch <- result{c, err}
		}()
		select {
		case r := <-ch:
			return r.c, r.err
		case <-ctx.Done():
			go func() {
				if r := <-ch; r.c != nil {
					r.c.Close()
				}
			}()
			return nil, ctx.Err()
		}
	}
}

// UnixDialer dials a Unix socket (tests and local stand-ins).
func UnixDialer(path string) Dialer {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}
}
