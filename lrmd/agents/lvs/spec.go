package lvs

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"ringmaster/lrmd"
	"ringmaster/lrmd/health"
)

// Check kinds.
const (
	CheckTCP    = "tcp"
	CheckHTTP   = "http"
	CheckScript = "script"
	CheckNone   = "none"
)

// DefaultScheduler is IPVS's own default (ipvsadm without -s).
const DefaultScheduler = "wlc"

// CheckSpec configures the health checks of the real servers.
type CheckSpec struct {
	Kind     string
	Path     string
	Status   int
	Body     string
	Script   string
	Interval time.Duration
	Timeout  time.Duration
	Rise     int
	Fall     int
}

// Spec is the parsed parameters of one builtin:lvs resource.
type Spec struct {
	Key          Key
	Scheduler    string
	SchedulerSet bool // given explicitly (a defaulted scheduler may be adapted to the backend)
	Method       Method
	Persistence  uint32
	Masquerade   bool
	Real         []Dest
	Backend      string // auto, ipvs, nftables
	Check        CheckSpec
	Quiesce      bool
	Sorry        netip.AddrPort // invalid when unset
}

// metaData declares builtin:lvs's parameters. The names are fixed: they
// are the configuration interface (crm resource definitions use them).
func metaData() *lrmd.MetaData {
	return lrmd.NewMetaData("lvs", "LVS virtual service with real-server health checks (keepalived virtual_server / ldirectord)",
		`A load-balanced virtual service: connections to vip:port (or packets carrying fwmark) are spread over the real servers by the scheduler.
Backends: ipvs (the kernel IP Virtual Server, module ip_vs) or nftables (DNAT in table ip ringmaster_lvs; schedulers rr, wrr, sh, dh, mh, fo; method nat only).
Health checks run inside the long-running lrmd while the resource is started; a one-shot "ringctl agent exec ... start" does a single initial check round (so dead servers are not added) and no further checking.`,
		[]lrmd.ParamSpec{
			{Name: "vip", Short: "Virtual IP address of the service (not with fwmark)"},
			{Name: "port", Type: "integer", Short: "Virtual port (not with fwmark)"},
			{Name: "protocol", Type: "select", Default: "tcp", Options: []string{"tcp", "udp"}, Short: "Protocol of the service"},
			{Name: "fwmark", Type: "integer", Short: "Firewall-mark service instead of vip/port"},
			{Name: "scheduler", Type: "select", Default: DefaultScheduler, Options: Schedulers, Short: "Scheduler (ipvsadm -s); nftables expresses rr, wrr, sh, dh, mh and fo, and uses wrr for the default wlc"},
			{Name: "method", Type: "select", Default: "nat", Options: []string{"nat", "dr", "tun"}, Short: "Forwarding method (nftables: nat only)"},
			{Name: "persistence", Type: "integer", Default: "0", Short: "Persistence timeout in seconds (ipvsadm -p); 0 disables"},
			{Name: "realservers", Required: true, Short: "Real servers: IP:PORT[:WEIGHT],... (weight default 1, 0 = quiesced)"},
			{Name: "backend", Type: "select", Default: "auto", Options: []string{"auto", "ipvs", "nftables"}, Short: "auto: ipvs when the kernel has it, else nftables"},
			{Name: "masquerade", Type: "boolean", Default: "false", Short: "nftables: also masquerade (SNAT) forwarded connections, for real servers that do not route back via the director"},
			{Name: "check", Type: "select", Default: CheckTCP, Options: []string{CheckTCP, CheckHTTP, CheckScript, CheckNone}, Short: "Health check: TCP connect, HTTP GET, script, or none"},
			{Name: "check_path", Default: "/", Short: "HTTP check: path to GET"},
			{Name: "check_status", Type: "integer", Default: "200", Short: "HTTP check: expected status"},
			{Name: "check_body", Short: "HTTP check: substring the body must contain"},
			{Name: "check_script", Short: "Script check: shell command run as sh -c CMD sh RS_IP RS_PORT (env RS_IP, RS_PORT, VIP, VPORT); exit 0 = healthy"},
			{Name: "check_interval", Type: "duration", Default: "5s", Short: "Time between checks (an integer is seconds)"},
			{Name: "check_timeout", Type: "duration", Default: "3s", Short: "Timeout of one check (an integer is seconds)"},
			{Name: "rise", Type: "integer", Default: "2", Short: "Consecutive successes before a down server is used again"},
			{Name: "fall", Type: "integer", Default: "2", Short: "Consecutive failures before an up server is taken out"},
			{Name: "quiesce", Type: "boolean", Default: "false", Short: "Set unhealthy servers to weight 0 (existing connections continue) instead of removing them"},
			{Name: "sorry_server", Short: "IP:PORT used when no real server is healthy"},
		},
		[]lrmd.Action{
			{Name: "start", Timeout: "30s"},
			{Name: "stop", Timeout: "20s"},
			{Name: "monitor", Timeout: "20s", Interval: "10s"},
			{Name: "validate-all", Timeout: "20s"},
			{Name: "meta-data", Timeout: "5s"},
		})
}

func cfgErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
}

// ParseSpec parses and validates builtin:lvs parameters (defaults already
// filled in by the builtin class; missing ones default here too, so the
// function is usable on its own).
func ParseSpec(p map[string]string) (Spec, error) {
	get := func(k, def string) string {
		if v := strings.TrimSpace(p[k]); v != "" {
			return v
		}
		return def
	}
	var s Spec
	if fw := get("fwmark", ""); fw != "" {
		if get("vip", "") != "" || get("port", "") != "" {
			return s, cfgErr("give either fwmark or vip and port, not both")
		}
		m, err := strconv.ParseUint(fw, 10, 32)
		if err != nil || m == 0 {
			return s, cfgErr("fwmark=%q must be a positive integer", fw)
		}
		s.Key = Key{Proto: "fwm", FWMark: uint32(m)}
	} else {
		vip, err := netip.ParseAddr(get("vip", ""))
		if err != nil {
			return s, cfgErr("vip=%q is not an IP address (or give fwmark)", p["vip"])
		}
		port, err := strconv.Atoi(get("port", ""))
		if err != nil || port < 1 || port > 65535 {
			return s, cfgErr("port=%q must be 1-65535", p["port"])
		}
		proto := get("protocol", "tcp")
		if proto != "tcp" && proto != "udp" {
			return s, cfgErr("protocol=%q: want tcp or udp", proto)
		}
		s.Key = Key{Proto: proto, VIP: vip.Unmap(), Port: uint16(port)}
	}
	s.Scheduler = get("scheduler", DefaultScheduler)
	s.SchedulerSet = strings.TrimSpace(p["scheduler"]) != "" && p["scheduler"] != DefaultScheduler
	if !slices.Contains(Schedulers, s.Scheduler) {
		return s, cfgErr("scheduler=%q: want one of %s", s.Scheduler, strings.Join(Schedulers, " "))
	}
	s.Method = Method(get("method", "nat"))
	if s.Method != NAT && s.Method != DR && s.Method != Tunnel {
		return s, cfgErr("method=%q: want nat, dr or tun", s.Method)
	}
	pers, err := strconv.ParseUint(get("persistence", "0"), 10, 32)
	if err != nil {
		return s, cfgErr("persistence=%q: want seconds", p["persistence"])
	}
	s.Persistence = uint32(pers)
	s.Masquerade = lrmd.IsTrue(get("masquerade", "false"))
	if s.Real, err = ParseRealServers(get("realservers", ""), s.Key.Port); err != nil {
		return s, err
	}
	if len(s.Real) == 0 {
		return s, cfgErr("realservers is empty")
	}
	s.Backend = get("backend", "auto")
	switch s.Backend {
	case "auto", "ipvs", "nftables":
	default:
		return s, cfgErr("backend=%q: want auto, ipvs or nftables", s.Backend)
	}
	c := &s.Check
	c.Kind = get("check", CheckTCP)
	c.Path = get("check_path", "/")
	c.Body = p["check_body"]
	c.Script = strings.TrimSpace(p["check_script"])
	if c.Status, err = strconv.Atoi(get("check_status", "200")); err != nil || c.Status < 100 || c.Status > 599 {
		return s, cfgErr("check_status=%q: want an HTTP status", p["check_status"])
	}
	if c.Interval, err = parseDur(get("check_interval", "5s")); err != nil || c.Interval <= 0 {
		return s, cfgErr("check_interval=%q: want a positive duration", p["check_interval"])
	}
	if c.Timeout, err = parseDur(get("check_timeout", "3s")); err != nil || c.Timeout <= 0 {
		return s, cfgErr("check_timeout=%q: want a positive duration", p["check_timeout"])
	}
	if c.Rise, err = strconv.Atoi(get("rise", "2")); err != nil || c.Rise < 1 {
		return s, cfgErr("rise=%q: want >= 1", p["rise"])
	}
	if c.Fall, err = strconv.Atoi(get("fall", "2")); err != nil || c.Fall < 1 {
		return s, cfgErr("fall=%q: want >= 1", p["fall"])
	}
	switch c.Kind {
	case CheckTCP, CheckHTTP, CheckNone:
	case CheckScript:
		if c.Script == "" {
			return s, cfgErr("check=script needs check_script")
		}
	default:
		return s, cfgErr("check=%q: want tcp, http, script or none", c.Kind)
	}
	if c.Kind != CheckNone {
		for _, d := range s.Real {
			if d.Addr.Port() == 0 {
				return s, cfgErr("real server %s has no port to check; give IP:PORT or check=none", d.Addr.Addr())
			}
		}
	}
	s.Quiesce = lrmd.IsTrue(get("quiesce", "false"))
	if ss := get("sorry_server", ""); ss != "" {
		d, err := parseRealServer(ss, s.Key.Port)
		if err != nil {
			return s, fmt.Errorf("sorry_server: %w", err)
		}
		s.Sorry = d.Addr
	}
	return s, nil
}

func parseDur(s string) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(s)
}

// Checker builds the health checker for the spec (nil for check=none).
func (s Spec) Checker(dial health.DialFunc) health.Checker {
	switch s.Check.Kind {
	case CheckTCP:
		return health.TCP{Dial: dial}
	case CheckHTTP:
		return health.HTTP{Dial: dial, Path: s.Check.Path, Status: s.Check.Status, Body: s.Check.Body}
	case CheckScript:
		env := []string{"VIP=" + s.Key.VIP.String(), "VPORT=" + strconv.Itoa(int(s.Key.Port))}
		if s.Key.Proto == "fwm" {
			env = []string{"FWMARK=" + strconv.FormatUint(uint64(s.Key.FWMark), 10)}
		}
		return health.Script{Command: s.Check.Script, Env: env}
	}
	return nil
}

// Desired computes the service to apply from the spec and the real
// servers' health. Healthy servers (and, with no checks, all) keep their
// weight; unhealthy ones are left out, or kept at weight 0 with quiesce.
// When no server is usable and a sorry server is configured, it is added.
// Unknown health counts as healthy: a server is innocent until a check
// says otherwise (keepalived's default).
func Desired(s Spec, h map[netip.AddrPort]health.State) (svc Service, sorryActive bool) {
	svc = Service{Key: s.Key, Scheduler: s.Scheduler, Method: s.Method, Persistence: s.Persistence, Masquerade: s.Masquerade}
	usable := 0
	for _, d := range s.Real {
		if s.Check.Kind == CheckNone || h[d.Addr] != health.Down {
			svc.Dests = append(svc.Dests, d)
			if d.Weight > 0 {
				usable++
			}
		} else if s.Quiesce {
			svc.Dests = append(svc.Dests, Dest{Addr: d.Addr, Weight: 0})
		}
	}
	if usable == 0 && s.Sorry.IsValid() {
		svc.Dests = append(svc.Dests, Dest{Addr: s.Sorry, Weight: 1})
		sorryActive = true
	}
	return svc, sorryActive
}
