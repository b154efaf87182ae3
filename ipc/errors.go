package ipc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"ringmaster/totem"
)

// Code classifies an error reply. Numbers are part of the protocol: append
// only.
type Code uint16

// Error codes.
const (
	CodeInternal       Code = 1
	CodeTryAgain       Code = 2
	CodeInvalid        Code = 3
	CodeNotFound       Code = 4
	CodeAccess         Code = 5
	CodeUnknownService Code = 6
	CodeUnknownMessage Code = 7
	CodeBadFrame       Code = 8
	CodeNotQuorate     Code = 9
	CodeExists         Code = 10
	CodeTooLarge       Code = 11
	CodeSlowClient     Code = 12
	CodeNotSupported   Code = 13
)

var codeNames = map[Code]string{
	CodeInternal: "internal error", CodeTryAgain: "try again", CodeInvalid: "invalid request",
	CodeNotFound: "not found", CodeAccess: "access denied", CodeUnknownService: "unknown service",
	CodeUnknownMessage: "unknown message", CodeBadFrame: "malformed frame", CodeNotQuorate: "not quorate",
	CodeExists: "already exists", CodeTooLarge: "too large", CodeSlowClient: "client too slow",
	CodeNotSupported: "not supported",
}

func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code %d", uint16(c))
}

// Sentinels a caller can test with errors.Is on any error returned by a
// Client. ErrTryAgain is totem.ErrTryAgain, so code above the client
// library sees one sentinel for "retry later".
var (
	ErrTryAgain   = totem.ErrTryAgain
	ErrInvalid    = errors.New("invalid request")
	ErrNotFound   = errors.New("not found")
	ErrAccess     = errors.New("access denied")
	ErrNotQuorate = errors.New("not quorate")
	ErrExists     = errors.New("already exists")
	ErrSlowClient = errors.New("client too slow: disconnected")
	ErrUnknown    = errors.New("unknown service or message")
)

// Error is an error reply from the daemon.
type Error struct {
	Code Code
	Msg  string
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return e.Code.String()
	}
	return e.Code.String() + ": " + e.Msg
}

// Is maps codes to the package sentinels.
func (e *Error) Is(target error) bool {
	switch e.Code {
	case CodeTryAgain:
		return target == ErrTryAgain
	case CodeInvalid, CodeBadFrame, CodeTooLarge:
		return target == ErrInvalid
	case CodeNotFound:
		return target == ErrNotFound
	case CodeAccess:
		return target == ErrAccess
	case CodeNotQuorate:
		return target == ErrNotQuorate
	case CodeExists:
		return target == ErrExists
	case CodeSlowClient:
		return target == ErrSlowClient
	case CodeUnknownService, CodeUnknownMessage:
		return target == ErrUnknown
	}
	return false
}

// Errorf builds an *Error.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// ToError converts any error into an *Error for the wire, mapping the
// sentinels back to their codes.
func ToError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	for _, m := range []struct {
		sentinel error
		code     Code
	}{
		{ErrTryAgain, CodeTryAgain}, {totem.ErrTooLarge, CodeTooLarge}, {ErrInvalid, CodeInvalid},
		{ErrNotFound, CodeNotFound}, {ErrNotQuorate, CodeNotQuorate}, {ErrExists, CodeExists}, {ErrAccess, CodeAccess},
	} {
		if errors.Is(err, m.sentinel) {
			// The code says what the sentinel says: "not found: not
			// found: ..." would repeat it.
			msg := strings.TrimPrefix(err.Error(), m.sentinel.Error()+": ")
			return &Error{Code: m.code, Msg: msg}
		}
	}
	return &Error{Code: CodeInternal, Msg: err.Error()}
}

// encodeError is the payload of an Error frame: code u16, then the message.
func encodeError(e *Error) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(e.Code))
	return append(b, e.Msg...)
}

func decodeError(p []byte) *Error {
	if len(p) < 2 {
		return &Error{Code: CodeInternal, Msg: "malformed error reply"}
	}
	return &Error{Code: Code(binary.BigEndian.Uint16(p)), Msg: string(p[2:])}
}
