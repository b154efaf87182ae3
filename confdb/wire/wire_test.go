package wire

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/ipc"
)

func TestValues(t *testing.T) {
	cases := []struct {
		typ  string
		in   string
		want Value
		text string
	}{
		{"u8", "255", U8(255), "255"},
		{"i8", "-128", I8(-128), "-128"},
		{"u16", "0x10", U16(16), "16"},
		{"i16", "-2", I16(-2), "-2"},
		{"u32", "1650", U32(1650), "1650"},
		{"i32", "-7", I32(-7), "-7"},
		{"u64", "18446744073709551615", U64(math.MaxUint64), "18446744073709551615"},
		{"i64", "-9223372036854775808", I64(math.MinInt64), "-9223372036854775808"},
		{"flt", "1.5", Float(1.5), "1.5"},
		{"float", "0.1", Float(0.1), "0.1"},
		{"dbl", "2.25", Double(2.25), "2.25"},
		{"str", "hello world", String("hello world"), "hello world"},
		{"string", "", String(""), ""},
		{"bin", "0aff", Binary([]byte{0x0a, 0xff}), "0aff"},
	}
	for _, tc := range cases {
		typ, err := ParseType(tc.typ)
		require.NoError(t, err, tc.typ)
		v, err := Parse(typ, tc.in)
		require.NoError(t, err, tc.typ)
		assert.Equal(t, tc.want, v, tc.typ)
		assert.Equal(t, tc.text, v.String(), tc.typ)
		// JSON round trip, flat entry and typed value.
		b, err := json.Marshal(Entry{"a.b.c", v})
		require.NoError(t, err)
		var e Entry
		require.NoError(t, json.Unmarshal(b, &e), string(b))
		assert.Equal(t, v, e.Value, string(b))
		b, err = json.Marshal(v)
		require.NoError(t, err)
		var v2 Value
		require.NoError(t, json.Unmarshal(b, &v2))
		assert.Equal(t, v, v2)
	}
	for _, bad := range []struct{ typ, in string }{
		{"u8", "256"}, {"u8", "-1"}, {"i8", "128"}, {"u32", "x"}, {"flt", "pi"}, {"bin", "0g"},
	} {
		typ, _ := ParseType(bad.typ)
		_, err := Parse(typ, bad.in)
		assert.ErrorIs(t, err, ErrBadValue, "%s %s", bad.typ, bad.in)
		assert.ErrorIs(t, err, ipc.ErrInvalid)
	}
	_, err := ParseType("int")
	assert.ErrorIs(t, err, ErrBadValue)
	// Non-finite floats travel as strings in JSON.
	b, err := json.Marshal(Double(math.Inf(-1)))
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"dbl","value":"-Inf"}`, string(b))
	var v Value
	require.NoError(t, json.Unmarshal(b, &v))
	f, _ := v.Float()
	assert.True(t, math.IsInf(f, -1))
	assert.Error(t, json.Unmarshal([]byte(`{"key":"a.b","type":"u32","value":1.5}`), &Entry{}))
	assert.Error(t, json.Unmarshal([]byte(`{"key":"a.b","type":"str","value":1}`), &Entry{}))
	assert.Error(t, json.Unmarshal([]byte(`{"key":"a.b","type":"u8","value":"1"}`), &Entry{}))
	assert.Equal(t, "totem.token (u32) = 1650", Entry{"totem.token", U32(1650)}.String())
	n, ok := U64(math.MaxUint64).Integer()
	assert.False(t, ok, "%d does not fit an int64", n)
}

func TestKeyNames(t *testing.T) {
	for _, k := range []string{"abc", "totem.token", "a/b-c:d_e.f"} {
		assert.NoError(t, CheckKey(k), k)
	}
	for _, k := range []string{"", "ab", "a b", "é.x", string(make([]byte, 256))} {
		assert.ErrorIs(t, CheckKey(k), ErrInvalidKey, "%q", k)
	}
}

func TestDecoders(t *testing.T) {
	k, err := DecodeKeyRequest(EncodePayload(KeyRequest{Key: "totem.token"}))
	require.NoError(t, err)
	assert.Equal(t, "totem.token", k)
	_, err = DecodeKeyRequest(EncodePayload(KeyRequest{Key: "x"}))
	assert.ErrorIs(t, err, ErrInvalidKey)
	e, err := DecodeSetRequest(EncodePayload(Entry{"app.x", I16(-3)}))
	require.NoError(t, err)
	assert.Equal(t, Entry{"app.x", I16(-3)}, e)
	key, prefix, kinds, err := DecodeTrackRequest(EncodePayload(TrackRequest{Key: "", Prefix: true}))
	require.NoError(t, err)
	assert.Equal(t, "", key)
	assert.True(t, prefix)
	assert.Equal(t, EventAll, kinds)
	_, _, kinds, err = DecodeTrackRequest(EncodePayload(TrackRequest{Key: "app.x", Events: []string{"add", "delete"}}))
	require.NoError(t, err)
	assert.Equal(t, EventAdd|EventDelete, kinds)
	_, _, _, err = DecodeTrackRequest(EncodePayload(TrackRequest{Key: "app.x", Events: []string{"poke"}}))
	assert.ErrorIs(t, err, ErrBadValue)
	nv := U8(1)
	_, err = DecodeTrackEvent(EncodePayload(TrackEvent{TrackID: 1, Event: "delete", Key: "a.b.c", New: &nv}))
	assert.ErrorIs(t, err, ErrBadValue)
	for _, p := range [][]byte{nil, {2, '{', '}'}, {1, '{'}, {1}} {
		_, err := DecodeKeyRequest(p)
		assert.Error(t, err)
		assert.True(t, errors.Is(err, ipc.ErrInvalid))
	}
}

// FuzzDecoders: the IPC decoders reject, never panic on, bad input, and
// what they accept re-encodes to an equal request.
func FuzzDecoders(f *testing.F) {
	f.Add(EncodePayload(Entry{"totem.token", U32(1650)}))
	f.Add(EncodePayload(Entry{"a.b.c", Binary([]byte{1, 2})}))
	f.Add(EncodePayload(Entry{"a.b.c", Double(math.NaN())}))
	f.Add(EncodePayload(KeyRequest{Key: "runtime.x"}))
	f.Add(EncodePayload(TrackRequest{Key: "app.", Prefix: true, Events: []string{"add"}}))
	f.Add(EncodePayload(TrackEvent{TrackID: 3, Event: "add", Key: "a.b.c", New: &[]Value{String("x")}[0]}))
	f.Add([]byte{1, '{', '"', 'k'})
	f.Fuzz(func(t *testing.T, p []byte) {
		if e, err := DecodeSetRequest(p); err == nil {
			e2, err := DecodeSetRequest(EncodePayload(e))
			require.NoError(t, err)
			if f, ok := e.Value.Float(); !ok || !math.IsNaN(f) {
				assert.Equal(t, e, e2)
			}
		}
		_, _ = DecodeKeyRequest(p)
		_, _ = DecodeListRequest(p)
		_, _, _, _ = DecodeTrackRequest(p)
		if ev, err := DecodeTrackEvent(p); err == nil {
			_, err := DecodeTrackEvent(EncodePayload(ev))
			require.NoError(t, err)
		}
		var es []Entry
		_ = DecodePayload(p, &es)
	})
}
