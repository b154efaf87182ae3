package cpg_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"ringmaster/clients/cpg"
)

// A process joins a group, multicasts to it and follows its events: the
// membership change with itself in it, the ring it is on, then its own
// message, in the order every member of the group sees them.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := cpg.Dial(ctx, socket) // e.g. "/run/ringmaster/ringd.sock"
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if err := c.Join(ctx, "example"); err != nil {
		log.Fatal(err)
	}
	// Mcast fails with cpg.ErrTryAgain (cpg.IsTryAgain) when ringd's
	// queue is full or the cluster is re-synchronising after a
	// membership change: nothing was sent, try again later.
	if err := c.Mcast(ctx, cpg.Agreed, []byte("hello")); err != nil {
		log.Fatal(err)
	}

	for ev := range c.Events() {
		switch ev.Kind {
		case cpg.EventConfChg:
			fmt.Printf("%s: %d member(s), joined: node %d reason %s\n", ev.Group, len(ev.Members), ev.Joined[0].NodeID, ev.Joined[0].Reason)
		case cpg.EventTotemConf:
			fmt.Printf("ring: nodes %v\n", ev.Nodes)
		case cpg.EventMessage:
			fmt.Printf("%s: %q from node %d\n", ev.Group, ev.Data, ev.Sender.NodeID)
			return
		}
	}
	// Output:
	// example: 1 member(s), joined: node 1 reason join
	// ring: nodes [1]
	// example: "hello" from node 1
}
