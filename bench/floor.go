package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
	err = pacedRoundTrips(&h, rate, d, func() error {
		if _, err := cl.Write(msg); err != nil {
			return err
		}
		_ = cl.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := cl.Read(buf); err != nil {
			return errLostRoundTrip // lost on a loaded machine: not a round trip
		}
		return nil
	})
	if err != nil {
		return LatencyUS{}, fmt.Errorf("udp floor: %w", err)
	}
	return h.Summary(), nil
}

// errLostRoundTrip marks a round trip that got no answer: not counted.
var errLostRoundTrip = errors.New("round trip lost")

// pacedRoundTrips runs one round trip every 1/rate seconds for d and
// records the completed ones in h.
func pacedRoundTrips(h *Histogram, rate int, d time.Duration, roundTrip func() error) error {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.Now().Add(d)
	for now := range tick.C {
		if now.After(end) {
			break
		}
		t0 := time.Now()
		if err := roundTrip(); err != nil {
			if errors.Is(err, errLostRoundTrip) {
				continue
			}
			return err
		}
		h.Record(time.Since(t0))
	}
	if h.Count() == 0 {
		return errors.New("no round trip completed")
	}
	return nil
}

// ProcessFloor measures the floor under any client/daemon round trip on
// this machine: 64 bytes echoed over a Unix stream socket by another
// process, paced like UDPFloor. UDPFloor's two goroutines share one
// process, so its round trip usually runs on a single thread that never
// sleeps; a client and a daemon are two processes, and each direction
// wakes a sleeping process (on a virtual machine, often an idle virtual
// CPU). No client/daemon design (ringd, corosync) can beat this floor
// without busy-polling; the ratio between the two floors says what the
// machine charges for the process boundary.
//
// echo is the command line of the echo process (`pload echo`, see
// ServeEcho); the socket path is appended to it.
func ProcessFloor(ctx context.Context, rate int, d time.Duration, echo []string) (LatencyUS, error) {
	if rate <= 0 || d <= 0 || len(echo) == 0 {
		return LatencyUS{}, fmt.Errorf("process floor: rate %d, duration %v, echo %q", rate, d, echo)
	}
	dir, err := os.MkdirTemp("", "ringmaster-floor-")
	if err != nil {
		return LatencyUS{}, fmt.Errorf("process floor: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "echo.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		return LatencyUS{}, fmt.Errorf("process floor: %w", err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, echo[0], append(echo[1:], path)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return LatencyUS{}, fmt.Errorf("process floor: start %s: %w", echo[0], err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	_ = l.(*net.UnixListener).SetDeadline(time.Now().Add(10 * time.Second))
	c, err := l.Accept()
	if err != nil {
		return LatencyUS{}, fmt.Errorf("process floor: echo process %s did not connect: %w", echo[0], err)
	}
	defer c.Close()
	msg, buf := make([]byte, 64), make([]byte, 64)
	var h Histogram
	err = pacedRoundTrips(&h, rate, d, func() error {
		if _, err := c.Write(msg); err != nil {
			return err
		}
		_, err := io.ReadFull(c, buf)
		return err
	})
	if err != nil {
		return LatencyUS{}, fmt.Errorf("process floor: %w", err)
	}
	return h.Summary(), nil
}

// ServeEcho is the echo process of ProcessFloor: it connects to the Unix
// socket at path and writes back whatever it reads until the connection
// ends.
func ServeEcho(path string) error {
	c, err := net.Dial("unix", path)
	if err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return nil
			}
		}
		if err != nil {
			return nil
		}
	}
}
