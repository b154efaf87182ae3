// Package netnsx runs code inside a network namespace without moving the
// calling goroutine's thread. Sockets (netlink, packet, TCP) are bound to
// the namespace of the thread that creates them and keep it afterwards,
// so kernel-facing code creates its sockets through Do and may use them
// from any goroutine.
package netnsx

import (
	"context"
	"fmt"
	"net"
	"runtime"

	"github.com/vishvananda/netns"
)

// NS is a network namespace handle; None means "the caller's namespace".
type NS = netns.NsHandle

// None is the zero handle: run in the current namespace.
func None() NS { return netns.None() }

// Do runs fn in namespace ns. With ns == None() fn runs directly. Otherwise
// fn runs on a fresh OS thread that is switched into ns and thrown away
// afterwards (the goroutine exits locked), so no other goroutine is ever
// scheduled on a thread in the wrong namespace.
func Do(ns NS, fn func() error) error {
	if !ns.IsOpen() {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread dies with this goroutine.
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter netns: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Dial returns a dial function whose sockets are created in ns (for
// health checks and test clients in a namespace).
func Dial(ns NS) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := Do(ns, func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// Listen opens a listener in ns.
func Listen(ns NS, network, addr string) (net.Listener, error) {
	var l net.Listener
	err := Do(ns, func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}
