package exectest

import (
	"context"
	"errors"
	"testing"
	"time"

	"ringmaster/ipc"
)

// Request is one seed of FuzzRequests: a message ID and its payload.
type Request struct {
	Msg     uint16
	Payload []byte
}

// FuzzRequests fuzzes the IPC request handler of one service: o's cluster
// is served (Serve) and every input (message ID, payload) is sent
// as a request of service on one client connection of node 1. Each must
// be answered, with a reply or an error reply; a panic in the service
// kills the fuzzing process, and a request left unanswered or a
// connection closed fails the input. State carries over between inputs,
// as it would for a client that keeps sending.
func FuzzRequests(f *testing.F, o Options, service uint16, seeds ...Request) {
	for _, s := range seeds {
		f.Add(s.Msg, s.Payload)
	}
	f.Add(uint16(0xffff), []byte{})
	_, socks := Serve(f, o)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	cl, err := ipc.Dial(ctx, socks[0])
	cancel()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { cl.Close() })
	go func() {
		for range cl.Events() {
		}
	}()
	f.Fuzz(func(t *testing.T, msg uint16, payload []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := cl.Call(ctx, service, msg, payload)
		var e *ipc.Error
		if err != nil && !errors.As(err, &e) {
			t.Fatalf("service %d message %d (%d bytes): no answer: %v", service, msg, len(payload), err)
		}
		if e != nil && e.Code == ipc.CodeInternal {
			t.Fatalf("service %d message %d: internal error: %v", service, msg, e)
		}
	})
}
