// Command ringd is the ringmaster daemon: one process per node running the
// Totem ring, the executive and its services, and the local IPC socket.
//
//	ringd -c FILE [--node ID|NAME] [--socket PATH]
//	ringd --check -c FILE
//	ringd --version
//
// SIGTERM/SIGINT leave the ring gracefully and exit 0; SIGHUP reloads the
// configuration: keys, IPC allowlists and [logging] (level, outputs,
// format) are applied, a cipher change or a file that fails validation is
// rejected (the running configuration stays), and every other change waits
// for a restart, listed as pending in `ringctl status --json` and cmap
// (internal/daemon/reload.go).
//
// --check validates the file and reads the keyfiles as startup does, so it
// fails exactly when ringd would refuse to start.
//
// RINGD_CPUPROFILE=FILE (a "%p" in FILE becomes the PID) writes a CPU profile
// from start to a graceful exit, for `go tool pprof`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"ringmaster/config"
	"ringmaster/internal/daemon"
	"ringmaster/internal/logging"
	"ringmaster/internal/version"
)

func main() {
	var (
		cfgPath, node, socket string
		check, showVersion    bool
	)
	cmd := &cobra.Command{
		Use:           "ringd -c FILE [--node ID|NAME] [--socket PATH]",
		Short:         "The ringmaster cluster daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if showVersion {
				fmt.Println("ringd", version.String())
				return nil
			}
			if check {
				if code := config.Check(cfgPath, os.Stdout, os.Stderr); code != 0 {
					os.Exit(code)
				}
				return nil
			}
			return run(cfgPath, node, socket)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfgPath, "config", "c", "/etc/ringmaster/corosync.toml", "configuration file")
	f.StringVar(&node, "node", "", "this node's nodeid or name (default: the node whose ring0_addr is a local address)")
	f.StringVar(&socket, "socket", "", "IPC socket path (overrides [ipc] socket)")
	f.BoolVar(&check, "check", false, "validate the configuration, print the effective values and exit")
	f.BoolVar(&showVersion, "version", false, "print the version and exit")
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "ringd:", err)
		os.Exit(1)
	}
}

// tuneRuntime sets the Go runtime for a daemon whose first duty is to pass
// the token on time. Unless the operator set GOMAXPROCS/GOGC:
//   - more Ps than cores, so a goroutine woken by the network (the token)
//     finds a free P even while CPU-heavy work (scheduling, big messages)
//     keeps the others busy — competing goroutines, unlike competing
//     processes, otherwise delay it by a full scheduler slice;
//   - a lazier garbage collector: ringd's live heap is small and most
//     garbage is message buffers, so GC at 400 % halves its CPU per large
//     message at a modest memory cost.
func tuneRuntime() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(max(runtime.NumCPU(), 4) + 4)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

// startProfile writes a CPU profile to $RINGD_CPUPROFILE (a "%p" in the
// name becomes the PID, so several nodes of one host do not collide) until
// ringd exits; the returned function stops it. For measurements only.
func startProfile() func() {
	path := os.Getenv("RINGD_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	path = strings.ReplaceAll(path, "%p", fmt.Sprint(os.Getpid()))
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ringd: RINGD_CPUPROFILE:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "ringd: RINGD_CPUPROFILE:", err)
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

func run(cfgPath, node, socket string) error {
	tuneRuntime()
	defer startProfile()()
	// Logging comes from the file; a file that does not load is reported
	// on stderr by New below.
	logCfg := config.Default().Logging
	if c, err := config.Load(cfgPath); err == nil {
		logCfg = c.Logging
	}
	log, err := logging.New(logCfg)
	if err != nil {
		return err
	}
	defer log.Close()
	d, err := daemon.New(daemon.Options{
		ConfigPath:      cfgPath,
		Node:            node,
		Socket:          socket,
		Version:         version.String(),
		Log:             log.Logger,
		OnReloadLogging: log.Apply,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		for s := range sigs {
			if s == syscall.SIGHUP {
				_ = d.Reload()
				continue
			}
			cancel()
			return
		}
	}()
	return d.Run(ctx)
}
