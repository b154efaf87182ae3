package stonithd

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"ringmaster/crm/cib"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrBadDevice: a fence device's configuration is invalid; the message
	// names the device and the attribute.
	ErrBadDevice = errors.New("stonithd: invalid fence device")
	// ErrBadMetadata: an agent's meta-data could not be parsed.
	ErrBadMetadata = errors.New("stonithd: invalid agent meta-data")
	// ErrBadTopology: the fencing-topology is invalid.
	ErrBadTopology = errors.New("stonithd: invalid fencing topology")
	// ErrBadRequest: a fencing request is malformed (no target, unknown
	// action).
	ErrBadRequest = errors.New("stonithd: invalid fencing request")
	// ErrNoDevice: no configured device can fence the target.
	ErrNoDevice = errors.New("stonithd: no device can fence the target")
	// ErrCancelled: the operation was cancelled (Fencer.Cancel).
	ErrCancelled = errors.New("stonithd: fencing cancelled")
	// ErrFailed: every level (or every capable device) failed.
	ErrFailed = errors.New("stonithd: fencing failed")
)

// Action is a fencing action as requested by the cluster.
type Action string

// Fencing actions. The agent may be asked for something else
// (pcmk_reboot_action), but requests and history use these.
const (
	ActionReboot Action = "reboot"
	ActionOff    Action = "off"
	ActionOn     Action = "on"
)

// Valid reports whether a is a fencing action a request may carry.
func (a Action) Valid() bool { return a == ActionReboot || a == ActionOff || a == ActionOn }

// Agent actions the fencer itself runs besides the fencing actions.
const (
	AgentList     = "list"
	AgentStatus   = "status"
	AgentMonitor  = "monitor"
	AgentMetadata = "metadata"
)

// HostCheck is pcmk_host_check: how the fencer learns which nodes a
// device can fence.
type HostCheck string

// Host check modes, as Pacemaker spells them.
const (
	HostCheckStatic  HostCheck = "static-list"  // pcmk_host_list / pcmk_host_map
	HostCheckDynamic HostCheck = "dynamic-list" // the agent's list action
	HostCheckStatus  HostCheck = "status"       // the agent's status action per target
	HostCheckNone    HostCheck = "none"         // every node
)

// Defaults, each with its reason.
const (
	// DefaultTimeout is Pacemaker's stonith-timeout default (60s): the
	// time a device action may take when no pcmk_<action>_timeout is set.
	DefaultTimeout = 60 * time.Second
	// DefaultRetries is Pacemaker's pcmk_<action>_retries default (2):
	// devices that take one connection at a time often fail when busy, so
	// a failed action is retried while its timeout has time left.
	DefaultRetries = 2
)

// Agent names of the builtin fence agents.
const (
	BuiltinScript = "builtin:fence-script"
	BuiltinVsock  = "builtin:fence-vsock"
)

// Device is one fence device: a CIB primitive of class stonith (or a
// builtin fence agent) with the pcmk_* attributes interpreted. It is
// immutable once built; the Fencer shares it between operations.
type Device struct {
	ID string
	// Agent is the executable's name for fence-agents ("fence_ipmilan")
	// or BuiltinScript / BuiltinVsock.
	Agent string
	// Params are the instance attributes that go to the agent (every
	// pcmk_* attribute and the fencer's own options are removed).
	Params map[string]string
	// Priority orders devices without a topology: higher first.
	Priority int
	// Disabled is set by meta target-role=Stopped: the device is
	// configured but must not be used.
	Disabled bool

	HostList     []string
	HostMap      HostMap
	HostCheck    HostCheck
	HostArgument string // "port", "plug", another parameter, or "none"

	// DelayBase and DelayMax are pcmk_delay_base and pcmk_delay_max: a
	// fixed and a random delay before the first fencing action of an
	// operation, so that two nodes of a split two-node cluster do not
	// shoot each other at the same time.
	DelayBase, DelayMax time.Duration

	actionMap map[string]string        // pcmk_<action>_action
	timeouts  map[string]time.Duration // pcmk_<action>_timeout
	retries   map[string]int           // pcmk_<action>_retries
	timeout   time.Duration            // stonith-timeout fallback
	md        *Metadata
}

// pcmkActions are the actions with pcmk_<action>_{action,timeout,retries}.
var pcmkActions = []string{"reboot", "off", "on", "list", "monitor", "status"}

// fencerParams are instance attributes the fencer consumes that are not
// pcmk_* prefixed; they never reach the agent.
var fencerParams = map[string]bool{"priority": true, "stonith-timeout": true, "provides": true}

// IsFenceDevice reports whether a CIB resource is a fence device: a
// primitive of class stonith, or of class builtin with a fence-* type.
func IsFenceDevice(r *cib.Resource) bool {
	return r != nil && r.IsFenceDevice()
}

// AgentName is the agent a fence primitive runs: the type for class
// stonith ("fence_ipmilan"), "builtin:fence-script" for the builtins
// (class builtin, or class stonith with type fence-script/fence-vsock).
func AgentName(r *cib.Resource) string {
	if r.Class == "builtin" || r.Type == "fence-script" || r.Type == "fence-vsock" {
		return "builtin:" + r.Type
	}
	return r.Type
}

// Attributes flattens a resource's attribute sets: the first value of a
// name wins, as Pacemaker evaluates sets in order. Sets with a rule are
// skipped: rules on fence-device attributes are not evaluated yet (they
// need the node and time context the scheduler has), and a skipped set is
// safer than one applied on the wrong node.
func Attributes(sets []*cib.NVSet) map[string]string {
	out := map[string]string{}
	for _, s := range sets {
		if s == nil || s.Rule != nil {
			continue
		}
		for _, p := range s.Pairs {
			if !p.HasValue {
				continue
			}
			if _, ok := out[p.Name]; !ok {
				out[p.Name] = p.Value
			}
		}
	}
	return out
}

// DeviceOptions are the cluster-wide settings a device falls back on.
type DeviceOptions struct {
	// Timeout is the cluster's stonith-timeout; 0 means DefaultTimeout.
	Timeout time.Duration
}

// NewDevice builds a Device from a fence primitive and its agent's
// meta-data (nil when it could not be fetched: the defaults that depend
// on it then assume the agent supports every action and a port argument).
func NewDevice(r *cib.Resource, md *Metadata, opt DeviceOptions) (*Device, error) {
	if !IsFenceDevice(r) {
		return nil, fmt.Errorf("%w: resource %q is not a fence device (class %q)", ErrBadDevice, r.ID, r.Class)
	}
	params := Attributes(r.Instance)
	meta := Attributes(r.Meta)
	d, err := newDevice(r.ID, AgentName(r), params, meta, md, opt)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// NewDeviceFromParams is NewDevice for callers without a CIB resource
// (tests, `ringctl stonith` with flags): params are the instance
// attributes, meta the meta attributes.
func NewDeviceFromParams(id, agent string, params, meta map[string]string, md *Metadata, opt DeviceOptions) (*Device, error) {
	return newDevice(id, agent, params, meta, md, opt)
}

func newDevice(id, agent string, params, meta map[string]string, md *Metadata, opt DeviceOptions) (*Device, error) {
	if id == "" || agent == "" {
		return nil, fmt.Errorf("%w: device needs an id and an agent", ErrBadDevice)
	}
	bad := func(attr string, err error) error {
		msg := strings.TrimPrefix(err.Error(), ErrBadDevice.Error()+": ")
		return fmt.Errorf("%w: %s: %s: %s", ErrBadDevice, id, attr, msg)
	}
	d := &Device{
		ID:        id,
		Agent:     agent,
		Params:    map[string]string{},
		actionMap: map[string]string{},
		timeouts:  map[string]time.Duration{},
		retries:   map[string]int{},
		timeout:   opt.Timeout,
		md:        md,
	}
	if d.timeout <= 0 {
		d.timeout = DefaultTimeout
	}
	for k, v := range params {
		if strings.HasPrefix(k, "pcmk_") || fencerParams[k] || k == "action" {
			continue
		}
		d.Params[k] = v
	}
	if v, ok := params["stonith-timeout"]; ok {
		t, err := ParseTimeout(v)
		if err != nil {
			return nil, bad("stonith-timeout", err)
		}
		d.timeout = t
	}
	prio := meta["priority"]
	if v, ok := params["priority"]; ok {
		prio = v
	}
	if prio != "" {
		n, err := strconv.Atoi(strings.TrimSpace(prio))
		if err != nil {
			return nil, bad("priority", err)
		}
		d.Priority = n
	}
	if strings.EqualFold(meta["target-role"], "Stopped") {
		d.Disabled = true
	}
	d.HostList = ParseHostList(params["pcmk_host_list"])
	if v := params["pcmk_host_map"]; v != "" {
		m, err := ParseHostMap(v)
		if err != nil {
			return nil, bad("pcmk_host_map", err)
		}
		d.HostMap = m
	}
	switch hc := HostCheck(strings.ToLower(strings.TrimSpace(params["pcmk_host_check"]))); hc {
	case HostCheckStatic, HostCheckDynamic, HostCheckStatus, HostCheckNone:
		d.HostCheck = hc
	case "":
		// Pacemaker's default: a static list when one is configured,
		// otherwise ask the device (list, then status), otherwise none.
		switch {
		case len(d.HostList) > 0 || d.HostMap.Len() > 0:
			d.HostCheck = HostCheckStatic
		case md != nil && md.HasAction(AgentList):
			d.HostCheck = HostCheckDynamic
		case md != nil && md.HasAction(AgentStatus):
			d.HostCheck = HostCheckStatus
		case md == nil:
			d.HostCheck = HostCheckDynamic
		default:
			d.HostCheck = HostCheckNone
		}
	default:
		return nil, bad("pcmk_host_check", fmt.Errorf("%q is not static-list, dynamic-list, status or none", hc))
	}
	if d.HostCheck == HostCheckStatic && len(d.HostList) == 0 && d.HostMap.Len() == 0 {
		return nil, bad("pcmk_host_check", errors.New("static-list needs pcmk_host_list or pcmk_host_map"))
	}
	d.HostArgument = strings.TrimSpace(params["pcmk_host_argument"])
	if d.HostArgument == "" {
		d.HostArgument = md.DefaultHostArgument()
	}
	for _, a := range pcmkActions {
		if v := strings.TrimSpace(params["pcmk_"+a+"_action"]); v != "" {
			d.actionMap[a] = v
		}
		if v, ok := params["pcmk_"+a+"_timeout"]; ok {
			t, err := ParseTimeout(v)
			if err != nil {
				return nil, bad("pcmk_"+a+"_timeout", err)
			}
			d.timeouts[a] = t
		}
		if v, ok := params["pcmk_"+a+"_retries"]; ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 || n > 100 {
				return nil, bad("pcmk_"+a+"_retries", fmt.Errorf("%q is not a count from 0 to 100", v))
			}
			d.retries[a] = n
		}
	}
	// An "action" instance attribute (old configurations set action=off to
	// make reboots power off) never reaches the agent, which gets the action
	// of each request; it means what pcmk_reboot_action would.
	if v := strings.TrimSpace(params["action"]); v != "" && d.actionMap["reboot"] == "" && v != "reboot" {
		d.actionMap["reboot"] = v
	}
	// Older configurations spell the off action pcmk_poweroff_action.
	if v := strings.TrimSpace(params["pcmk_poweroff_action"]); v != "" && d.actionMap["off"] == "" {
		d.actionMap["off"] = v
	}
	for _, p := range []struct {
		name string
		dst  *time.Duration
	}{{"pcmk_delay_base", &d.DelayBase}, {"pcmk_delay_max", &d.DelayMax}} {
		if v, ok := params[p.name]; ok && strings.TrimSpace(v) != "" {
			t, err := ParseTimeout(v)
			if err != nil {
				return nil, bad(p.name, err)
			}
			*p.dst = t
		}
	}
	return d, nil
}

// Metadata returns the agent meta-data the device was built with (nil
// when it was not available).
func (d *Device) Metadata() *Metadata { return d.md }

// AgentAction is the agent action that implements a fencer action:
// pcmk_<action>_action when set. A reboot on an agent that does not
// advertise reboot becomes off, which fences just as well.
func (d *Device) AgentAction(action string) string {
	if v := d.actionMap[action]; v != "" {
		return v
	}
	if action == string(ActionReboot) && d.md != nil && !d.md.HasAction("reboot") && d.md.HasAction("off") {
		return string(ActionOff)
	}
	return action
}

// StaysOff reports whether a reboot through this device leaves the node
// off (pcmk_reboot_action=off): the on half of a remapped reboot skips it.
func (d *Device) StaysOff() bool { return d.actionMap["reboot"] == string(ActionOff) }

// Supports reports whether the device can run a fencer action: the
// agent advertises it (or a pcmk_<action>_action replaces it).
func (d *Device) Supports(action string) bool {
	if _, ok := d.actionMap[action]; ok {
		return true
	}
	return d.md.HasAction(d.AgentAction(action))
}

// Timeout is pcmk_<action>_timeout, else the device's stonith-timeout,
// else the cluster's.
func (d *Device) Timeout(action string) time.Duration {
	if t, ok := d.timeouts[action]; ok && t > 0 {
		return t
	}
	return d.timeout
}

// Retries is pcmk_<action>_retries (default 2): how many times a failed
// action is run again while its timeout has time left.
func (d *Device) Retries(action string) int {
	if n, ok := d.retries[action]; ok {
		return n
	}
	return DefaultRetries
}

// Port is what the device calls target: its pcmk_host_map entry, else
// the node name itself.
func (d *Device) Port(target string) string {
	if p, ok := d.HostMap.Port(target); ok {
		return p
	}
	return target
}

// Capability is the answer to "can this device fence that node?".
type Capability int

// Capabilities. Unknown means the agent must be asked (list or status);
// the Fencer then runs a query Command.
const (
	CapNo Capability = iota
	CapYes
	CapUnknown
)

func (c Capability) String() string {
	switch c {
	case CapYes:
		return "yes"
	case CapNo:
		return "no"
	}
	return "unknown"
}

// CanFence decides from configuration alone whether the device can fence
// target. A disabled device fences nothing; static-list looks at
// pcmk_host_list and pcmk_host_map; none answers yes for every node;
// dynamic-list and status return CapUnknown: use CanFenceFromList or
// CanFenceFromStatus with the agent's answer.
func (d *Device) CanFence(target string) Capability {
	if d.Disabled || target == "" {
		return CapNo
	}
	switch d.HostCheck {
	case HostCheckNone:
		return CapYes
	case HostCheckStatic:
		if containsFold(d.HostList, target) {
			return CapYes
		}
		if _, ok := d.HostMap.Port(target); ok {
			return CapYes
		}
		return CapNo
	}
	return CapUnknown
}

// CanFenceFromList is the dynamic-list answer: the target's port (its
// host-map entry, or its name) is one of the names the list action
// printed.
func (d *Device) CanFenceFromList(target string, listed []string) bool {
	return containsFold(listed, d.Port(target)) || containsFold(listed, target)
}

// CanFenceFromStatus is the status answer: exit 0 (on) or 2 (off) means
// the device knows the port; anything else (1: error, unknown port) means
// it cannot fence the target.
func CanFenceFromStatus(rc int) bool { return rc == 0 || rc == 2 }

// AgentArgs are the key=value pairs a fence agent gets on stdin for one
// action: the device parameters, action=, the target as the host argument
// (port=, plug=, ...) unless it is "none", and nodename= (the target's
// node name, which Pacemaker always passes). Actions without a target
// (list, monitor, metadata) get neither.
func (d *Device) AgentArgs(action, target string) map[string]string {
	args := make(map[string]string, len(d.Params)+3)
	for k, v := range d.Params {
		args[k] = v
	}
	args["action"] = action
	if target != "" {
		args["nodename"] = target
		if d.HostArgument != "" && !strings.EqualFold(d.HostArgument, "none") {
			args[d.HostArgument] = d.Port(target)
		}
	}
	return args
}

// DevicesFromCIB builds every fence device of a CIB, in document order.
// mdFor returns an agent's meta-data (nil when unknown); it is called once
// per agent name. Devices that fail to build are returned as errors, one
// per device, and left out, so one typo does not disable every device.
func DevicesFromCIB(c *cib.CIB, mdFor func(agent string) *Metadata, opt DeviceOptions) ([]*Device, []error) {
	if c == nil || c.Config == nil {
		return nil, nil
	}
	if opt.Timeout == 0 {
		if v := clusterOption(c, "stonith-timeout"); v != "" {
			if t, err := ParseTimeout(v); err == nil {
				opt.Timeout = t
			}
		}
	}
	cache := map[string]*Metadata{}
	var out []*Device
	var errs []error
	var walk func(rs []*cib.Resource)
	walk = func(rs []*cib.Resource) {
		for _, r := range rs {
			if r.IsGroup() {
				walk(r.Children)
				continue
			}
			if !IsFenceDevice(r) {
				continue
			}
			name := AgentName(r)
			md, ok := cache[name]
			if !ok && mdFor != nil {
				md = mdFor(name)
				cache[name] = md
			}
			d, err := NewDevice(r, md, opt)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, d)
		}
	}
	walk(c.Config.Resources)
	return out, errs
}

// clusterOption returns a crm_config property (first set that has it,
// sets with rules skipped).
func clusterOption(c *cib.CIB, name string) string {
	return Attributes(c.Config.CrmConfig)[name]
}

// sortDevices orders devices for a fencing attempt without topology:
// highest priority first, ties broken by ID so every node picks the same
// order.
func sortDevices(ds []*Device) {
	sort.SliceStable(ds, func(i, j int) bool {
		if ds[i].Priority != ds[j].Priority {
			return ds[i].Priority > ds[j].Priority
		}
		return ds[i].ID < ds[j].ID
	})
}
