package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"

	"ringmaster/crm/cib"
	"ringmaster/crm/controld"
	"ringmaster/crm/wire"
	"ringmaster/internal/events"
	"ringmaster/ipc"
	"ringmaster/stonithd"
	"ringmaster/stonithd/agent"
	"ringmaster/totem"
	"ringmaster/totem/exec"
)

// Fencer messages on the ring (exec.ServiceStonith). Append only.
const (
	// msgFenceHistory carries stonithd.EncodeHistory entries; every node
	// merges them (the merge converges whatever the order).
	msgFenceHistory uint16 = 1
)

// fenceService is the fencer on this node (exec.ServiceStonith): it runs
// the controller's fencing requests and `ringctl stonith fence` with
// stonithd's driver, keeps the fence devices and topology in step with the
// CIB, and replicates the fencing history to every node.
type fenceService struct {
	d    *Daemon
	host exec.Host
	log  *zap.Logger
	drv  *stonithd.Driver
	reg  *agent.Registry
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu      sync.Mutex
	cib     *cib.CIB // newest CIB not yet turned into devices
	devWake chan struct{}
	md      map[string]*stonithd.Metadata
}

func (d *Daemon) newFencer() *fenceService {
	cfg := d.Config()
	name := cfg.Nodes[0].Name
	for _, n := range cfg.Nodes {
		if totem.NodeID(n.NodeID) == d.node {
			name = n.Name
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	f := &fenceService{d: d, ctx: ctx, stop: stop, devWake: make(chan struct{}, 1), md: map[string]*stonithd.Metadata{},
		reg: agent.New(agent.Config{Dir: cfg.Resources.FenceAgentDir, Node: name, Prestart: cfg.Resources.FencePrestartEffective()})}
	f.drv = stonithd.NewDriver(stonithd.DriverConfig{
		Fencer:    stonithd.Config{Node: name, Rand: rand.Int64N},
		Executor:  f.reg,
		OnHistory: f.multicast,
	})
	f.wg.Add(1)
	go f.devices()
	return f
}

func (f *fenceService) ID() exec.ServiceID { return exec.ServiceStonith }
func (f *fenceService) Name() string       { return "stonith" }

func (f *fenceService) Init(h exec.Host) error {
	f.host = h
	f.log = h.Log()
	return nil
}

// ConfChange: after a membership change every node multicasts its whole
// history once, so nodes that join converge on the same history.
func (f *fenceService) ConfChange(c totem.ConfChange) {
	if c.Kind != totem.Regular {
		return
	}
	if h := f.drv.History(); len(h) > 0 {
		f.send(h)
	}
	// A node that is back in the ring cleanly no longer needs fencing:
	// the controller has dropped the request; stop any attempt still
	// running (on a goroutine: Cancel records history, which multicasts
	// under the executive's lock).
	var back []string
	for _, id := range c.Joined {
		if f.d.crm != nil {
			back = append(back, f.d.crm.nodeName(id))
		}
	}
	if len(back) > 0 {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for _, n := range back {
				if k := f.drv.Cancel(n, "rejoined the cluster cleanly"); k > 0 {
					f.log.Info("abandoned fencing of a node that rejoined", zap.String("target", n), zap.Int("operations", k))
				}
			}
		}()
	}
}

func (f *fenceService) Deliver(m totem.Message) {
	if m.ID != msgFenceHistory || m.Sender == f.host.Local() {
		return
	}
	entries, err := stonithd.DecodeHistory(m.Payload)
	if err != nil {
		f.log.Warn("dropped a malformed fencing history message", zap.Uint32("sender", uint32(m.Sender)), zap.Error(err))
		return
	}
	f.drv.MergeHistory(entries)
}

// multicast is the driver's OnHistory (any goroutine, no lock held).
func (f *fenceService) multicast(entries []stonithd.Entry) {
	for _, e := range entries {
		ev := "fencing succeeded"
		if e.Result != stonithd.ResultSuccess {
			ev = "fencing failed"
		}
		f.d.obs.events.Record(events.Fencing, ev, events.Fields{"target": e.Target, "action": e.Action,
			"device": e.Device, "reason": e.Reason})
	}
	f.d.exec.Do(func() { f.send(entries) })
}

func (f *fenceService) send(entries []stonithd.Entry) {
	if f.host == nil {
		return
	}
	p, err := stonithd.EncodeHistory(entries)
	if err != nil {
		f.log.Error("cannot encode the fencing history", zap.Error(err))
		return
	}
	f.host.SendReliable(msgFenceHistory, totem.Agreed, p)
}

// setCIB hands a new CIB to the device builder (under the executive's
// lock; the builder runs agents for their meta-data, so it has its own
// goroutine).
func (f *fenceService) setCIB(c *cib.CIB) {
	f.mu.Lock()
	f.cib = c
	f.mu.Unlock()
	select {
	case f.devWake <- struct{}{}:
	default:
	}
}

// devices rebuilds the fence devices and topology from each new CIB.
func (f *fenceService) devices() {
	defer f.wg.Done()
	var last string
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-f.devWake:
		}
		f.mu.Lock()
		c := f.cib
		f.mu.Unlock()
		if c == nil || c.Config == nil {
			continue
		}
		// Only the configuration matters; status updates are frequent.
		key := fmt.Sprint(c.Attrs.Value("admin_epoch"), ".", c.Attrs.Value("epoch"))
		if key == last {
			continue
		}
		last = key
		devs, errs := stonithd.DevicesFromCIB(c, f.metadata, stonithd.DeviceOptions{}) // it reads stonith-timeout itself
		for _, err := range errs {
			f.log.Warn("fence device not usable", zap.Error(err))
		}
		f.drv.SetDevices(devs)
		// Any node may become the DC that fences, so every node keeps
		// its agents started (agent.Config.Prestart).
		agents := make([]string, 0, len(devs))
		for _, d := range devs {
			if !d.Disabled {
				agents = append(agents, d.Agent)
			}
		}
		f.reg.KeepWarm(agents)
		var b bytes.Buffer
		if _, err := c.WriteTo(&b); err != nil {
			continue
		}
		if root, err := cib.ParseElement(&b); err == nil {
			if t, err := stonithd.TopologyFromElement(root); err != nil {
				f.log.Warn("fencing topology not usable", zap.Error(err))
			} else {
				f.drv.SetTopology(t)
			}
		}
	}
}

// metadata fetches an agent's meta-data once (devices goroutine only).
func (f *fenceService) metadata(name string) *stonithd.Metadata {
	if md, ok := f.md[name]; ok {
		return md
	}
	ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
	defer cancel()
	md := f.reg.MetadataFunc(ctx)(name)
	if md != nil {
		f.md[name] = md
	}
	return md
}

// fenceFor runs the controller's request and answers it with FenceDone.
func (f *fenceService) fenceFor(req controld.FenceRequest, post func(func(time.Time)), ctrl *controld.Controller) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		start := time.Now()
		out, err := f.drv.Fence(f.ctx, stonithd.Request{Target: req.Uname, Action: stonithd.Action(req.Action),
			Client: "controld", Timeout: req.Timeout})
		reason := out.Entry.Reason
		if err != nil && reason == "" {
			reason = err.Error()
		}
		// The failover breakdown (bench/RESULTS.md) reads this line: the
		// agent's share of the time between the decision and the
		// result's delivery.
		f.log.Info("fencing request done", zap.String("target", req.Uname), zap.String("action", req.Action),
			zap.String("device", out.Entry.Device), zap.Bool("ok", err == nil), zap.Duration("took", time.Since(start)))
		post(func(now time.Time) {
			ctrl.FenceDone(now, controld.FenceResult{ID: req.ID, OK: err == nil, Reason: reason})
		})
	}()
}

// Request answers `ringctl stonith history|fence`.
func (f *fenceService) Request(c exec.Client, h ipc.Header, p []byte) {
	switch h.Msg {
	case wire.ReqFenceHistory:
		b, err := json.Marshal(f.drv.History())
		if err != nil {
			_ = c.ReplyError(h, err)
			return
		}
		_ = c.Reply(h, b)
	case wire.ReqFence:
		var req wire.Fence
		if err := wire.Decode(p, &req); err != nil || req.Target == "" {
			_ = c.ReplyError(h, fmt.Errorf("%w: fencing needs a target node (%v)", ipc.ErrInvalid, err))
			return
		}
		switch stonithd.Action(req.Action) {
		case stonithd.ActionReboot, stonithd.ActionOff, stonithd.ActionOn:
		default:
			_ = c.ReplyError(h, fmt.Errorf("%w: action must be reboot, off or on, got %q", ipc.ErrInvalid, req.Action))
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			out, err := f.drv.Fence(f.ctx, stonithd.Request{Target: req.Target, Action: stonithd.Action(req.Action),
				Client: "ringctl", Timeout: req.Timeout})
			rep := wire.FenceReply{OK: err == nil, Device: out.Entry.Device, Reason: out.Entry.Reason}
			if err != nil && rep.Reason == "" {
				rep.Reason = err.Error()
			}
			if errors.Is(err, stonithd.ErrNoDevice) {
				_ = c.ReplyError(h, fmt.Errorf("%w: %v", ipc.ErrNotFound, err))
				return
			}
			_ = c.Reply(h, wire.Encode(rep))
		}()
	default:
		_ = c.ReplyError(h, ipc.Errorf(ipc.CodeUnknownMessage, "stonith: unknown request %d", h.Msg))
	}
}

func (f *fenceService) Disconnected(exec.Client) {}

func (f *fenceService) close() {
	f.stop()
	f.drv.Close()
	f.wg.Wait()
	f.reg.Close()
}
