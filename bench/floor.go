package bench

import (
	"fmt"
	"net"
	"time"
)

// UDPFloor measures the floor under any delivery latency on this machine,
// as the yardstick (../shared/checks/udprtt) does: 64-byte UDP
// datagrams echoed over loopback between two goroutines, one round trip
// every 1/rate seconds for d, each paced like `pload run --rate` so that
// idle wake-ups count as they do there. Latency figures are stated as
// ratios to it, measured in the same run: on a shared VM the absolute
// numbers move with the machine's load.
func UDPFloor(rate int, d time.Duration) (LatencyUS, error) {
	if rate <= 0 || d <= 0 {
		return LatencyUS{}, fmt.Errorf("udp floor: rate %d, duration %v", rate, d)
	}
	srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return LatencyUS{}, fmt.Errorf("udp floor: %w", err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := srv.ReadFromUDP(buf)
			if err != nil {
				return
			}
			_, _ = srv.WriteToUDP(buf[:n], from)
		}
	}()
	cl, err := net.DialUDP("udp4", nil, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		return LatencyUS{}, fmt.Errorf("udp floor: %w", err)
	}
	defer cl.Close()
	msg, buf := make([]byte, 64), make([]byte, 2048)
	var h Histogram
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.Now().Add(d)
	for now := range tick.C {
		if now.After(end) {
			break
		}
		t0 := time.Now()
		if _, err := cl.Write(msg); err != nil {
			return LatencyUS{}, fmt.Errorf("udp floor: %w", err)
		}
		_ = cl.SetReadDeadline(t0.Add(time.Second))
		if _, err := cl.Read(buf); err != nil {
			continue // lost on a loaded machine: not a round trip
		}
		h.Record(time.Since(t0))
	}
	if h.Count() == 0 {
		return LatencyUS{}, fmt.Errorf("udp floor: no round trip completed")
	}
	return h.Summary(), nil
}
