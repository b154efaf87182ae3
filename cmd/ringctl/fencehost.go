package main

import (
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"ringmaster/stonithd/vsockfence"
)

// newFenceHostCmd is the hypervisor-side responder of builtin:fence-vsock:
// guests holding the shared key ask it to power-cycle a VM, and it runs
// the --exec command for that VM.
func newFenceHostCmd(_ *globals) *cobra.Command {
	var (
		vsockPort uint32
		unixPath  string
		execCmd   string
		keyFile   string
		allow     string
		timeout   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "fence-host",
		Short: "Run the host-side responder of builtin:fence-vsock",
		Long: `Listen for fencing requests from cluster nodes running as VMs on this host
and run --exec for the VM named in each authenticated request. {vm} is
replaced by the VM name and {action} by reboot, off, on or status; without
{action} only reboot (power-cycle) is accepted. The command is split on
blanks and run without a shell. Requests must carry an HMAC under the key
in --key-file (the guests' key_file), be fresh and not replayed; --allow
restricts the VM names that may be fenced.

  ringctl fence-host --listen-vsock 1229 --key-file /etc/ringmaster/fence-vsock.key \
      --exec 'virsh reset {vm}' --allow '^cluster1-'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tmpl, err := vsockfence.ParseTemplate(execCmd)
			if err != nil {
				return err
			}
			tmpl.Limit = timeout
			key, err := vsockfence.LoadKey(keyFile)
			if err != nil {
				return err
			}
			var re *regexp.Regexp
			if allow != "" {
				if re, err = regexp.Compile(allow); err != nil {
					return fmt.Errorf("--allow: %w", err)
				}
			}
			var ln net.Listener
			switch {
			case cmd.Flags().Changed("listen-vsock") && unixPath != "":
				return errors.New("use one of --listen-vsock and --listen-unix")
			case cmd.Flags().Changed("listen-vsock"):
				ln, err = vsockfence.ListenVsock(vsockPort)
			case unixPath != "":
				ln, err = net.Listen("unix", unixPath)
			default:
				return errors.New("--listen-vsock PORT (or --listen-unix PATH) is required")
			}
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			logger := log.New(cmd.ErrOrStderr(), "", log.LstdFlags)
			logger.Printf("fence-host: listening on %s", ln.Addr())
			srv := &vsockfence.Server{Key: key, Power: tmpl.Power, Allow: re, Logf: logger.Printf}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return srv.Serve(ctx, ln)
		},
	}
	cmd.Flags().Uint32Var(&vsockPort, "listen-vsock", vsockfence.DefaultPort, "AF_VSOCK port to listen on")
	cmd.Flags().StringVar(&unixPath, "listen-unix", "", "listen on a Unix socket instead (testing)")
	cmd.Flags().StringVar(&execCmd, "exec", "", "command run per request, with {vm} and optionally {action}")
	cmd.Flags().StringVar(&keyFile, "key-file", "/etc/ringmaster/fence-vsock.key", "shared key (at least 16 bytes)")
	cmd.Flags().StringVar(&allow, "allow", "", "regular expression the VM name must match")
	cmd.Flags().DurationVar(&timeout, "timeout", vsockfence.DefaultExecTimeout, "limit for the --exec command")
	_ = cmd.MarkFlagRequired("exec")
	return cmd
}
