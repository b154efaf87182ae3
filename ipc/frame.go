// Package ipc is ringmaster's local client protocol: length-prefixed frames
// over one Unix stream socket per daemon, with a version byte and a
// (service, message) ID in every header, peer credentials checked with
// SO_PEERCRED, and typed error replies.
//
// Frame layout (big endian, HeaderSize bytes, then Length bytes of payload):
//
//	0  version  u8   Version; a frame of another version is refused
//	1  kind     u8   Request, Reply, Event or Error
//	2  service  u16  service ID (numbers are part of the protocol)
//	4  message  u16  message ID inside the service
//	6  flags    u16  reserved, 0
//	8  req id   u32  chosen by the client; echoed in Reply/Error
//	12 length   u32  payload bytes, at most MaxPayload
//
// Requests are answered in the order they were sent on a connection; events
// (deliveries, membership changes, tracked keys) may be interleaved.
package ipc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"ringmaster/totem"
)

// Version of the frame format.
const Version = 1

// HeaderSize is the size of a frame header.
const HeaderSize = 16

// MaxPayload bounds a frame's payload: the largest ring message plus room
// for a service header. Larger frames are refused before they are read.
const MaxPayload = totem.MaxMessageSize + 64*1024

// Kind tells what a frame is. Numbers are part of the protocol.
type Kind uint8

// Frame kinds.
const (
	KindRequest Kind = 1
	KindReply   Kind = 2
	KindEvent   Kind = 3
	KindError   Kind = 4
)

// Header is a decoded frame header.
type Header struct {
	Kind    Kind
	Service uint16
	Msg     uint16
	Flags   uint16
	ReqID   uint32
	Length  uint32
}

// Sentinel errors of frame decoding.
var (
	ErrVersion   = errors.New("ipc: unsupported frame version")
	ErrKind      = errors.New("ipc: unknown frame kind")
	ErrTooLarge  = errors.New("ipc: frame too large")
	ErrTruncated = errors.New("ipc: truncated frame")
)

// AppendHeader appends the encoded header to b.
func AppendHeader(b []byte, h Header) []byte {
	b = append(b, Version, byte(h.Kind))
	b = binary.BigEndian.AppendUint16(b, h.Service)
	b = binary.BigEndian.AppendUint16(b, h.Msg)
	b = binary.BigEndian.AppendUint16(b, h.Flags)
	b = binary.BigEndian.AppendUint32(b, h.ReqID)
	return binary.BigEndian.AppendUint32(b, h.Length)
}

// DecodeHeader decodes and checks a header.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, ErrTruncated
	}
	if b[0] != Version {
		return Header{}, fmt.Errorf("%w: %d (want %d)", ErrVersion, b[0], Version)
	}
	h := Header{
		Kind:    Kind(b[1]),
		Service: binary.BigEndian.Uint16(b[2:]),
		Msg:     binary.BigEndian.Uint16(b[4:]),
		Flags:   binary.BigEndian.Uint16(b[6:]),
		ReqID:   binary.BigEndian.Uint32(b[8:]),
		Length:  binary.BigEndian.Uint32(b[12:]),
	}
	if h.Kind < KindRequest || h.Kind > KindError {
		return Header{}, fmt.Errorf("%w: %d", ErrKind, h.Kind)
	}
	if h.Length > MaxPayload {
		return Header{}, fmt.Errorf("%w: %d bytes (max %d)", ErrTooLarge, h.Length, MaxPayload)
	}
	return h, nil
}

// AppendFrame appends a whole frame (header with the payload's length, then
// the payload) to b.
func AppendFrame(b []byte, h Header, payload []byte) []byte {
	h.Length = uint32(len(payload))
	b = AppendHeader(b, h)
	return append(b, payload...)
}

// ReadFrame reads one frame. The payload is freshly allocated, so the caller
// may keep it.
func ReadFrame(r io.Reader, hdr []byte) (Header, []byte, error) {
	return readFrame(r, nil, hdr)
}

// readFrameDirect is ReadFrame for the connection loops: a big payload
// (over directRead bytes) that br does not hold yet takes what br holds and
// reads the rest straight from raw (br's source), sparing it a copy
// through the buffer.
func readFrameDirect(br *bufio.Reader, raw io.Reader, hdr []byte) (Header, []byte, error) {
	return readFrame(br, func(p []byte) error {
		if len(p) <= directRead || len(p) <= br.Buffered() {
			_, err := io.ReadFull(br, p)
			return err
		}
		n := 0
		if br.Buffered() > 0 {
			n, _ = br.Read(p[:min(len(p), br.Buffered())])
		}
		_, err := io.ReadFull(raw, p[n:])
		return err
	}, hdr)
}

// growFrom is the most a frame reader allocates before the bytes arrive.
const growFrom = 64 << 10

// directRead is the payload size above which readFrameDirect may bypass
// the buffer.
const directRead = 64 << 10

func readFrame(r io.Reader, readPayload func([]byte) error, hdr []byte) (Header, []byte, error) {
	if _, err := io.ReadFull(r, hdr[:HeaderSize]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Header{}, nil, ErrTruncated
		}
		return Header{}, nil, err
	}
	h, err := DecodeHeader(hdr)
	if err != nil {
		return Header{}, nil, err
	}
	// The buffer grows as the payload arrives (doubling from growFrom
	// bytes) rather than taking the announced length at once: a peer
	// that announces MaxPayload and sends a little holds a little.
	p := make([]byte, min(int(h.Length), growFrom))
	for n := 0; ; {
		if readPayload != nil {
			err = readPayload(p[n:])
		} else {
			_, err = io.ReadFull(r, p[n:])
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return Header{}, nil, ErrTruncated
			}
			return Header{}, nil, err
		}
		n = len(p)
		if n == int(h.Length) {
			break
		}
		q := make([]byte, min(2*n, int(h.Length)))
		copy(q, p)
		p = q
	}
	return h, p, nil
}
