package nft

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"ringmaster/lrmd/agents/lvs"
)

// Backend is the nftables lvs.Backend.
type Backend struct {
	netns int // namespace fd; 0: the caller's namespace

	// mu serialises read-modify-write batches from this process; the
	// batch itself is atomic in the kernel.
	mu sync.Mutex
}

// Option configures a Backend.
type Option func(*Backend)

// WithNetNS makes the backend act in the network namespace open as fd
// (for tests in namespaces).
func WithNetNS(fd int) Option { return func(b *Backend) { b.netns = fd } }

// New returns the nftables backend. It touches nothing until Apply.
func New(opts ...Option) (*Backend, error) {
	b := &Backend{}
	for _, o := range opts {
		o(b)
	}
	return b, nil
}

// Name implements lvs.Backend.
func (b *Backend) Name() string { return "nftables" }

// Check implements lvs.Backend.
func (b *Backend) Check(svc lvs.Service) error { return Check(svc) }

// Close implements lvs.Backend.
func (b *Backend) Close() error { return nil }

func (b *Backend) conn() (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if b.netns > 0 {
		opts = append(opts, nftables.WithNetNSFd(b.netns))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return c, nil
}

var table = &nftables.Table{Family: nftables.TableFamilyIPv4, Name: TableName}

// chains are the base chains of the table. dstnat priority (-100) is
// where DNAT belongs; output catches connections from the director
// itself; postrouting at srcnat (100) masquerades.
func chains() (pre, out, post *nftables.Chain) {
	mk := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return &nftables.Chain{Name: name, Table: table, Type: nftables.ChainTypeNAT, Hooknum: hook, Priority: prio}
	}
	return mk("prerouting", nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest),
		mk("output", nftables.ChainHookOutput, nftables.ChainPriorityNATDest),
		mk("postrouting", nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
}

// ruleComment extracts a rule's comment.
func ruleComment(r *nftables.Rule) string {
	c, _ := userdata.GetString(r.UserData, userdata.TypeComment)
	return c
}

// dnatRules returns every rule of this backend in the DNAT chains
// (prerouting, output). A missing table means none.
//
// The postrouting chain is never read: google/nftables v0.3.0 cannot
// decode the ct-direction attribute of its masquerade rules. Instead it is
// rebuilt in every transaction from the masq flag of the DNAT rules'
// comments. (Two processes changing masqueraded services at the same
// instant could lose one masquerade rule until the next apply; the lrmd
// is the only writer in practice.)
func dnatRules(c *nftables.Conn) ([]*nftables.Rule, error) {
	tabs, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	found := false
	for _, t := range tabs {
		found = found || t.Name == TableName
	}
	if !found {
		return nil, nil
	}
	pre, out, _ := chains()
	var rules []*nftables.Rule
	for _, ch := range []*nftables.Chain{pre, out} {
		rs, err := c.GetRules(table, ch)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return nil, fmt.Errorf("list rules of %s: %w", ch.Name, err)
		}
		for _, r := range rs {
			if strings.HasPrefix(ruleComment(r), commentPrefix) {
				r.Table, r.Chain = table, ch
				rules = append(rules, r)
			}
		}
	}
	return rules, nil
}

// Apply implements lvs.Backend: in one transaction, create the table and
// chains if needed, delete the service's old rules, add the new ones and
// rebuild the masquerade rules.
func (b *Backend) Apply(_ context.Context, svc lvs.Service) error {
	p, err := buildPlan(svc)
	if err != nil {
		return err
	}
	return b.change(svc.Key, &p)
}

// Remove implements lvs.Backend: deletes only this service's rules.
func (b *Backend) Remove(_ context.Context, k lvs.Key) error {
	return b.change(k, nil)
}

// change replaces (p != nil) or removes (p == nil) the rules of key k in
// one transaction.
func (b *Backend) change(k lvs.Key, p *plan) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.conn()
	if err != nil {
		return err
	}
	rules, err := dnatRules(c)
	if err != nil {
		return err
	}
	var old []*nftables.Rule
	masq := map[lvs.Key]bool{}
	for _, r := range rules {
		pc, ok := parseComment(ruleComment(r))
		switch {
		case strings.HasPrefix(ruleComment(r), keyOf(k)):
			old = append(old, r)
		case ok && pc.masq:
			masq[pc.key] = true
		}
	}
	if p == nil && len(old) == 0 {
		return nil // nothing of ours: do not even create the table
	}
	if p != nil && p.svc.Masquerade {
		masq[k] = true
	}
	c.AddTable(table)
	pre, out, post := chains()
	for _, ch := range []*nftables.Chain{pre, out, post} {
		c.AddChain(ch)
	}
	for _, r := range old {
		if err := c.DelRule(r); err != nil {
			return fmt.Errorf("delete old rule of %s: %w", k, err)
		}
		// Its map goes with it (after the rule in the same transaction,
		// so the map is no longer in use when it is deleted).
		for _, e := range r.Exprs {
			if l, ok := e.(*expr.Lookup); ok && strings.HasPrefix(l.SetName, mapPrefix) {
				c.DelSet(&nftables.Set{Table: table, Name: l.SetName})
			}
		}
	}
	if p != nil {
		for _, ch := range []*nftables.Chain{pre, out} {
			if err := p.addDNAT(c, ch, mapName(k, ch.Name)); err != nil {
				return err
			}
		}
	}
	c.FlushChain(post)
	keys := make([]lvs.Key, 0, len(masq))
	for mk := range masq {
		keys = append(keys, mk)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, mk := range keys {
		c.AddRule(&nftables.Rule{Table: table, Chain: post, Exprs: append(masqExprs(mk), &expr.Masq{}),
			UserData: userdata.AppendString(nil, userdata.TypeComment, commentPrefix+mk.String()+" masquerade")})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables transaction for %s: %w", k, err)
	}
	return nil
}

func cmpEq(reg uint32, data []byte) *expr.Cmp {
	return &expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: data}
}

func protoNum(p string) byte {
	if p == "udp" {
		return unix.IPPROTO_UDP
	}
	return unix.IPPROTO_TCP
}

func (p plan) matchExprs() []expr.Any {
	k := p.svc.Key
	if k.Proto == "fwm" {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			cmpEq(1, binaryutil.NativeEndian.PutUint32(k.FWMark)),
		}
	}
	vip := k.VIP.As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		cmpEq(1, vip[:]),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		cmpEq(1, []byte{protoNum(k.Proto)}),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		cmpEq(1, binaryutil.BigEndian.PutUint16(k.Port)),
	}
}

// masqExprs matches connections that were DNATed from key k: by the
// original-direction destination in conntrack (the packet itself already
// carries the real server's address in postrouting). Direction 0 is
// "original"; google/nftables encodes the direction as a big-endian u32
// where the kernel reads a u8, which is only right for 0.
func masqExprs(k lvs.Key) []expr.Any {
	if k.Proto == "fwm" {
		return plan{svc: lvs.Service{Key: k}}.matchExprs()
	}
	vip := k.VIP.As4()
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		cmpEq(1, []byte{protoNum(k.Proto)}),
		&expr.Ct{Register: 1, Key: expr.CtKeyDST, Direction: 0},
		cmpEq(1, vip[:]),
		&expr.Ct{Register: 1, Key: expr.CtKeyPROTODST, Direction: 0},
		cmpEq(1, binaryutil.BigEndian.PutUint16(k.Port)),
	}
}

// mapPrefix starts the names of this backend's maps.
const mapPrefix = "lvs_"

// mapName names a service's map in one chain. Named maps rather than
// anonymous ones: google/nftables marks constant and anonymous sets as
// big-endian keyed, so nft(8) would list the keys byte-swapped; a named
// map keeps host byte order (what numgen and jhash produce) and lists
// correctly. A random suffix lets the new map coexist with the old one
// within the replacing transaction.
func mapName(k lvs.Key, chain string) string {
	h := fnv.New32a()
	h.Write([]byte(k.String()))
	var r [3]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("%s%08x_%s_%x", mapPrefix, h.Sum32(), chain[:3], r)
}

// addDNAT queues the DNAT rule (and its map) for one chain.
// Registers follow nft(8): the selector writes reg 1, the map lookup
// writes the address to reg 1 and the port to the next 32-bit register
// (9, i.e. NFT_REG32_01), which the nat expression reads.
func (p plan) addDNAT(c *nftables.Conn, ch *nftables.Chain, setName string) error {
	ex := p.matchExprs()
	nat := &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1}
	switch p.sel {
	case selNone:
		ex = append(ex, &expr.Counter{})
		nat = nil
	case selSingle:
		a := p.entries[0]
		ip := a.Addr().As4()
		ex = append(ex, &expr.Immediate{Register: 1, Data: ip[:]})
		if p.withPort {
			ex = append(ex, &expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(a.Port())})
			nat.RegProtoMin, nat.Specified = 2, true
		}
	default:
		dataType := nftables.TypeIPAddr
		if p.withPort {
			dataType = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)
			nat.RegProtoMin, nat.Specified = 9, true
		}
		set := &nftables.Set{
			Table: table, Name: setName, IsMap: true,
			KeyType: nftables.TypeInteger, KeyByteOrder: binaryutil.NativeEndian, DataType: dataType,
		}
		elems := make([]nftables.SetElement, len(p.entries))
		for i, e := range p.entries {
			elems[i] = nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(uint32(i)), Val: mapValue(e, p.withPort)}
		}
		if err := c.AddSet(set, elems); err != nil {
			return fmt.Errorf("nftables map for %s: %w", p.svc.Key, err)
		}
		switch p.sel {
		case selNumgen:
			ex = append(ex, &expr.Numgen{Register: 1, Modulus: uint32(len(p.entries)), Type: unix.NFT_NG_INCREMENTAL})
		case selHashSrc, selHashDst:
			off := uint32(12)
			if p.sel == selHashDst {
				off = 16
			}
			ex = append(ex,
				&expr.Payload{DestRegister: 2, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4},
				&expr.Hash{SourceRegister: 2, DestRegister: 1, Length: 4, Modulus: uint32(len(p.entries)), Seed: p.seed, Type: expr.HashTypeJenkins})
		}
		ex = append(ex, &expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetID: set.ID, SetName: set.Name})
	}
	if nat != nil {
		ex = append(ex, nat)
	}
	c.AddRule(&nftables.Rule{Table: table, Chain: ch, Exprs: ex, UserData: userdata.AppendString(nil, userdata.TypeComment, p.comment)})
	return nil
}

// List implements lvs.Backend: reads the prerouting chain back and
// reconstructs each service (scheduler and method from the rule comment,
// real servers and relative weights from the map or immediate).
func (b *Backend) List(_ context.Context) ([]lvs.Service, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.conn()
	if err != nil {
		return nil, err
	}
	tabs, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	found := false
	for _, t := range tabs {
		found = found || t.Name == TableName
	}
	if !found {
		return nil, nil
	}
	pre, _, _ := chains()
	rules, err := c.GetRules(table, pre)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, nil
		}
		return nil, fmt.Errorf("list rules: %w", err)
	}
	sets, err := c.GetSets(table)
	if err != nil {
		return nil, fmt.Errorf("list sets: %w", err)
	}
	byName := map[string]*nftables.Set{}
	for _, s := range sets {
		byName[s.Name] = s
	}
	var out []lvs.Service
	for _, r := range rules {
		pc, ok := parseComment(ruleComment(r))
		if !ok {
			continue
		}
		k := pc.key
		svc := lvs.Service{Key: k, Scheduler: pc.sched, Method: pc.method, Masquerade: pc.masq}
		var imm [][]byte
		for _, e := range r.Exprs {
			switch e := e.(type) {
			case *expr.Immediate:
				imm = append(imm, e.Data)
			case *expr.Lookup:
				s := byName[e.SetName]
				if s == nil {
					continue
				}
				elems, err := c.GetSetElements(s)
				if err != nil {
					return nil, fmt.Errorf("map of %s: %w", k, err)
				}
				sort.Slice(elems, func(i, j int) bool {
					return binary.NativeEndian.Uint32(elems[i].Key) < binary.NativeEndian.Uint32(elems[j].Key)
				})
				var entries []netip.AddrPort
				for _, el := range elems {
					if a, ok := decodeMapValue(el.Val); ok {
						entries = append(entries, a)
					}
				}
				svc.Dests = weightsFromEntries(entries)
			}
		}
		if len(imm) > 0 {
			v := imm[0]
			if len(imm) > 1 {
				v = append(append([]byte(nil), imm[0]...), imm[1]...)
			}
			if a, ok := decodeMapValue(v); ok {
				svc.Dests = []lvs.Dest{{Addr: a, Weight: 1}}
			}
		}
		out = append(out, svc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.String() < out[j].Key.String() })
	return out, nil
}
