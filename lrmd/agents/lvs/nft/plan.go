// Package nft is the nftables backend of builtin:lvs: each virtual service
// becomes DNAT rules in the ringmaster-owned table "ip ringmaster_lvs"
// (chains prerouting and output, plus postrouting for masquerade), with
// the scheduler expressed as a map lookup:
//
//	rr        numgen inc mod N, one entry per real server
//	wrr       numgen inc mod W, entries repeated per weight in IPVS's
//	          interleaved weighted round-robin order
//	sh / dh   jhash of the source / destination address into a 256-bucket
//	          table filled by weight as IPVS's sh/dh do
//	mh        jhash of the source address into a 251-entry Maglev table
//	fo        DNAT to the highest-weight server (weighted failover)
//
// Schedulers that need per-connection state in the kernel (lc, wlc, lblc,
// lblcr, sed, nq, ovf, twos), persistence and the dr/tun methods cannot be
// expressed and are rejected by Check with a message naming them.
//
// Conntrack keeps each connection on the server it was DNATed to, so
// removing a server from the map (unhealthy) only affects new connections:
// for this backend quiesce (weight 0) and removal are the same.
package nft

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strings"

	"ringmaster/lrmd/agents/lvs"
)

// TableName is the nftables table (family ip) this backend owns.
const TableName = "ringmaster_lvs"

// commentPrefix marks the rules of this backend; the rest of the comment
// identifies the service so it can be found, replaced, listed and removed.
const commentPrefix = "ringmaster-lvs "

// Table sizes of the hashing schedulers: IPVS sh/dh use 256 buckets; mh's
// table must be prime (IPVS's smallest choice is 251).
const (
	hashBuckets   = 256
	maglevBuckets = 251
)

// maxEntries bounds a wrr map. Weights whose reduced sum exceeds it are
// scaled down proportionally (at least 1 each).
const maxEntries = 1024

// Supported lists the schedulers this backend can express.
var Supported = []string{"rr", "wrr", "sh", "dh", "mh", "fo"}

type selKind int

const (
	selNone    selKind = iota // no usable server: marker rule, traffic goes to the local stack
	selSingle                 // one destination: immediate DNAT
	selNumgen                 // numgen inc
	selHashSrc                // jhash ip saddr
	selHashDst                // jhash ip daddr
)

// plan is everything the rules of one service contain, independent of
// netlink: rendered as text for golden tests and turned into expressions
// for the kernel.
type plan struct {
	svc      lvs.Service
	comment  string
	sel      selKind
	entries  []netip.AddrPort // map index -> destination (len = modulus)
	withPort bool             // DNAT to addr . port (else addr only: fwmark services with port 0)
	seed     uint32           // jhash seed: fixed per service so re-applies keep the mapping
}

// Check reports why svc cannot be expressed in nftables.
func Check(svc lvs.Service) error {
	if svc.Key.Proto != "fwm" && !svc.Key.VIP.Is4() {
		return fmt.Errorf("%w: nftables backend handles IPv4 services only (%s)", lvs.ErrUnsupported, svc.Key)
	}
	if !slices.Contains(Supported, svc.Scheduler) {
		return fmt.Errorf("%w: scheduler %q needs per-connection state in the kernel that nftables cannot express; use backend=ipvs or one of %s", lvs.ErrUnsupported, svc.Scheduler, strings.Join(Supported, ", "))
	}
	if svc.Method != lvs.NAT {
		return fmt.Errorf("%w: method %q: the nftables backend forwards by DNAT (method nat) only; use backend=ipvs for dr/tun", lvs.ErrUnsupported, svc.Method)
	}
	if svc.Persistence > 0 {
		return fmt.Errorf("%w: persistence: nftables cannot pin clients for a timeout; use scheduler=sh (source hashing) or backend=ipvs", lvs.ErrUnsupported)
	}
	ports := 0
	for _, d := range svc.Dests {
		if !d.Addr.Addr().Is4() {
			return fmt.Errorf("%w: real server %s: IPv4 only", lvs.ErrUnsupported, d.Addr)
		}
		if d.Addr.Port() != 0 {
			ports++
		}
	}
	if ports != 0 && ports != len(svc.Dests) {
		return fmt.Errorf("%w: either all real servers of %s have a port or none", lvs.ErrUnsupported, svc.Key)
	}
	return nil
}

// masqFlag ends the comment of a service that is also masqueraded. The
// DNAT rules carry it so the postrouting chain can be rebuilt from them
// (see Backend.Apply).
const masqFlag = " masq"

// comment identifies a service's rules.
func comment(svc lvs.Service) string {
	c := commentPrefix + svc.Key.String() + " " + svc.Scheduler + " " + string(svc.Method)
	if svc.Masquerade {
		c += masqFlag
	}
	return c
}

// parsedComment is what a rule comment says about its service.
type parsedComment struct {
	key    lvs.Key
	sched  string
	method lvs.Method
	masq   bool
}

// parseComment inverts comment.
func parseComment(c string) (parsedComment, bool) {
	if !strings.HasPrefix(c, commentPrefix) {
		return parsedComment{}, false
	}
	f := strings.Fields(strings.TrimPrefix(c, commentPrefix))
	if len(f) != 4 && !(len(f) == 5 && " "+f[4] == masqFlag) {
		return parsedComment{}, false
	}
	k, err := lvs.ParseKey(f[0] + " " + f[1])
	if err != nil {
		return parsedComment{}, false
	}
	return parsedComment{key: k, sched: f[2], method: lvs.Method(f[3]), masq: len(f) == 5}, true
}

// keyOf returns the comment prefix shared by all schedulers/methods of
// the same key, to find a service's rules whatever they were applied with.
func keyOf(k lvs.Key) string { return commentPrefix + k.String() + " " }

func buildPlan(svc lvs.Service) (plan, error) {
	if err := Check(svc); err != nil {
		return plan{}, err
	}
	p := plan{svc: svc, comment: comment(svc)}
	h := fnv.New32a()
	h.Write([]byte(svc.Key.String()))
	p.seed = h.Sum32() | 1 // never 0: a missing seed makes the kernel pick a random one
	var dests []lvs.Dest
	for _, d := range svc.Dests {
		if d.Weight > 0 {
			dests = append(dests, d)
			p.withPort = d.Addr.Port() != 0
		}
	}
	switch {
	case len(dests) == 0:
		p.sel = selNone
	case svc.Scheduler == "fo":
		// Weighted failover: all new connections to the available server
		// with the highest weight; ties go to the first listed.
		best := dests[0]
		for _, d := range dests[1:] {
			if d.Weight > best.Weight {
				best = d
			}
		}
		p.sel, p.entries = selSingle, []netip.AddrPort{best.Addr}
	case len(dests) == 1:
		p.sel, p.entries = selSingle, []netip.AddrPort{dests[0].Addr}
	case svc.Scheduler == "rr":
		p.sel = selNumgen
		for _, d := range dests {
			p.entries = append(p.entries, d.Addr)
		}
	case svc.Scheduler == "wrr":
		p.sel, p.entries = selNumgen, wrrSequence(dests)
	case svc.Scheduler == "sh":
		p.sel, p.entries = selHashSrc, weightedTable(dests, hashBuckets)
	case svc.Scheduler == "dh":
		p.sel, p.entries = selHashDst, weightedTable(dests, hashBuckets)
	case svc.Scheduler == "mh":
		p.sel, p.entries = selHashSrc, maglevTable(dests, maglevBuckets)
	}
	return p, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// scaled returns the weights divided by their gcd and, when their sum
// still exceeds maxEntries, scaled down proportionally (minimum 1).
func scaled(dests []lvs.Dest) []int {
	g := 0
	for _, d := range dests {
		g = gcd(g, d.Weight)
	}
	w := make([]int, len(dests))
	sum := 0
	for i, d := range dests {
		w[i] = d.Weight / g
		sum += w[i]
	}
	if sum > maxEntries {
		for i := range w {
			w[i] = max(1, w[i]*maxEntries/sum)
		}
	}
	return w
}

// wrrSequence is one full cycle of IPVS's weighted round-robin
// (ip_vs_wrr.c): the current weight steps down from the maximum by the
// gcd; each pass picks every server whose weight is at least it. With
// weights 3 and 1 the cycle is A A A B; the map index advances by one per
// new connection, so the kernel reproduces the cycle.
func wrrSequence(dests []lvs.Dest) []netip.AddrPort {
	w := scaled(dests)
	maxW, total := 0, 0
	for _, x := range w {
		maxW = max(maxW, x)
		total += x
	}
	var seq []netip.AddrPort
	for cw := maxW; cw > 0 && len(seq) < total; cw-- {
		for i, x := range w {
			if x >= cw {
				seq = append(seq, dests[i].Addr)
			}
		}
	}
	return seq
}

// weightedTable fills n buckets the way IPVS sh/dh do: servers in turn,
// each taking as many consecutive buckets as its weight, round and round.
func weightedTable(dests []lvs.Dest, n int) []netip.AddrPort {
	w := scaled(dests)
	out := make([]netip.AddrPort, 0, n)
	for i, c := 0, 0; len(out) < n; {
		out = append(out, dests[i].Addr)
		if c++; c >= w[i] {
			i, c = (i+1)%len(dests), 0
		}
	}
	return out
}

// maglevTable builds a Maglev lookup table (Eisenbud et al., NSDI 2016;
// IPVS mh): each server walks its own permutation of the n slots
// (offset and skip from two hashes of its address) and claims the next
// free slot, weight turns per round. Removing a server moves only the
// slots it held, so most clients keep their server.
func maglevTable(dests []lvs.Dest, n int) []netip.AddrPort {
	w := scaled(dests)
	offset := make([]int, len(dests))
	skip := make([]int, len(dests))
	next := make([]int, len(dests))
	for i, d := range dests {
		b, _ := d.Addr.MarshalBinary()
		h1, h2 := fnv.New32a(), fnv.New32()
		h1.Write(b)
		h2.Write(b)
		offset[i] = int(h1.Sum32() % uint32(n))
		skip[i] = int(h2.Sum32()%uint32(n-1)) + 1
	}
	table := make([]int, n)
	for i := range table {
		table[i] = -1
	}
	filled := 0
	for filled < n {
		for i := range dests {
			for turn := 0; turn < w[i] && filled < n; turn++ {
				for {
					slot := (offset[i] + next[i]*skip[i]) % n
					next[i]++
					if table[slot] < 0 {
						table[slot] = i
						filled++
						break
					}
				}
			}
		}
	}
	out := make([]netip.AddrPort, n)
	for i, d := range table {
		out[i] = dests[d].Addr
	}
	return out
}

// Text renders the rules as nft(8) would list them, one line per rule
// prefixed with its chain. It is the golden form of the plan.
func (p plan) Text() string {
	var b strings.Builder
	match := p.match()
	fmt.Fprintf(&b, "# %s", strings.ReplaceAll(strings.TrimSpace(lvs.Render(p.svc)), "\n", "\n# "))
	b.WriteByte('\n')
	for _, chain := range []string{"prerouting", "output"} {
		fmt.Fprintf(&b, "%s: %s %s comment %q\n", chain, match, p.action(), p.comment)
	}
	if p.svc.Masquerade {
		fmt.Fprintf(&b, "postrouting: %s masquerade comment %q\n", masqMatch(p.svc.Key), p.comment)
	}
	return b.String()
}

func (p plan) match() string {
	k := p.svc.Key
	return keyMatch(k)
}

func keyMatch(k lvs.Key) string {
	if k.Proto == "fwm" {
		return fmt.Sprintf("meta mark 0x%08x", k.FWMark)
	}
	return fmt.Sprintf("ip daddr %s %s dport %d", k.VIP, k.Proto, k.Port)
}

func masqMatch(k lvs.Key) string {
	if k.Proto == "fwm" {
		return fmt.Sprintf("meta mark 0x%08x", k.FWMark)
	}
	return fmt.Sprintf("meta l4proto %s ct original ip daddr %s ct original proto-dst %d", k.Proto, k.VIP, k.Port)
}

func (p plan) target(a netip.AddrPort) string {
	if p.withPort {
		return fmt.Sprintf("%s . %d", a.Addr(), a.Port())
	}
	return a.Addr().String()
}

func (p plan) action() string {
	var sel string
	switch p.sel {
	case selNone:
		return "counter"
	case selSingle:
		a := p.entries[0]
		if p.withPort {
			return fmt.Sprintf("dnat ip to %s:%d", a.Addr(), a.Port())
		}
		return fmt.Sprintf("dnat ip to %s", a.Addr())
	case selNumgen:
		sel = fmt.Sprintf("numgen inc mod %d", len(p.entries))
	case selHashSrc:
		sel = fmt.Sprintf("jhash ip saddr mod %d seed 0x%x", len(p.entries), p.seed)
	case selHashDst:
		sel = fmt.Sprintf("jhash ip daddr mod %d seed 0x%x", len(p.entries), p.seed)
	}
	items := make([]string, len(p.entries))
	for i, e := range p.entries {
		items[i] = fmt.Sprintf("%d : %s", i, p.target(e))
	}
	return fmt.Sprintf("dnat ip to %s map { %s }", sel, strings.Join(items, ", "))
}

// weightsFromEntries recovers relative weights from a map's entries
// (count per destination, divided by their gcd), in first-seen order.
func weightsFromEntries(entries []netip.AddrPort) []lvs.Dest {
	counts := map[netip.AddrPort]int{}
	var order []netip.AddrPort
	for _, e := range entries {
		if counts[e] == 0 {
			order = append(order, e)
		}
		counts[e]++
	}
	g := 0
	for _, c := range counts {
		g = gcd(g, c)
	}
	out := make([]lvs.Dest, 0, len(order))
	for _, e := range order {
		out = append(out, lvs.Dest{Addr: e, Weight: counts[e] / g})
	}
	slices.SortStableFunc(out, func(a, b lvs.Dest) int { return cmp.Compare(a.Addr.String(), b.Addr.String()) })
	return out
}

// mapValue encodes a map entry: the IPv4 address, then (with a port) the
// port in network order padded to a 4-byte register.
func mapValue(a netip.AddrPort, withPort bool) []byte {
	ip := a.Addr().As4()
	v := append([]byte(nil), ip[:]...)
	if withPort {
		v = binary.BigEndian.AppendUint16(v, a.Port())
		v = append(v, 0, 0)
	}
	return v
}

func decodeMapValue(v []byte) (netip.AddrPort, bool) {
	if len(v) < 4 {
		return netip.AddrPort{}, false
	}
	ip := netip.AddrFrom4([4]byte(v[:4]))
	var port uint16
	if len(v) >= 6 {
		port = binary.BigEndian.Uint16(v[4:6])
	}
	return netip.AddrPortFrom(ip, port), true
}
