// Package versioned is the payload layout the services' IPC wire packages
// share (votequorum/wire, confdb/wire, crm/wire): one protocol version
// byte, then the message as JSON. Each wire package keeps its own version
// number and wraps Decode's errors with its own sentinel.
package versioned

import (
	"encoding/json"
	"fmt"
)

// Encode is version followed by v as JSON. Only the wire packages' own
// types are encoded, so a marshalling error is a programming error.
func Encode(version byte, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encoding %T: %v", v, err))
	}
	return append([]byte{version}, b...)
}

// Decode checks the version byte of p and decodes the JSON after it into v.
func Decode(p []byte, version byte, v any) error {
	if len(p) == 0 {
		return fmt.Errorf("empty payload")
	}
	if p[0] != version {
		return fmt.Errorf("version %d (want %d)", p[0], version)
	}
	return json.Unmarshal(p[1:], v)
}
