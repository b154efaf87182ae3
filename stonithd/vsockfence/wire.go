// Package vsockfence is builtin:fence-vsock: a cluster node running in a
// virtual machine asks a responder on the hypervisor host
// (`ringctl fence-host --listen-vsock PORT --exec 'CMD {vm}'`) to
// power-cycle another VM, over AF_VSOCK.
//
// Requests and responses are authenticated with HMAC-SHA256 under a key
// shared by the host and the cluster's guests (a key file), carry a
// timestamp and a random nonce (the host refuses stale and replayed
// requests), and the response is bound to the request's nonce. Possession
// of the key is what lets a guest fence: a guest of another cluster (with
// another key) cannot fence this cluster's VMs, and the host may further
// restrict the VM names a key may fence (--allow).
//
// The transport is a net.Listener / net.Conn: production uses
// github.com/mdlayher/vsock (listen.go); tests use a Unix socket or
// net.Pipe, since the test machines have no vsock host.
//
// Wire format, version 1 (all integers big-endian). Each message is one
// frame: a uint16 length, then the body.
//
//	request body:  "RMFV" | version=1 | type=1 | action u8 | flags u8=0 |
//	               nonce [16] | unix time ms int64 |
//	               requester (u8 length, bytes) | vm (u8 length, bytes) |
//	               HMAC-SHA256(key, everything before it) [32]
//	response body: "RMFV" | version=1 | type=2 | status u8 | flags u8=0 |
//	               nonce [16] (the request's) | message (u16 length, bytes) |
//	               HMAC-SHA256(key, everything before it) [32]
//
// Numbers (types, actions, statuses) are part of the protocol: only ever
// appended.
package vsockfence

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"regexp"
)

// Version is the wire version this package speaks.
const Version = 1

var magic = [4]byte{'R', 'M', 'F', 'V'}

// Message types.
const (
	TypeRequest  = 1
	TypeResponse = 2
)

// Action is what a request asks for.
type Action uint8

// Actions. Monitor only checks that the host answers and accepts the key.
const (
	ActionReboot  Action = 1
	ActionOff     Action = 2
	ActionOn      Action = 3
	ActionStatus  Action = 4
	ActionMonitor Action = 5
)

var actionNames = map[Action]string{ActionReboot: "reboot", ActionOff: "off", ActionOn: "on", ActionStatus: "status", ActionMonitor: "monitor"}

func (a Action) String() string {
	if s, ok := actionNames[a]; ok {
		return s
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// ParseAction maps a fence-agent action name to an Action.
func ParseAction(s string) (Action, bool) {
	for a, n := range actionNames {
		if n == s {
			return a, true
		}
	}
	return 0, false
}

// Status is a response's verdict.
type Status uint8

// Statuses. For ActionStatus, StatusOK means the VM is on and StatusOff
// that it is off.
const (
	StatusOK          Status = 0
	StatusFailed      Status = 1 // the host's command failed
	StatusDenied      Status = 2 // bad MAC, stale, replayed, or VM not allowed
	StatusBadRequest  Status = 3
	StatusUnsupported Status = 4 // the host's command cannot do this action
	StatusOff         Status = 5
)

var statusNames = map[Status]string{StatusOK: "ok", StatusFailed: "failed", StatusDenied: "denied", StatusBadRequest: "bad request", StatusUnsupported: "unsupported", StatusOff: "off"}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Limits.
const (
	NonceSize  = 16
	MACSize    = sha256.Size
	MaxName    = 255  // requester and vm
	MaxMessage = 1024 // response message
	// MaxFrame bounds a frame body; anything longer is rejected before
	// it is read.
	MaxFrame = 4 + 4 + NonceSize + 8 + 1 + MaxName + 1 + MaxName + MACSize + MaxMessage
	// MinKeySize is the shortest key accepted: 128 bits.
	MinKeySize = 16
)

// Errors. Decoders reject bad input with ErrMalformed (wrapped), never panic.
var (
	ErrMalformed = errors.New("vsockfence: malformed message")
	ErrVersion   = errors.New("vsockfence: unsupported version")
	ErrMAC       = errors.New("vsockfence: bad MAC")
	ErrKey       = errors.New("vsockfence: bad key")
)

// vmName is what a VM name may look like: libvirt domain names and
// UUIDs fit; shell metacharacters and paths do not, so a name can never
// change the meaning of the host's command.
var vmName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$`)

// ValidVMName reports whether s may be sent as a VM name.
func ValidVMName(s string) bool { return vmName.MatchString(s) }

// Request is a decoded request.
type Request struct {
	Action    Action
	Nonce     [NonceSize]byte
	TimeMS    int64
	Requester string
	VM        string
}

// Response is a decoded response.
type Response struct {
	Status  Status
	Nonce   [NonceSize]byte
	Message string
}

func mac(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(nil)
}

// EncodeRequest returns the request body, MAC included.
func EncodeRequest(key []byte, r Request) ([]byte, error) {
	if len(key) < MinKeySize {
		return nil, ErrKey
	}
	if len(r.Requester) > MaxName || len(r.VM) > MaxName {
		return nil, fmt.Errorf("%w: name too long", ErrMalformed)
	}
	b := make([]byte, 0, 64+len(r.Requester)+len(r.VM))
	b = append(b, magic[:]...)
	b = append(b, Version, TypeRequest, byte(r.Action), 0)
	b = append(b, r.Nonce[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.TimeMS))
	b = append(b, byte(len(r.Requester)))
	b = append(b, r.Requester...)
	b = append(b, byte(len(r.VM)))
	b = append(b, r.VM...)
	return append(b, mac(key, b)...), nil
}

// EncodeResponse returns the response body, MAC included. Messages
// longer than MaxMessage are cut.
func EncodeResponse(key []byte, r Response) ([]byte, error) {
	if len(key) < MinKeySize {
		return nil, ErrKey
	}
	msg := r.Message
	if len(msg) > MaxMessage {
		msg = msg[:MaxMessage]
	}
	b := make([]byte, 0, 64+len(msg))
	b = append(b, magic[:]...)
	b = append(b, Version, TypeResponse, byte(r.Status), 0)
	b = append(b, r.Nonce[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(msg)))
	b = append(b, msg...)
	return append(b, mac(key, b)...), nil
}

// header checks magic, version and type and returns the byte after the
// flags.
func header(b []byte, typ byte) ([]byte, byte, error) {
	if len(b) < 8+MACSize {
		return nil, 0, fmt.Errorf("%w: %d bytes is too short", ErrMalformed, len(b))
	}
	if [4]byte(b[:4]) != magic {
		return nil, 0, fmt.Errorf("%w: bad magic", ErrMalformed)
	}
	if b[4] != Version {
		return nil, 0, fmt.Errorf("%w: version %d", ErrVersion, b[4])
	}
	if b[5] != typ {
		return nil, 0, fmt.Errorf("%w: type %d, want %d", ErrMalformed, b[5], typ)
	}
	if b[7] != 0 {
		return nil, 0, fmt.Errorf("%w: unknown flags %#x", ErrMalformed, b[7])
	}
	return b[8:], b[6], nil
}

// verify checks the trailing MAC in constant time.
func verify(key, b []byte) error {
	if len(key) < MinKeySize {
		return ErrKey
	}
	body, sum := b[:len(b)-MACSize], b[len(b)-MACSize:]
	if !hmac.Equal(mac(key, body), sum) {
		return ErrMAC
	}
	return nil
}

// DecodeRequest parses and authenticates a request body. The structure
// is checked before the MAC, so garbage is reported as malformed; a
// well-formed request under another key is ErrMAC.
func DecodeRequest(key, b []byte) (Request, error) {
	var r Request
	p, act, err := header(b, TypeRequest)
	if err != nil {
		return r, err
	}
	r.Action = Action(act)
	p = p[:len(p)-MACSize]
	if len(p) < NonceSize+8+1 {
		return r, fmt.Errorf("%w: truncated request", ErrMalformed)
	}
	copy(r.Nonce[:], p[:NonceSize])
	p = p[NonceSize:]
	r.TimeMS = int64(binary.BigEndian.Uint64(p[:8]))
	p = p[8:]
	var ok bool
	if r.Requester, p, ok = lenString(p); !ok {
		return Request{}, fmt.Errorf("%w: truncated requester", ErrMalformed)
	}
	if r.VM, p, ok = lenString(p); !ok {
		return Request{}, fmt.Errorf("%w: truncated vm", ErrMalformed)
	}
	if len(p) != 0 {
		return Request{}, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(p))
	}
	if _, known := actionNames[r.Action]; !known {
		return Request{}, fmt.Errorf("%w: unknown action %d", ErrMalformed, act)
	}
	if err := verify(key, b); err != nil {
		return Request{}, err
	}
	return r, nil
}

func lenString(p []byte) (string, []byte, bool) {
	if len(p) < 1 || len(p) < 1+int(p[0]) {
		return "", nil, false
	}
	n := int(p[0])
	return string(p[1 : 1+n]), p[1+n:], true
}

// DecodeResponse parses and authenticates a response body.
func DecodeResponse(key, b []byte) (Response, error) {
	var r Response
	p, st, err := header(b, TypeResponse)
	if err != nil {
		return r, err
	}
	r.Status = Status(st)
	p = p[:len(p)-MACSize]
	if len(p) < NonceSize+2 {
		return Response{}, fmt.Errorf("%w: truncated response", ErrMalformed)
	}
	copy(r.Nonce[:], p[:NonceSize])
	p = p[NonceSize:]
	n := int(binary.BigEndian.Uint16(p[:2]))
	p = p[2:]
	if n > MaxMessage || len(p) != n {
		return Response{}, fmt.Errorf("%w: message length %d, %d bytes left", ErrMalformed, n, len(p))
	}
	r.Message = string(p)
	if err := verify(key, b); err != nil {
		return Response{}, err
	}
	return r, nil
}

// WriteFrame writes one length-prefixed frame.
func WriteFrame(w io.Writer, body []byte) error {
	if len(body) > MaxFrame {
		return fmt.Errorf("%w: frame of %d bytes", ErrMalformed, len(body))
	}
	buf := make([]byte, 2+len(body))
	binary.BigEndian.PutUint16(buf, uint16(len(body)))
	copy(buf[2:], body)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one frame, refusing bodies over MaxFrame before
// reading them.
func ReadFrame(r io.Reader) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n > MaxFrame {
		return nil, fmt.Errorf("%w: frame of %d bytes", ErrMalformed, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("%w: truncated frame: %v", ErrMalformed, err)
	}
	return body, nil
}
