package stonithd_test

import (
	"context"
	"fmt"
	"time"

	"ringmaster/stonithd"
)

// Example shows the ringd wiring in miniature: two nodes' drivers, the
// first fences, its new history entry travels as a MsgHistory message and
// the second merges it.
func Example() {
	ok := stonithd.ExecutorFunc(func(ctx context.Context, c stonithd.Command) stonithd.CommandResult {
		return stonithd.CommandResult{RC: 0}
	})
	ring := make(chan []byte, 4)
	n1 := stonithd.NewDriver(stonithd.DriverConfig{
		Fencer:   stonithd.Config{Node: "n1"},
		Executor: ok,
		OnHistory: func(es []stonithd.Entry) {
			msg, _ := stonithd.EncodeHistory(es)
			ring <- msg
		},
	})
	defer n1.Close()
	n2 := stonithd.NewDriver(stonithd.DriverConfig{Fencer: stonithd.Config{Node: "n2"}, Executor: ok})
	defer n2.Close()

	dev, _ := stonithd.NewDeviceFromParams("pdu", "fence_apc", map[string]string{"ip": "10.0.0.9", "pcmk_host_map": "n3:3"}, nil, nil, stonithd.DeviceOptions{})
	n1.SetDevices([]*stonithd.Device{dev})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := n1.Fence(ctx, stonithd.Request{Target: "n3", Action: stonithd.ActionReboot, Client: "controld"})
	fmt.Println(out.Entry.Target, out.Entry.Action, out.Entry.Device, out.Entry.Result, err)

	entries, _ := stonithd.DecodeHistory(<-ring)
	n2.MergeHistory(entries)
	h := n2.History()
	fmt.Println(len(h), h[0].Target, h[0].Result, h[0].Executioner)
	// Output:
	// n3 reboot pdu success <nil>
	// 1 n3 success n1
}
