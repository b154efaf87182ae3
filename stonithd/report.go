package stonithd

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// DeviceInfo is a device as `ringctl stonith list --json` prints it.
type DeviceInfo struct {
	ID           string   `json:"id"`
	Agent        string   `json:"agent"`
	HostCheck    string   `json:"host_check"`
	HostArgument string   `json:"host_argument"`
	Hosts        []string `json:"hosts"` // pcmk_host_list and pcmk_host_map nodes; empty for dynamic checks
	Priority     int      `json:"priority"`
	Disabled     bool     `json:"disabled"`
}

// DescribeDevices renders devices for the CLI, in the order given.
func DescribeDevices(ds []*Device) []DeviceInfo {
	out := make([]DeviceInfo, 0, len(ds))
	for _, d := range ds {
		hosts := append([]string{}, d.HostList...)
		for _, n := range d.HostMap.Nodes() {
			if !containsFold(hosts, n) {
				hosts = append(hosts, n)
			}
		}
		out = append(out, DeviceInfo{ID: d.ID, Agent: d.Agent, HostCheck: string(d.HostCheck), HostArgument: d.HostArgument,
			Hosts: hosts, Priority: d.Priority, Disabled: d.Disabled})
	}
	return out
}

// LevelInfo is a fencing level as `ringctl stonith levels --json` prints it.
type LevelInfo struct {
	ID      string   `json:"id"`
	Target  string   `json:"target"` // node, "~regexp" or "attr=value"
	Index   int      `json:"index"`
	Devices []string `json:"devices"`
}

// DescribeTopology renders the topology in document order.
func DescribeTopology(t *Topology) []LevelInfo {
	out := []LevelInfo{}
	if t == nil {
		return out
	}
	for _, l := range t.Levels {
		out = append(out, LevelInfo{ID: l.ID, Target: l.TargetString(), Index: l.Index, Devices: append([]string(nil), l.Devices...)})
	}
	return out
}

// WriteDevices prints devices as a table.
func WriteDevices(w io.Writer, ds []DeviceInfo) error {
	if len(ds) == 0 {
		_, err := fmt.Fprintln(w, "no fence devices")
		return err
	}
	for _, d := range ds {
		state := ""
		if d.Disabled {
			state = " (disabled)"
		}
		hosts := strings.Join(d.Hosts, ",")
		if hosts == "" {
			hosts = "-"
		}
		if _, err := fmt.Fprintf(w, "%s\t%s\tcheck=%s\targ=%s\tpriority=%d\thosts=%s%s\n", d.ID, d.Agent, d.HostCheck, d.HostArgument, d.Priority, hosts, state); err != nil {
			return err
		}
	}
	return nil
}

// WriteLevels prints levels the way stonith_admin --list-levels does:
// grouped by target, by index.
func WriteLevels(w io.Writer, ls []LevelInfo) error {
	if len(ls) == 0 {
		_, err := fmt.Fprintln(w, "no fencing levels")
		return err
	}
	for _, l := range ls {
		if _, err := fmt.Fprintf(w, "Target: %s\n  Level %d - %s\n", l.Target, l.Index, strings.Join(l.Devices, ",")); err != nil {
			return err
		}
	}
	return nil
}

// WriteHistory prints entries newest first, one line each, like
// stonith_admin --history.
func WriteHistory(w io.Writer, es []Entry) error {
	if len(es) == 0 {
		_, err := fmt.Fprintln(w, "no fencing history")
		return err
	}
	for i := len(es) - 1; i >= 0; i-- {
		e := es[i]
		verdict := "successful"
		if e.Result != ResultSuccess {
			verdict = "failed"
		}
		line := fmt.Sprintf("%s of %s %s: device=%s, executioner=%s, origin=%s, completed='%s'",
			e.Action, e.Target, verdict, orDash(e.Device), e.Executioner, e.Origin, e.Time.Format(time.RFC3339))
		if e.Client != "" {
			line += ", client=" + e.Client
		}
		if e.Reason != "" {
			line += ", reason=" + e.Reason
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
