package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Type is a value's type. Numbers are corosync's cmap_value_types_t and are
// part of the protocol: append only.
type Type uint8

// Value types.
const (
	TypeI8     Type = 1
	TypeU8     Type = 2
	TypeI16    Type = 3
	TypeU16    Type = 4
	TypeI32    Type = 5
	TypeU32    Type = 6
	TypeI64    Type = 7
	TypeU64    Type = 8
	TypeFloat  Type = 9
	TypeDouble Type = 10
	TypeString Type = 11
	TypeBinary Type = 12
)

// typeNames are corosync-cmapctl's names, which ringctl prints.
var typeNames = map[Type]string{
	TypeI8: "i8", TypeU8: "u8", TypeI16: "i16", TypeU16: "u16", TypeI32: "i32", TypeU32: "u32",
	TypeI64: "i64", TypeU64: "u64", TypeFloat: "flt", TypeDouble: "dbl", TypeString: "str", TypeBinary: "bin",
}

// typeAliases are also accepted when parsing a type name.
var typeAliases = map[string]Type{"float": TypeFloat, "double": TypeDouble, "string": TypeString, "binary": TypeBinary}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Valid reports whether t is a known type.
func (t Type) Valid() bool { _, ok := typeNames[t]; return ok }

// ParseType parses a type name: u8…u64, i8…i64, flt (float), dbl
// (double), str (string), bin (binary).
func ParseType(s string) (Type, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for t, n := range typeNames {
		if n == s {
			return t, nil
		}
	}
	if t, ok := typeAliases[s]; ok {
		return t, nil
	}
	return 0, fmt.Errorf("%w: unknown type %q (u8 u16 u32 u64 i8 i16 i32 i64 flt dbl str bin)", ErrBadValue, s)
}

// MarshalText / UnmarshalText make a Type a JSON string.
func (t Type) MarshalText() ([]byte, error) {
	if !t.Valid() {
		return nil, fmt.Errorf("%w: type %d", ErrBadValue, uint8(t))
	}
	return []byte(t.String()), nil
}

// UnmarshalText parses a type name.
func (t *Type) UnmarshalText(b []byte) error {
	v, err := ParseType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

func (t Type) signed() bool   { return t == TypeI8 || t == TypeI16 || t == TypeI32 || t == TypeI64 }
func (t Type) unsigned() bool { return t == TypeU8 || t == TypeU16 || t == TypeU32 || t == TypeU64 }

func (t Type) bits() int {
	switch t {
	case TypeI8, TypeU8:
		return 8
	case TypeI16, TypeU16:
		return 16
	case TypeI32, TypeU32, TypeFloat:
		return 32
	}
	return 64
}

// MaxValueSize bounds a string or binary value.
const MaxValueSize = 64 << 10

// Value is an immutable typed value. The zero Value has no type and is
// never stored.
type Value struct {
	typ  Type
	bits uint64 // integers (two's complement, sign-extended) and float bits
	str  string // string and binary contents
}

// Constructors, one per type.
func I8(v int8) Value       { return Value{typ: TypeI8, bits: uint64(int64(v))} }
func U8(v uint8) Value      { return Value{typ: TypeU8, bits: uint64(v)} }
func I16(v int16) Value     { return Value{typ: TypeI16, bits: uint64(int64(v))} }
func U16(v uint16) Value    { return Value{typ: TypeU16, bits: uint64(v)} }
func I32(v int32) Value     { return Value{typ: TypeI32, bits: uint64(int64(v))} }
func U32(v uint32) Value    { return Value{typ: TypeU32, bits: uint64(v)} }
func I64(v int64) Value     { return Value{typ: TypeI64, bits: uint64(v)} }
func U64(v uint64) Value    { return Value{typ: TypeU64, bits: v} }
func Float(v float32) Value { return Value{typ: TypeFloat, bits: uint64(math.Float32bits(v))} }
func Double(v float64) Value {
	return Value{typ: TypeDouble, bits: math.Float64bits(v)}
}
func String(s string) Value { return Value{typ: TypeString, str: s} }
func Binary(b []byte) Value { return Value{typ: TypeBinary, str: string(b)} }

// Bool is the u8 0/1 corosync uses for flags.
func Bool(b bool) Value {
	if b {
		return U8(1)
	}
	return U8(0)
}

// Type is the value's type (0 for the zero Value).
func (v Value) Type() Type { return v.typ }

// IsZero reports the zero Value.
func (v Value) IsZero() bool { return v.typ == 0 }

// Uint returns an unsigned integer value.
func (v Value) Uint() (uint64, bool) { return v.bits, v.typ.unsigned() }

// Int returns a signed integer value.
func (v Value) Int() (int64, bool) { return int64(v.bits), v.typ.signed() }

// Integer returns any integer value that fits an int64 (what validators
// compare against).
func (v Value) Integer() (int64, bool) {
	switch {
	case v.typ.signed():
		return int64(v.bits), true
	case v.typ.unsigned():
		return int64(v.bits), v.bits <= math.MaxInt64
	}
	return 0, false
}

// Float returns a flt or dbl value.
func (v Value) Float() (float64, bool) {
	switch v.typ {
	case TypeFloat:
		return float64(math.Float32frombits(uint32(v.bits))), true
	case TypeDouble:
		return math.Float64frombits(v.bits), true
	}
	return 0, false
}

// Str returns a string value.
func (v Value) Str() (string, bool) { return v.str, v.typ == TypeString }

// Bytes returns a binary value (a copy).
func (v Value) Bytes() ([]byte, bool) { return []byte(v.str), v.typ == TypeBinary }

// Equal reports whether two values have the same type and contents.
func (v Value) Equal(o Value) bool { return v == o }

// String formats the value as corosync-cmapctl prints it: integers in
// decimal, floats in the shortest form that reads back exactly, strings as
// they are, binary in hex.
func (v Value) String() string {
	switch {
	case v.typ.signed():
		return strconv.FormatInt(int64(v.bits), 10)
	case v.typ.unsigned():
		return strconv.FormatUint(v.bits, 10)
	case v.typ == TypeFloat:
		f, _ := v.Float()
		return strconv.FormatFloat(f, 'g', -1, 32)
	case v.typ == TypeDouble:
		f, _ := v.Float()
		return strconv.FormatFloat(f, 'g', -1, 64)
	case v.typ == TypeString:
		return v.str
	case v.typ == TypeBinary:
		return hex.EncodeToString([]byte(v.str))
	}
	return ""
}

// Parse reads a value of type t from text (as `ringctl cmap set` takes
// it): integers in decimal (or 0x hex), floats, strings as they are,
// binary in hex. Integers are range checked for their type.
func Parse(t Type, s string) (Value, error) {
	switch {
	case t.signed():
		n, err := strconv.ParseInt(strings.TrimSpace(s), 0, t.bits())
		if err != nil {
			return Value{}, fmt.Errorf("%w: %q is not an %s", ErrBadValue, s, t)
		}
		return Value{typ: t, bits: uint64(n)}, nil
	case t.unsigned():
		n, err := strconv.ParseUint(strings.TrimSpace(s), 0, t.bits())
		if err != nil {
			return Value{}, fmt.Errorf("%w: %q is not a %s", ErrBadValue, s, t)
		}
		return Value{typ: t, bits: n}, nil
	case t == TypeFloat || t == TypeDouble:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), t.bits())
		if err != nil {
			return Value{}, fmt.Errorf("%w: %q is not a %s", ErrBadValue, s, t)
		}
		if t == TypeFloat {
			return Float(float32(f)), nil
		}
		return Double(f), nil
	case t == TypeString:
		return checkSize(String(s))
	case t == TypeBinary:
		b, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(s), "0x"))
		if err != nil {
			return Value{}, fmt.Errorf("%w: binary values are hex: %v", ErrBadValue, err)
		}
		return checkSize(Binary(b))
	}
	return Value{}, fmt.Errorf("%w: unknown type %d", ErrBadValue, uint8(t))
}

// CheckSize refuses a string or binary value longer than MaxValueSize.
func CheckSize(v Value) error {
	_, err := checkSize(v)
	return err
}

func checkSize(v Value) (Value, error) {
	if len(v.str) > MaxValueSize {
		return Value{}, fmt.Errorf("%w: %d bytes (at most %d)", ErrBadValue, len(v.str), MaxValueSize)
	}
	return v, nil
}

// jsonValue is the JSON form of a value's contents: a number for integers
// and finite floats, "NaN"/"+Inf"/"-Inf" for the others, a string for
// strings and hex for binary.
func (v Value) jsonValue() json.RawMessage {
	switch {
	case v.typ.signed(), v.typ.unsigned():
		return json.RawMessage(v.String())
	case v.typ == TypeFloat || v.typ == TypeDouble:
		f, _ := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			b, _ := json.Marshal(v.String())
			return b
		}
		return json.RawMessage(v.String())
	}
	b, _ := json.Marshal(v.String())
	return b
}

// parseJSONValue reads the JSON form of a value of type t.
func parseJSONValue(t Type, raw json.RawMessage) (Value, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return Value{}, fmt.Errorf("%w: missing value", ErrBadValue)
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Value{}, fmt.Errorf("%w: %v", ErrBadValue, err)
		}
		if t.signed() || t.unsigned() {
			return Value{}, fmt.Errorf("%w: a %s is a JSON number", ErrBadValue, t)
		}
		return Parse(t, s)
	}
	if t == TypeString || t == TypeBinary {
		return Value{}, fmt.Errorf("%w: a %s is a JSON string", ErrBadValue, t)
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return Value{}, fmt.Errorf("%w: %v", ErrBadValue, err)
	}
	if (t.signed() || t.unsigned()) && strings.ContainsAny(n.String(), ".eE") {
		return Value{}, fmt.Errorf("%w: %s is not an integer", ErrBadValue, n)
	}
	return Parse(t, n.String())
}

type typedJSON struct {
	Type  Type            `json:"type"`
	Value json.RawMessage `json:"value"`
}

// MarshalJSON encodes {"type": "u32", "value": 1650}.
func (v Value) MarshalJSON() ([]byte, error) {
	if !v.typ.Valid() {
		return []byte("null"), nil
	}
	return json.Marshal(typedJSON{Type: v.typ, Value: v.jsonValue()})
}

// UnmarshalJSON decodes {"type": ..., "value": ...}.
func (v *Value) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		*v = Value{}
		return nil
	}
	var tj typedJSON
	if err := json.Unmarshal(b, &tj); err != nil {
		return fmt.Errorf("%w: %v", ErrBadValue, err)
	}
	if !tj.Type.Valid() {
		return fmt.Errorf("%w: missing type", ErrBadValue)
	}
	val, err := parseJSONValue(tj.Type, tj.Value)
	if err != nil {
		return err
	}
	*v = val
	return nil
}

// Entry is a key and its value. Its JSON form is flat:
// {"key": "runtime.config.totem.token", "type": "u32", "value": 1650}.
type Entry struct {
	Key   string
	Value Value
}

type entryJSON struct {
	Key   string          `json:"key"`
	Type  Type            `json:"type"`
	Value json.RawMessage `json:"value"`
}

// MarshalJSON encodes the flat form.
func (e Entry) MarshalJSON() ([]byte, error) {
	if !e.Value.typ.Valid() {
		return nil, fmt.Errorf("%w: entry %q has no value", ErrBadValue, e.Key)
	}
	return json.Marshal(entryJSON{Key: e.Key, Type: e.Value.typ, Value: e.Value.jsonValue()})
}

// UnmarshalJSON decodes the flat form.
func (e *Entry) UnmarshalJSON(b []byte) error {
	var ej entryJSON
	if err := json.Unmarshal(b, &ej); err != nil {
		return fmt.Errorf("%w: %v", ErrBadValue, err)
	}
	if !ej.Type.Valid() {
		return fmt.Errorf("%w: entry %q has no type", ErrBadValue, ej.Key)
	}
	v, err := parseJSONValue(ej.Type, ej.Value)
	if err != nil {
		return err
	}
	*e = Entry{Key: ej.Key, Value: v}
	return nil
}

// String formats the entry as corosync-cmapctl does: KEY (TYPE) = VALUE.
func (e Entry) String() string {
	return fmt.Sprintf("%s (%s) = %s", e.Key, e.Value.typ, e.Value)
}
