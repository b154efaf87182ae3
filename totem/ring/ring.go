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
	Peers       map[totem.NodeID]netip.AddrPort // the nodelist, incl. self: udpu destinations; datagrams from other node IDs or addresses are dropped (filter.go)
	Mcast       netip.AddrPort                  // udp only
	TTL         int
	Timings     srp.Timings
	NetMTU      int
	Cipher      string                // "aes256" | "chacha20" | "none"
	Keys        [][]byte              // raw keyfile contents; first encrypts
	StateDir    string                // ring sequence persisted here (file per node id), fsync'd before use
	MemNet      *transport.MemNetwork // only for Transport "mem"
	// Links, with two or more entries, are the redundant networks of a
	// udp or udpu ring (links.go): the lowest link replaces Bind, Peers,
	// Mcast and TTL, every link has every node. One entry or none: the
	// single-link ring of Bind and Peers, without heartbeats.
	Links        []Link
	LinkSettings LinkSettings
}

// Errors.
var (
	ErrConfig  = errors.New("invalid ring configuration")
	ErrPersist = errors.New("cannot persist the ring sequence number")
	// ErrClosed: Send after Leave or after Run returned.
	ErrClosed  = errors.New("ring closed")
	ErrRunning = errors.New("ring already running")
)

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
	// flushWait bounds how long a token waits for the multicast socket's
	// reader (see flushGroup): a few wake-ups, far below any
	// retransmission interval.
	flushWait = 2 * time.Millisecond
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

type rxBuf struct {
	msgs []transport.Msg
	pts  [][]byte // opened plaintexts, aliasing msgs' buffers
}

// Ring runs one Totem processor. Send, Status, Counters, SetKeys and Leave
// are safe for concurrent use; Run is called once.
type Ring struct {
	cfg    Config
	ev     totem.Events
	log    *zap.Logger
	env    *crypto.Envelope
	srcs   atomic.Pointer[map[totem.NodeID]netip.AddrPort] // nodelist → expected source (filter.go); nil: unchecked; replaced by SetPeers (reconfig.go)
	reconf reconfig                                        // changes waiting for Run (reconfig.go)
	rej    rejects
	tr     transport.Transport
	links  *linkDriver // nil with one link (links.go)
	// linkCopies: redundant links, so a datagram seen before inside its
	// sender's window is most likely the sender's own copy on another
	// link (filter.go).
	linkCopies bool
	mtu        int
	budget     int
	timings    srp.Timings // as given to srp
	flowScale  int         // srp.Config.FlowScale (scaleFlow)
	seqPath    string

	// Owned by whoever holds runMu: Run's goroutine, or a Flush that
	// found Run idle (flush.go).
	runMu    sync.Mutex
	timer    *time.Timer
	armed    time.Duration // the deadline the timer is set for; -1: re-arm
	exited   bool          // Run has returned
	flushErr chan error    // an output error of Flush or stepInline, for Run to return (fail)
	// beforeSend is Flush's callback, due before the first datagrams
	// that follow early deliveries (see Flush).
	beforeSend func()
	proc       processor
	packer     *pg.Packer
	reasm      *pg.Reassembler
	deliver    func(totem.Message)
	deadline   time.Duration
	sealBuf    []byte
	pkts       []transport.Packet
	lastStat   time.Duration
	pauses     uint64 // pauses the Processor detected (notePause)
	start      time.Time
	grace      *time.Timer
	group      transport.GroupBacklogger // udp: the multicast socket's backlog
	flushing   bool
	flushT     *time.Timer
	// groupBusy counts batches the multicast reader has read and not
	// yet handed to Run.
	groupBusy atomic.Int32

	// Send queue: messages are packed as Send takes them (one copy, into
	// the frame), under qmu; Run takes closed frames out. qmsgs and
	// qbytes count what the packer holds that srp has not accepted yet.
	qmu     sync.Mutex
	qmsgs   int
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
	bytesIn                                             atomic.Uint64
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
	c, err := crypto.ParseCipher(cfg.Cipher)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	epoch, err := newEpoch(cfg.StateDir, cfg.Node)
	if err != nil {
		return nil, err
	}
	env, err := crypto.New(c, cfg.ClusterName, uint32(cfg.Node), epoch, cfg.Keys)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.NetMTU != 0 {
		// Validate before opening sockets.
		if _, err := pg.NewPacker(FrameBudget(cfg.NetMTU, c)); err != nil {
			return nil, fmt.Errorf("%w: netmtu %d: %w", ErrConfig, cfg.NetMTU, err)
		}
	}
	if err := normalizeLinks(&cfg); err != nil {
		return nil, err
	}
	seqPath := seqFile(cfg.StateDir, cfg.Node)
	seq, err := loadSeq(seqPath)
	if err != nil {
		return nil, err
	}
	if err := checkPersistedSeq(seqPath, seq); err != nil {
		return nil, err
	}
	tr, err := openTransport(cfg)
	if err != nil {
		return nil, err
	}
	mtu := cfg.NetMTU
	if mtu == 0 {
		mtu = autoMTU(tr, cfg.Timings.WindowSize)
	}
	budget := frameBudget(tr, mtu, c)
	packer, err := pg.NewPacker(budget)
	if err != nil {
		tr.Close()
		return nil, fmt.Errorf("%w: netmtu %d: %w", ErrConfig, mtu, err)
	}
	r := &Ring{
		cfg:      cfg,
		ev:       ev,
		log:      log.With(zap.Uint32("node", uint32(cfg.Node))),
		env:      env,
		tr:       tr,
		mtu:      mtu,
		budget:   budget,
		seqPath:  seqPath,
		packer:   packer,
		reasm:    pg.NewReassembler(),
		wake:     make(chan struct{}, 1),
		flushErr: make(chan error, 1),
		leaveCh:  make(chan struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	r.rej.log = r.log
	r.setSources(sources(cfg))
	r.deliver = func(m totem.Message) {
		r.msgsIn.Add(1)
		r.ev.Deliver(m)
	}
	r.start = time.Now()
	rcvbuf := 0
	if b, ok := tr.(interface{ RecvBuffer() int }); ok {
		rcvbuf = b.RecvBuffer()
	}
	r.timings, r.flowScale = scaleFlow(cfg.Timings, budget, rcvbuf)
	r.proc = mk(srp.Config{
		Node:       cfg.Node,
		Timings:    r.timings,
		FlowScale:  r.flowScale,
		InitialSeq: seq,
		// Seeded from the OS: the jitter of send_join must differ
		// between nodes and boots; determinism is the simulator's job.
		Rand:       rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		MaxPayload: budget,
		// output seals and sends every datagram before the next Ready.
		ReuseDatagrams: true,
	}, 0)
	if g, ok := r.tr.(transport.GroupBacklogger); ok && r.isGroupReceiver(0) {
		r.group = g
	}
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
	if lt, ok := tr.(*transport.Links); ok {
		if r.links, err = newLinkDriver(r, lt); err != nil {
			tr.Close()
			return nil, err
		}
		r.linkCopies = true
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
		if len(cfg.Links) > 1 {
			return openLinks(cfg)
		}
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

// Send queues an application message for ordered delivery to every member,
// this node included. It copies payload (straight into the frame that will
// carry it), never blocks and never calls Events. It returns
// totem.ErrTryAgain when the queue is full, totem.ErrTooLarge above
// totem.MaxMessageSize, ErrClosed after Leave.
func (r *Ring) Send(service, id uint16, g totem.Guarantee, payload []byte) error {
	if err := r.enqueue(service, id, g, payload); err != nil {
		return err
	}
	r.wakeRun()
	return nil
}

// enqueue is Send without waking Run (SendBatched).
func (r *Ring) enqueue(service, id uint16, g totem.Guarantee, payload []byte) error {
	if len(payload) > totem.MaxMessageSize {
		return fmt.Errorf("%w: %d bytes", totem.ErrTooLarge, len(payload))
	}
	if g > totem.Safe {
		return fmt.Errorf("%w: unknown guarantee %d", ErrConfig, g)
	}
	r.qmu.Lock()
	switch {
	case r.qclosed:
		r.qmu.Unlock()
		return ErrClosed
	case r.qmsgs >= maxQueueMsgs, r.qmsgs > 0 && r.qbytes+len(payload) > maxQueueBytes:
		r.qmu.Unlock()
		return totem.ErrTryAgain
	}
	if err := r.packer.Add(service, id, g, payload); err != nil {
		r.qmu.Unlock()
		return err
	}
	r.qmsgs++
	r.qbytes += len(payload)
	r.qmu.Unlock()
	r.msgsOut.Add(1)
	return nil
}

// Status returns the last snapshot taken by Run (at most statusEvery old,
// and fresh after every configuration change), with the counters and the
// send queue as they are now.
func (r *Ring) Status() totem.Status {
	s := *r.status.Load()
	s.Members = slices.Clone(s.Members)
	s.Counters = r.Counters()
	s.Links = r.Links()
	r.qmu.Lock()
	s.Backlog.Messages, s.Backlog.Bytes = uint64(r.qmsgs), uint64(r.qbytes)
	r.qmu.Unlock()
	return s
}

// Counters combines the Processor's counters (as of the last snapshot) with
// the driver's, crypto's and pg's.
func (r *Ring) Counters() totem.Counters {
	c := r.status.Load().Counters
	c.DatagramsIn = r.dgIn.Load()
	c.DatagramsOut = r.dgOut.Load()
	c.BytesIn = r.bytesIn.Load()
	if bc, ok := r.tr.(transport.ByteCounter); ok {
		c.BytesOut = bc.SentBytes()
	}
	c.AuthFailures = r.rej.get(rejectAuth)
	c.Replayed = r.rej.get(rejectReplay)
	c.LinkDuplicates = r.rej.get(rejectLinkDuplicate)
	c.UnknownNode = r.rej.get(rejectUnknownNode)
	c.BadAddress = r.rej.get(rejectBadAddress)
	c.OutOfRange += r.rej.get(rejectOutOfRange)
	c.Malformed += r.rej.get(rejectMalformed)
	c.MessagesIn = r.msgsIn.Load()
	c.MessagesOut = r.msgsOut.Load()
	c.Malformed += r.pgMalformed.Load()
	if r.links != nil {
		c.LinkUps, c.LinkDowns = r.links.ups.Load(), r.links.downs.Load()
	}
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
	for i, rc := range r.tr.Receivers() {
		// With udp, the multicast sockets' readers count what they
		// hold (flushGroup).
		var busy *atomic.Int32
		if r.group != nil && r.isGroupReceiver(i) {
			busy = &r.groupBusy
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			if err := r.read(rc, busy); err != nil {
				fatal <- err
			}
		}()
	}
	if r.links != nil {
		readers.Add(1)
		go func() {
			defer readers.Done()
			r.links.run(r.stop)
		}()
	}
	defer func() {
		r.runMu.Lock()
		r.exited = true // Flush steps nothing from now on
		r.timer.Stop()
		r.runMu.Unlock()
	}()
	r.runMu.Lock()
	r.timer = time.NewTimer(time.Hour)
	r.armed = -1
	_, err := r.output()
	r.rearm()
	r.runMu.Unlock()
	if err != nil {
		return err
	}
	// Whoever holds runMu (iterate, Flush, stepInline) re-arms the timer
	// before letting go of it.
	for {
		var b *rxBuf
		var fired, leave bool
		select {
		case <-ctx.Done():
			return nil
		case err := <-fatal:
			return err
		case err := <-r.flushErr:
			return err
		case <-r.leaveCh:
			leave = true
		case b = <-r.rx:
		case <-r.timer.C:
			fired = true
		case <-r.wake:
		}
		if done, err := r.iterate(b, fired, leave); done {
			return err
		}
	}
}

// rearm sets the timer to the Processor's deadline when that changed (or
// the timer fired). Called with runMu held.
func (r *Ring) rearm() {
	if r.deadline == r.armed {
		return
	}
	r.armed = r.deadline
	if r.armed == 0 {
		r.timer.Stop()
	} else {
		r.timer.Reset(max(0, r.armed-r.now()))
	}
}

// iterate is one turn of Run's loop after what woke it (a received batch
// b, the timer, a Leave, or a wake-up): apply pending changes, step what
// was received, tick a due timer, pump the send queue, handle the output.
// done reports that Run must return err.
func (r *Ring) iterate(b *rxBuf, fired, leave bool) (done bool, err error) {
	r.runMu.Lock()
	defer r.runMu.Unlock()
	if leave {
		r.proc.Leave(r.now())
		_, err := r.output()
		return true, err
	}
	if r.reconf.pending.Swap(false) {
		r.applyReconfig()
		if r.links != nil {
			r.links.apply()
		}
	}
	if b != nil {
		r.step(b)
	}
	if fired {
		r.armed = -1 // fired: re-arm even if the deadline is unchanged
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
	if err := r.pumpOutput(); err != nil {
		return true, err
	}
	r.rearm()
	return false, nil
}

// pumpOutput hands queued frames to the Processor and handles its output
// (Run's turn, Flush, stepInline). When the Processor was full but made
// progress, it may have room again: Run comes back to pump without
// waiting for another input. Called with runMu held.
func (r *Ring) pumpOutput() error {
	full := r.pump()
	progress, err := r.output()
	if err != nil {
		return err
	}
	if full && progress {
		r.wakeRun()
	}
	return nil
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
	r.stepWhile(&r.grace, graceWait, bl.Backlog)
}

// stepWhile steps received batches while more is known to be on its way
// (pending) for at most wait, then steps whatever has already arrived
// without waiting. *t is the loop's reusable timer for this wait.
func (r *Ring) stepWhile(t **time.Timer, wait time.Duration, pending func() bool) {
	if *t == nil {
		*t = time.NewTimer(wait)
	} else {
		(*t).Reset(wait)
	}
	defer (*t).Stop()
	for pending() {
		select {
		case b := <-r.rx:
			r.step(b)
		case <-(*t).C:
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
func (r *Ring) read(rc transport.Receiver, busy *atomic.Int32) error {
	for {
		var b *rxBuf
		select {
		case b = <-r.free:
		case <-r.stop:
			return nil
		}
		n, err := rc.Recv(b.msgs)
		if busy != nil && err == nil {
			busy.Add(1) // read, not yet handed to Run (flushGroup)
		}
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
		b.pts = b.pts[:0]
		dgs, bytes := 0, 0
		for i := range n {
			m := &b.msgs[i]
			bytes += m.N
			if m.Truncated {
				// Bigger than any datagram we send: not ours. Counted
				// as an authentication failure by Open.
				m.N = 0
			}
			// A slot holds one datagram, or a segmented burst the
			// kernel kept together (m.Seg bytes each).
			d := m.Buf[:m.N]
			for {
				k := len(d)
				if m.Seg > 0 && m.Seg < k {
					k = m.Seg
				}
				dgs++
				if pt, ok := r.open(d[:k:k], m.From); ok {
					if isHeartbeat(pt) {
						r.heartbeat(pt, m.Link, m.From)
					} else {
						b.pts = append(b.pts, pt)
					}
				}
				if d = d[k:]; len(d) == 0 {
					break
				}
			}
		}
		r.dgIn.Add(uint64(dgs))
		r.bytesIn.Add(uint64(bytes))
		if len(b.pts) == 0 {
			if busy != nil {
				busy.Add(-1)
			}
			r.free <- b
			continue
		}
		if !r.stepInline(b) {
			select {
			case r.rx <- b:
			case <-r.stop:
				return nil
			}
		}
		if busy != nil {
			busy.Add(-1)
		}
	}
}

func (r *Ring) step(b *rxBuf) {
	for _, pt := range b.pts {
		if r.group != nil && !r.flushing && len(pt) > 1 && wire.Type(pt[1]) == wire.TypeToken && (r.groupBusy.Load() > 0 || r.group.GroupBacklog()) {
			r.flushGroup()
		}
		// srp does not retain data; a malformed or out-of-range
		// datagram is counted by the Processor and otherwise harmless.
		r.stepErr(r.proc.Step(r.now(), pt))
	}
	r.free <- b
}

// flushGroup steps what waits on the multicast socket before a token from
// the unicast socket (corosync's recv_flush). The two sockets have their
// own readers, so a token could overtake the burst its sender multicast
// just before it: the Processor would then ask for those messages again
// and the others would resend them (with transport udp in namespaces,
// tens of thousands of needless retransmissions in a few seconds). The
// wait is bounded (flushWait), so a flood cannot hold the token.
func (r *Ring) flushGroup() {
	r.flushing = true
	defer func() { r.flushing = false }()
	r.stepWhile(&r.flushT, flushWait, func() bool { return r.groupBusy.Load() > 0 || r.group.GroupBacklog() })
}

// pump hands the packed frames to the Processor until it is full (then it
// returns true) or none is left; a partly filled frame is closed and sent
// when nothing else waits (more messages would only come later).
func (r *Ring) pump() (full bool) {
	for {
		r.qmu.Lock()
		f, ok := r.packer.Peek()
		if !ok && r.packer.Open() {
			r.packer.Flush()
			f, ok = r.packer.Peek()
		}
		r.qmu.Unlock()
		if !ok {
			return false
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
		r.qmu.Lock()
		r.packer.Pop()
		r.packer.Release(f.Data) // srp copied it
		r.qmsgs -= f.Msgs
		r.qbytes = max(0, r.qbytes-len(f.Data))
		r.qmu.Unlock()
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
		early := deliverFirst(rd.Events)
		if len(rd.Datagrams) > 0 && !early {
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
		if len(rd.Datagrams) > 0 && early {
			if f := r.beforeSend; f != nil {
				// A Flush's caller writes the deliveries to its client
				// before the datagrams wake the other nodes.
				r.beforeSend = nil
				f()
			}
			r.send(rd.Datagrams)
		}
		if conf {
			r.refreshStatus()
		}
	}
	if now := r.now(); now-r.lastStat >= statusEvery {
		r.refreshStatus()
	}
	r.notePause()
	return progress, nil
}

// notePause logs the pauses the Processor detected (srp pause: it was not
// scheduled for more than token/2 past a deadline, and flushed the stale
// membership views that waited in the socket), as corosync's "process
// pause detected" does: frequent ones call for a longer token.
func (r *Ring) notePause() {
	pp, ok := r.proc.(interface {
		Pauses() (uint64, time.Duration)
	})
	if !ok {
		return
	}
	if n, late := pp.Pauses(); n != r.pauses {
		r.pauses = n
		r.log.Warn("process pause detected: not scheduled past a deadline; stale membership messages flushed",
			zap.Duration("late", late), zap.Duration("token", r.timings.Token), zap.Uint64("pauses", n))
	}
}

// maxEarlyEvents bounds the deliveries that may precede the datagrams of
// the same Ready (see deliverFirst).
const maxEarlyEvents = 4

// deliverFirst reports whether a Ready's few message deliveries go to the
// executive before its datagrams leave. On a lightly loaded ring that is a
// local client's own message coming back: sending first wakes the other
// nodes, which on a small machine then compete with the client for the
// CPU (p50 at 1,000 msgs/s: 240 → 185 µs on 3 nodes, 2 cores). A batch of
// many deliveries, or a configuration change (the executive starts its
// sync), goes after the datagrams so the token never waits for them.
func deliverFirst(evs []srp.Event) bool {
	if len(evs) == 0 || len(evs) > maxEarlyEvents {
		return false
	}
	for i := range evs {
		if evs[i].Kind != srp.EventDeliver {
			return false
		}
	}
	return true
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
		buf = r.env.Seal(buf, uint32(d.To), d.Data)
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
