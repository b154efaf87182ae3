package ring

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"ringmaster/config"
	"ringmaster/totem"
	"ringmaster/totem/crypto"
	"ringmaster/totem/pg"
	"ringmaster/totem/srp"
	"ringmaster/totem/transport"
	"ringmaster/totem/wire"
)

// Config configures a Ring. The daemon builds it from corosync.toml.
type Config struct {
	Node        totem.NodeID
	ClusterName string
	Transport   string                          // "udp" | "udpu" | "mem" (tests)
	Bind        netip.AddrPort                  // local ring0 address:port
	Peers       map[totem.NodeID]netip.AddrPort // every configured node (udpu destinations), incl. self
	Mcast       netip.AddrPort                  // udp only
	TTL         int
	Timings     srp.Timings
	NetMTU      int
	Cipher      string                // "aes256" | "chacha20" | "none"
	Keys        [][]byte              // raw keyfile contents; first encrypts
	StateDir    string                // ring sequence persisted here (file per node id), fsync'd before use
	MemNet      *transport.MemNetwork // only for Transport "mem"
}

// Errors.
var (
	ErrConfig  = errors.New("invalid ring configuration")
	ErrPersist = errors.New("cannot persist the ring sequence number")
	// ErrClosed: Send after Leave or after Run returned.
	ErrClosed  = errors.New("ring closed")
	ErrRunning = errors.New("ring already running")
)

// TimingsFrom converts the effective configuration timings to srp's.
func TimingsFrom(e config.Effective) srp.Timings {
	return srp.Timings{
		Token:                  e.Token,
		TokenRetransmit:        e.TokenRetransmit,
		Hold:                   e.Hold,
		Join:                   e.Join,
		SendJoin:               e.SendJoin,
		Consensus:              e.Consensus,
		Merge:                  e.Merge,
		Downcheck:              e.Downcheck,
		TokenRetransmitsBefore: e.TokenRetransmitsBefore,
		FailRecvConst:          e.FailRecvConst,
		SeqnoUnchangedConst:    e.SeqnoUnchangedConst,
		MissCountConst:         e.MissCountConst,
		WindowSize:             e.WindowSize,
		MaxMessages:            e.MaxMessages,
	}
}

// ipUDPHeaders is what IPv4 and UDP add to a datagram (no IP options).
const ipUDPHeaders = 20 + 8

// FrameBudget is the largest pg frame (srp payload) that keeps a sealed
// Totem message within netMTU: see the package documentation.
func FrameBudget(netMTU int, c crypto.Cipher) int {
	env := 6
	if c != crypto.CipherNone {
		env = 6 + 12 + 16
	}
	return netMTU - ipUDPHeaders - env - wire.McastOverhead
}

// Tunables of the driver, with the reason for each.
const (
	// rxBatch datagrams per recvmmsg: a token visit sends up to
	// max_messages (17) messages plus the token; 64 takes a few visits'
	// worth in one call.
	rxBatch = 64
	// rxBatches per reader in flight between the reader and Run: enough
	// to keep reading while Run steps the previous batch, small enough
	// that backpressure reaches the (large) kernel buffer quickly.
	rxBatches = 4
	// rxSlot is the size of one receive slot: the largest UDP payload, so
	// that join and commit messages of big rings (which may exceed the MTU
	// and travel IP-fragmented) are never truncated. Untouched slot memory
	// is never faulted in.
	rxSlot = 65536
	// maxStepBatches bounds how many received batches one iteration
	// steps before it looks at timers and sends again.
	maxStepBatches = 16
	// Send queue bounds: Send returns ErrTryAgain beyond either. A single
	// message always fits an empty queue, whatever its size.
	maxQueueMsgs  = 8192
	maxQueueBytes = 8 << 20
	// graceWait bounds how long a due timer waits for datagrams already
	// in the kernel to be read (see catchUp): far below any token
	// timeout, above a scheduler time slice of a busy machine.
	graceWait = 20 * time.Millisecond
	// statusEvery bounds how stale Status may be while nothing changes
	// the configuration.
	statusEvery = 10 * time.Millisecond
)

// processor is what the driver needs from the protocol core
// (*srp.Processor); tests substitute fakes.
type processor interface {
	Step(now time.Duration, data []byte) error
	Tick(now time.Duration)
	Send(payload []byte, g totem.Guarantee) error
	Leave(now time.Duration)
	HasReady() bool
	Ready() srp.Ready
	Status() totem.Status
	Counters() totem.Counters
}

var _ processor = (*srp.Processor)(nil)

type appMsg struct {
	service, id uint16
	g           totem.Guarantee
	payload     []byte
}

type rxBuf struct {
	msgs []transport.Msg
	pts  [][]byte // opened plaintexts, aliasing msgs' buffers
}

// Ring runs one Totem processor. Send, Status, Counters, SetKeys and Leave
// are safe for concurrent use; Run is called once.
type Ring struct {
	cfg     Config
	ev      totem.Events
	log     *zap.Logger
	env     *crypto.Envelope
	tr      transport.Transport
	budget  int
	seqPath string

	// Owned by Run's goroutine.
	proc     processor
	packer   *pg.Packer
	reasm    *pg.Reassembler
	deliver  func(totem.Message)
	deadline time.Duration
	sealBuf  []byte
	pkts     []transport.Packet
	lastStat time.Duration
	start    time.Time
	grace    *time.Timer

	// Send queue.
	qmu     sync.Mutex
	q       []appMsg
	qhead   int
	qbytes  int
	qclosed bool
	wake    chan struct{}

	rx   chan *rxBuf
	free chan *rxBuf

	leaveCh   chan struct{}
	leaveOnce sync.Once
	stop      chan struct{} // closed when Run returns: readers exit
	done      chan struct{} // closed after Run returned and cleaned up
	running   atomic.Bool
	closeOnce sync.Once

	status atomic.Pointer[totem.Status]

	dgIn, dgOut, msgsOut, msgsIn, pgMalformed, sendErrs atomic.Uint64
}

// New validates cfg, opens the transport and loads the persisted ring
// sequence number. The Processor starts when Run is called.
func New(cfg Config, ev totem.Events, log *zap.Logger) (*Ring, error) {
	return newRing(cfg, ev, log, func(c srp.Config, now time.Duration) processor { return srp.New(c, now) })
}

func newRing(cfg Config, ev totem.Events, log *zap.Logger, mk func(srp.Config, time.Duration) processor) (*Ring, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.Node == 0 {
		return nil, fmt.Errorf("%w: node id 0", ErrConfig)
	}
	if ev == nil {
		return nil, fmt.Errorf("%w: no Events", ErrConfig)
	}
	if cfg.StateDir == "" {
		return nil, fmt.Errorf("%w: no state directory", ErrConfig)
	}
	if cfg.NetMTU == 0 {
		cfg.NetMTU = 1500
	}
	c, err := crypto.ParseCipher(cfg.Cipher)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	env, err := crypto.New(c, cfg.ClusterName, cfg.Keys)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	budget := FrameBudget(cfg.NetMTU, c)
	packer, err := pg.NewPacker(budget)
	if err != nil {
		return nil, fmt.Errorf("%w: netmtu %d: %w", ErrConfig, cfg.NetMTU, err)
	}
	seqPath := seqFile(cfg.StateDir, cfg.Node)
	seq, err := loadSeq(seqPath)
	if err != nil {
		return nil, err
	}
	r := &Ring{
		cfg:     cfg,
		ev:      ev,
		log:     log.With(zap.Uint32("node", uint32(cfg.Node))),
		env:     env,
		budget:  budget,
		seqPath: seqPath,
		packer:  packer,
		reasm:   pg.NewReassembler(),
		wake:    make(chan struct{}, 1),
		leaveCh: make(chan struct{}),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	r.deliver = func(m totem.Message) {
		r.msgsIn.Add(1)
		r.ev.Deliver(m)
	}
	if r.tr, err = openTransport(cfg); err != nil {
		return nil, err
	}
	r.start = time.Now()
	r.proc = mk(srp.Config{
		Node:       cfg.Node,
		Timings:    cfg.Timings,
		InitialSeq: seq,
		// Seeded from the OS: the jitter of send_join must differ
		// between nodes and boots; determinism is the simulator's job.
		Rand:       rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		MaxPayload: budget,
	}, 0)
	nr := len(r.tr.Receivers())
	r.rx = make(chan *rxBuf, nr*rxBatches)
	r.free = make(chan *rxBuf, nr*rxBatches)
	for range nr * rxBatches {
		b := &rxBuf{msgs: make([]transport.Msg, rxBatch), pts: make([][]byte, 0, rxBatch)}
		backing := make([]byte, rxBatch*rxSlot)
		for i := range b.msgs {
			b.msgs[i].Buf = backing[i*rxSlot : (i+1)*rxSlot : (i+1)*rxSlot]
		}
		r.free <- b
	}
	r.refreshStatus()
	return r, nil
}

func openTransport(cfg Config) (transport.Transport, error) {
	switch cfg.Transport {
	case "mem":
		if cfg.MemNet == nil {
			return nil, fmt.Errorf("%w: transport mem without MemNet", ErrConfig)
		}
		return cfg.MemNet.Attach(cfg.Node)
	case "udpu", "udp":
		if _, ok := cfg.Peers[cfg.Node]; !ok {
			return nil, fmt.Errorf("%w: node %d is not among the peers", ErrConfig, cfg.Node)
		}
		uc := transport.UDPConfig{Bind: cfg.Bind, Peers: cfg.Peers, Mcast: cfg.Mcast, TTL: cfg.TTL}
		var t *transport.UDP
		var err error
		if cfg.Transport == "udp" {
			t, err = transport.NewUDP(uc)
		} else {
			t, err = transport.NewUDPU(uc)
		}
		if err != nil {
			return nil, fmt.Errorf("transport %s: %w", cfg.Transport, err)
		}
		return t, nil
	}
	return nil, fmt.Errorf("%w: transport %q (want udp, udpu or mem)", ErrConfig, cfg.Transport)
}

// FrameBudget is the pg frame size this ring uses.
func (r *Ring) FrameBudget() int { return r.budget }

// Send queues an application message for ordered delivery to every member,
// this node included. It copies payload, never blocks and never calls
// Events. It returns totem.ErrTryAgain when the queue is full,
// totem.ErrTooLarge above totem.MaxMessageSize, ErrClosed after Leave.
func (r *Ring) Send(service, id uint16, g totem.Guarantee, payload []byte) error {
	if len(payload) > totem.MaxMessageSize {
		return fmt.Errorf("%w: %d bytes", totem.ErrTooLarge, len(payload))
	}
	if g > totem.Safe {
		return fmt.Errorf("%w: unknown guarantee %d", ErrConfig, g)
	}
	r.qmu.Lock()
	n := len(r.q) - r.qhead
	switch {
	case r.qclosed:
		r.qmu.Unlock()
		return ErrClosed
	case n >= maxQueueMsgs, n > 0 && r.qbytes+len(payload) > maxQueueBytes:
		r.qmu.Unlock()
		return totem.ErrTryAgain
	}
	r.q = append(r.q, appMsg{service: service, id: id, g: g, payload: slices.Clone(payload)})
	r.qbytes += len(payload)
	r.qmu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return nil
}

// dequeue takes the oldest queued message.
func (r *Ring) dequeue() (appMsg, bool) {
	r.qmu.Lock()
	defer r.qmu.Unlock()
	if r.qhead == len(r.q) {
		return appMsg{}, false
	}
	m := r.q[r.qhead]
	r.q[r.qhead] = appMsg{}
	r.qhead++
	r.qbytes -= len(m.payload)
	if r.qhead == len(r.q) {
		r.q, r.qhead = r.q[:0], 0
	} else if r.qhead > 1024 && r.qhead > len(r.q)/2 {
		k := copy(r.q, r.q[r.qhead:])
		clear(r.q[k:])
		r.q, r.qhead = r.q[:k], 0
	}
	return m, true
}

// Status returns the last snapshot taken by Run (at most statusEvery old,
// and fresh after every configuration change).
func (r *Ring) Status() totem.Status {
	s := *r.status.Load()
	s.Members = slices.Clone(s.Members)
	s.Counters = r.Counters()
	return s
}

// Counters combines the Processor's counters (as of the last snapshot) with
// the driver's, crypto's and pg's.
func (r *Ring) Counters() totem.Counters {
	c := r.status.Load().Counters
	c.DatagramsIn = r.dgIn.Load()
	c.DatagramsOut = r.dgOut.Load()
	c.AuthFailures = r.env.AuthFailures()
	c.MessagesIn = r.msgsIn.Load()
	c.MessagesOut = r.msgsOut.Load()
	c.Malformed += r.pgMalformed.Load()
	return c
}

// SetKeys installs new keys (first seals, all open) without restarting.
func (r *Ring) SetKeys(keys [][]byte) error { return r.env.SetKeys(keys) }

// Leave leaves the ring gracefully: the Processor broadcasts its leave, the
// datagrams are flushed, and Run returns. Messages still queued are
// dropped. Leave waits for Run to return or ctx to end. If Run was never
// started it just releases the sockets.
func (r *Ring) Leave(ctx context.Context) error {
	r.closeQueue()
	r.leaveOnce.Do(func() { close(r.leaveCh) })
	if !r.running.Load() {
		r.Close()
		return nil
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close releases the sockets of a Ring whose Run was never called, or ends
// a running one abruptly (as a crash would: no leave message). Idempotent.
func (r *Ring) Close() error {
	r.closeQueue()
	var err error
	r.closeOnce.Do(func() { err = r.tr.Close() })
	return err
}

func (r *Ring) closeQueue() {
	r.qmu.Lock()
	r.qclosed = true
	r.qmu.Unlock()
}

func (r *Ring) now() time.Duration { return time.Since(r.start) }

// Run is the single goroutine that owns the Processor. It returns nil when
// ctx is done or after Leave, and an error when the transport fails or the
// ring sequence number cannot be persisted (sending without it could reuse
// a ring ID after a restart). The sockets are closed when it returns.
func (r *Ring) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	var readers sync.WaitGroup
	fatal := make(chan error, len(r.tr.Receivers()))
	defer func() {
		r.closeQueue()
		close(r.stop)
		r.Close()
		readers.Wait()
		r.refreshStatus()
		close(r.done)
	}()
	for _, rc := range r.tr.Receivers() {
		readers.Add(1)
		go func() {
			defer readers.Done()
			if err := r.read(rc); err != nil {
				fatal <- err
			}
		}()
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	armed := time.Duration(-1)
	if _, err := r.output(); err != nil {
		return err
	}
	for {
		if r.deadline != armed {
			armed = r.deadline
			if armed == 0 {
				timer.Stop()
			} else {
				timer.Reset(max(0, armed-r.now()))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-fatal:
			return err
		case <-r.leaveCh:
			r.proc.Leave(r.now())
			_, err := r.output()
			return err
		case b := <-r.rx:
			r.step(b)
		case <-timer.C:
			armed = -1 // fired: re-arm even if the deadline is unchanged
		case <-r.wake:
		}
		// Everything already received is stepped before timers fire.
	drain:
		for range maxStepBatches {
			select {
			case b := <-r.rx:
				r.step(b)
			default:
				break drain
			}
		}
		if now := r.now(); r.deadline != 0 && now >= r.deadline {
			r.catchUp()
			r.proc.Tick(r.now())
		}
		full := r.pump()
		progress, err := r.output()
		if err != nil {
			return err
		}
		if full && progress {
			// The Processor made progress and may have room again:
			// come back to pump without waiting for another input.
			select {
			case r.wake <- struct{}{}:
			default:
			}
		}
	}
}

// catchUp runs before a timer fires. If datagrams wait in the kernel that
// the readers have not picked up yet (a busy machine descheduled them), it
// waits for them a little, up to graceWait, and steps them first: the
// token may be among them, and declaring it lost would tear down a healthy
// ring. The wait is bounded, so a flood cannot hold timers back for long.
func (r *Ring) catchUp() {
	bl, ok := r.tr.(transport.Backlogger)
	if !ok || !bl.Backlog() {
		return
	}
	if r.grace == nil {
		r.grace = time.NewTimer(graceWait)
	} else {
		r.grace.Reset(graceWait)
	}
	defer r.grace.Stop()
	for bl.Backlog() {
		select {
		case b := <-r.rx:
			r.step(b)
		case <-r.grace.C:
			return
		}
	}
	for {
		select {
		case b := <-r.rx:
			r.step(b)
		default:
			return
		}
	}
}

// read is a reader goroutine: receive a batch, open each datagram in place,
// hand the plaintexts to Run.
func (r *Ring) read(rc transport.Receiver) error {
	for {
		var b *rxBuf
		select {
		case b = <-r.free:
		case <-r.stop:
			return nil
		}
		n, err := rc.Recv(b.msgs)
		if err != nil {
			if errors.Is(err, transport.ErrClosed) {
				return nil
			}
			select {
			case <-r.stop:
				return nil
			default:
			}
			return fmt.Errorf("receive: %w", err)
		}
		r.dgIn.Add(uint64(n))
		b.pts = b.pts[:0]
		for i := range n {
			m := &b.msgs[i]
			if m.Truncated {
				// Bigger than any datagram we send: not ours. Counted
				// as an authentication failure by Open.
				m.N = 0
			}
			pt, err := r.env.OpenInPlace(m.Buf[:m.N])
			if err != nil {
				continue
			}
			b.pts = append(b.pts, pt)
		}
		if len(b.pts) == 0 {
			r.free <- b
			continue
		}
		select {
		case r.rx <- b:
		case <-r.stop:
			return nil
		}
	}
}

func (r *Ring) step(b *rxBuf) {
	for _, pt := range b.pts {
		// srp does not retain data; a malformed datagram is counted
		// by the Processor and otherwise harmless.
		_ = r.proc.Step(r.now(), pt)
	}
	r.free <- b
}

// pump moves queued application messages through the packer into the
// Processor until it is full (then it returns true) or nothing is left.
func (r *Ring) pump() (full bool) {
	for {
		for {
			f, ok := r.packer.Peek()
			if !ok {
				break
			}
			err := r.proc.Send(f.Data, f.Guarantee)
			if errors.Is(err, totem.ErrTryAgain) {
				return true
			}
			if err != nil {
				// Cannot happen with frames within the budget; drop
				// rather than wedge the queue.
				r.log.Error("srp refused a frame", zap.Error(err), zap.Int("bytes", len(f.Data)))
			}
			r.packer.Pop()
			r.packer.Release(f.Data)
		}
		m, ok := r.dequeue()
		if !ok {
			if !r.packer.Open() {
				return false
			}
			// Nothing more to pack right now: send what we have.
			r.packer.Flush()
			continue
		}
		if err := r.packer.Add(m.service, m.id, m.g, m.payload); err != nil {
			r.log.Error("cannot pack message", zap.Error(err))
			continue
		}
		r.msgsOut.Add(1)
	}
}

// output handles everything the Processor produced: persist, send,
// deliver. progress reports whether there was anything.
func (r *Ring) output() (progress bool, err error) {
	for r.proc.HasReady() {
		rd := r.proc.Ready()
		progress = progress || len(rd.Datagrams) > 0 || len(rd.Events) > 0
		r.deadline = rd.Deadline
		if rd.PersistSeq != 0 {
			if err := storeSeq(r.seqPath, rd.PersistSeq); err != nil {
				r.log.Error("cannot persist ring sequence number; stopping", zap.Error(err))
				return progress, err
			}
		}
		if len(rd.Datagrams) > 0 {
			r.send(rd.Datagrams)
		}
		conf := false
		for i := range rd.Events {
			e := &rd.Events[i]
			switch e.Kind {
			case srp.EventDeliver:
				if err := r.reasm.Frame(e.Sender, e.Guarantee, e.Payload, r.deliver); err != nil {
					r.pgMalformed.Add(1)
					r.log.Warn("malformed pg frame", zap.Uint32("sender", uint32(e.Sender)), zap.Error(err))
				}
			case srp.EventConfChange:
				conf = true
				cut := r.reasm.Stats().Cut
				r.reasm.ConfChange(e.Conf)
				if d := r.reasm.Stats().Cut - cut; d > 0 {
					r.log.Warn("partial messages dropped at configuration change", zap.Uint64("messages", d))
				}
				r.log.Info("configuration", zap.Stringer("kind", e.Conf.Kind), zap.Stringer("ring", e.Conf.Ring),
					zap.Any("members", e.Conf.Members), zap.Any("left", e.Conf.Left), zap.Any("joined", e.Conf.Joined))
				r.ev.ConfChange(e.Conf)
			}
		}
		if conf {
			r.refreshStatus()
		}
	}
	if now := r.now(); now-r.lastStat >= statusEvery {
		r.refreshStatus()
	}
	return progress, nil
}

// send seals the datagrams into one reused buffer and sends them in one
// batch.
func (r *Ring) send(dgs []srp.Datagram) {
	ov := r.env.Overhead()
	need := 0
	for _, d := range dgs {
		need += len(d.Data) + ov
	}
	if cap(r.sealBuf) < need {
		r.sealBuf = make([]byte, 0, 2*need)
	}
	buf := r.sealBuf[:0]
	pkts := r.pkts[:0]
	for _, d := range dgs {
		start := len(buf)
		buf = r.env.Seal(buf, d.Data)
		pkts = append(pkts, transport.Packet{To: d.To, Data: buf[start:len(buf):len(buf)]})
	}
	n, err := r.tr.Send(pkts)
	r.dgOut.Add(uint64(n))
	if err != nil && !errors.Is(err, transport.ErrClosed) {
		if n := r.sendErrs.Add(1); n&(n-1) == 0 { // log at powers of two
			r.log.Warn("send failed", zap.Error(err), zap.Uint64("errors", n))
		}
	}
	clear(pkts)
	r.pkts = pkts[:0]
}

func (r *Ring) refreshStatus() {
	s := r.proc.Status()
	s.Counters = r.proc.Counters()
	r.status.Store(&s)
	r.lastStat = r.now()
}
