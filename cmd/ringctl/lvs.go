package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"ringmaster/lrmd/agents"
	"ringmaster/lrmd/agents/lvs"
)

func newLVSCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "lvs", Short: "Show LVS virtual services (like ipvsadm -Ln)"}
	var runDir string
	list := &cobra.Command{
		Use:   "list",
		Short: "List virtual services and real servers with weight and health",
		Long: `List the virtual services installed in the kernel (IPVS, and ringmaster's
nftables table "ip ringmaster_lvs"), like ipvsadm -Ln. Weights and real
servers are read back from the kernel; health comes from the state files the
lvs agent keeps in RUN_DIR/lvs ("unknown" without one). Real servers that
are configured but currently taken out (unhealthy) are listed with weight 0
and marked "out".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			rep, err := collectLVS(ctx, runDir)
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			printLVS(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	list.Flags().StringVar(&runDir, "run-dir", envOr("RINGMASTER_RUN_DIR", lvs.DefaultRunDir), "runtime state directory (env RINGMASTER_RUN_DIR)")
	cmd.AddCommand(list)
	return cmd
}

type lvsBackendInfo struct {
	Name      string `json:"name"`
	Available bool   `json:"available"`
	Error     string `json:"error,omitempty"`
}

type lvsRealServer struct {
	Addr     string `json:"addr"`
	Weight   int    `json:"weight"` // in the kernel (0 when taken out)
	Config   int    `json:"configured_weight,omitempty"`
	Health   string `json:"health"`
	InKernel bool   `json:"in_kernel"`
	Sorry    bool   `json:"sorry_server,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

type lvsServiceInfo struct {
	Service     string          `json:"service"`
	Backend     string          `json:"backend"`
	Scheduler   string          `json:"scheduler"`
	Method      string          `json:"method"`
	Persistence uint32          `json:"persistence,omitempty"`
	Masquerade  bool            `json:"masquerade,omitempty"`
	Check       string          `json:"check,omitempty"`
	Checking    bool            `json:"checking"`
	RealServers []lvsRealServer `json:"realservers"`
}

type lvsReport struct {
	Backends []lvsBackendInfo `json:"backends"`
	Services []lvsServiceInfo `json:"services"`
}

func collectLVS(ctx context.Context, runDir string) (*lvsReport, error) {
	states, err := lvs.ReadStates(runDir)
	if err != nil {
		return nil, err
	}
	byService := map[string]lvs.State{}
	for _, st := range states {
		byService[st.Service+"|"+st.Backend] = st
	}
	rep := &lvsReport{Backends: []lvsBackendInfo{}, Services: []lvsServiceInfo{}}
	for _, f := range agents.LVSBackends() {
		b, err := f.Open()
		if err != nil {
			rep.Backends = append(rep.Backends, lvsBackendInfo{Name: f.Name, Error: err.Error()})
			continue
		}
		svcs, err := b.List(ctx)
		b.Close()
		if err != nil {
			rep.Backends = append(rep.Backends, lvsBackendInfo{Name: f.Name, Available: true, Error: err.Error()})
			continue
		}
		rep.Backends = append(rep.Backends, lvsBackendInfo{Name: f.Name, Available: true})
		for _, s := range svcs {
			rep.Services = append(rep.Services, mergeLVS(s, f.Name, byService[s.Key.String()+"|"+f.Name]))
		}
	}
	return rep, nil
}

// mergeLVS combines the kernel view of a service with the agent's state
// file (configured weights, health).
func mergeLVS(s lvs.Service, backend string, st lvs.State) lvsServiceInfo {
	info := lvsServiceInfo{Service: s.Key.String(), Backend: backend, Scheduler: s.Scheduler, Method: string(s.Method),
		Persistence: s.Persistence, Masquerade: s.Masquerade, Check: st.Check, Checking: st.Checking, RealServers: []lvsRealServer{}}
	conf := map[string]lvs.RealServer{}
	for _, rs := range st.RealServers {
		conf[rs.Addr] = rs
	}
	seen := map[string]bool{}
	for _, d := range s.Dests {
		a := d.Addr.String()
		seen[a] = true
		rs := lvsRealServer{Addr: a, Weight: d.Weight, Health: "unknown", InKernel: true}
		if c, ok := conf[a]; ok {
			rs.Config, rs.Health, rs.Reason = c.Weight, c.Health, c.Reason
			if backend == "nftables" && d.Weight > 0 {
				// nftables holds relative weights only (map entries);
				// show the configured ones.
				rs.Weight = c.Weight
			}
		} else if st.Sorry == a {
			rs.Sorry, rs.Health = true, "sorry"
		}
		info.RealServers = append(info.RealServers, rs)
	}
	for _, c := range st.RealServers {
		if !seen[c.Addr] {
			info.RealServers = append(info.RealServers, lvsRealServer{Addr: c.Addr, Weight: 0, Config: c.Weight, Health: c.Health, Reason: c.Reason})
		}
	}
	sort.SliceStable(info.RealServers, func(i, j int) bool {
		a, _ := netip.ParseAddrPort(info.RealServers[i].Addr)
		b, _ := netip.ParseAddrPort(info.RealServers[j].Addr)
		return a.Compare(b) < 0
	})
	return info
}

var forwardNames = map[string]string{"nat": "Masq", "dr": "Route", "tun": "Tunnel"}

func printLVS(w io.Writer, rep *lvsReport) {
	var notes []string
	for _, b := range rep.Backends {
		switch {
		case !b.Available:
			notes = append(notes, b.Name+": unavailable ("+b.Error+")")
		case b.Error != "":
			notes = append(notes, b.Name+": "+b.Error)
		default:
			notes = append(notes, b.Name)
		}
	}
	fmt.Fprintf(w, "IP Virtual Server (ringmaster); backends: %s\n", strings.Join(notes, "; "))
	// ipvsadm -Ln's layout, so eyes and scripts used to it keep working.
	fmt.Fprintln(w, "Prot LocalAddress:Port Scheduler Flags")
	fmt.Fprintln(w, "  -> RemoteAddress:Port           Forward Weight Health")
	for _, s := range rep.Services {
		flags := []string{"[" + s.Backend + "]"}
		if s.Persistence > 0 {
			flags = append(flags, fmt.Sprintf("persistent %d", s.Persistence))
		}
		if s.Masquerade {
			flags = append(flags, "masquerade")
		}
		if s.Check != "" && s.Check != lvs.CheckNone {
			c := "check " + s.Check
			if !s.Checking {
				c += " (not running)"
			}
			flags = append(flags, c)
		}
		proto, addr, _ := strings.Cut(s.Service, " ")
		fmt.Fprintf(w, "%-4s %s %s %s\n", proto, addr, s.Scheduler, strings.Join(flags, " "))
		for _, rs := range s.RealServers {
			h := rs.Health
			if !rs.InKernel {
				h += " (out)"
			}
			fmt.Fprintf(w, "  -> %-28s %-7s %-6d %s\n", rs.Addr, forwardNames[s.Method], rs.Weight, h)
		}
	}
	if len(rep.Services) == 0 {
		fmt.Fprintln(w, "(no virtual services)")
	}
}
