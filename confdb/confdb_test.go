package confdb

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/config"
	"ringmaster/ipc"
	"ringmaster/totem"
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

func TestStoreTracking(t *testing.T) {
	s := NewStore()
	var got []string
	rec := func(tag string) TrackFunc {
		return func(_ TrackID, ev Event) {
			got = append(got, tag+" "+ev.Kind.String()+" "+ev.Key+" "+ev.Old.String()+">"+ev.New.String())
		}
	}
	prefix := s.Track("app.", true, EventAll, rec("P"))
	s.Track("app.x", false, EventModify, rec("K"))
	require.NoError(t, s.Set("app.x", U32(1)))
	require.NoError(t, s.Set("app.x", U32(1)), "unchanged: no event")
	require.NoError(t, s.Set("app.x", U32(2)))
	require.NoError(t, s.Set("app.x", String("two")), "a type change is a modify")
	require.NoError(t, s.Set("other.y", U8(1)))
	require.NoError(t, s.Delete("app.x"))
	assert.ErrorIs(t, s.Delete("app.x"), ErrNotFound)
	require.NoError(t, s.Set("app.a", U8(1)))
	require.NoError(t, s.Set("app.b", U8(2)))
	s.DeletePrefix("app.")
	assert.True(t, s.Untrack(prefix))
	assert.False(t, s.Untrack(prefix))
	require.NoError(t, s.Set("app.c", U8(3)))
	assert.Equal(t, []string{
		"P add app.x >1",
		"P modify app.x 1>2",
		"K modify app.x 1>2",
		"P modify app.x 2>two",
		"K modify app.x 2>two",
		"P delete app.x two>",
		"P add app.a >1",
		"P add app.b >2",
		"P delete app.a 1>",
		"P delete app.b 2>",
	}, got)

	v, err := s.Get("app.c")
	require.NoError(t, err)
	assert.Equal(t, U8(3), v)
	_, err = s.Get("app.none")
	assert.ErrorIs(t, err, ErrNotFound)
	assert.ErrorIs(t, s.Set("x", U8(1)), ErrInvalidKey)
	assert.ErrorIs(t, s.Set("app.z", Value{}), ErrBadValue)
	assert.ErrorIs(t, s.Set("app.big", String(string(make([]byte, MaxValueSize+1)))), ErrBadValue)
}

func TestStoreSources(t *testing.T) {
	s := NewStore()
	n := uint64(0)
	s.AddSource("stats.", func() []Entry {
		n++
		return []Entry{{"stats.b", U64(n)}, {"stats.a", U64(0)}}
	})
	require.NoError(t, s.Set("runtime.x", U8(1)))
	v, err := s.Get("stats.b")
	require.NoError(t, err)
	assert.Equal(t, U64(1), v, "computed when read")
	v, _ = s.Get("stats.b")
	assert.Equal(t, U64(2), v)
	_, err = s.Get("stats.c")
	assert.ErrorIs(t, err, ErrNotFound)
	assert.ErrorIs(t, s.Set("stats.b", U64(9)), ErrReadOnly)
	var keys []string
	for _, e := range s.List("") {
		keys = append(keys, e.Key)
	}
	assert.Equal(t, []string{"runtime.x", "stats.a", "stats.b"}, keys)
	assert.Len(t, s.List("stats.a"), 1)
	assert.Len(t, s.List("runtime."), 1)
}

func TestPolicy(t *testing.T) {
	p := &Policy{LocalNodePos: 1, configTypes: map[string]Type{"totem.token": TypeU32}}
	ok := []struct {
		key string
		v   Value
	}{
		{"totem.token", U32(500)},
		{"quorum.expected_votes", U32(3)},
		{"nodelist.node.0.ring0_addr", String("10.0.0.1")},
		{"nodelist.node.3.quorum_votes", U32(2)},
		{"logging.debug", String("on")},
		{"stats.clear.all", U8(1)},
		{"myapp.setting", String("x")},
	}
	for _, c := range ok {
		assert.NoError(t, p.CheckWrite(c.key, Value{}, c.v), c.key)
	}
	ro := []string{"runtime.votequorum.quorate", "runtime.config.totem.token", "stats.srp.messages_in",
		"totem.crypto_cipher", "totem.cluster_name", "quorum.wait_for_all", "nodelist.local_node_pos",
		"nodelist.node.1.ring0_addr", "internal_configuration.x", "uidgid.config.x"}
	for _, k := range ro {
		err := p.CheckWrite(k, Value{}, U8(1))
		assert.ErrorIs(t, err, ErrReadOnly, k)
		assert.ErrorIs(t, err, ipc.ErrAccess, k)
		assert.Contains(t, err.Error(), k, "the error names the key")
		assert.ErrorIs(t, p.CheckDelete(k), ErrReadOnly, k)
	}
	bad := []struct {
		key string
		v   Value
	}{
		{"totem.token", String("1000")},
		{"totem.token", U32(5)},
		{"totem.window_size", U32(0)},
		{"quorum.two_node", U8(2)},
		{"nodelist.node.0.quorum_votes", U32(300)},
		{"nodelist.node.0.nodeid", U32(0)},
		{"totem.join", String("x")},
	}
	for _, c := range bad {
		assert.ErrorIs(t, p.CheckWrite(c.key, Value{}, c.v), ErrBadValue, c.key)
	}
	assert.NoError(t, p.CheckDelete("myapp.setting"))
}

func TestConfigEntries(t *testing.T) {
	cfg, err := config.Parse("c.toml", []byte(`
[totem]
token = 1000
crypto_cipher = "none"
[[node]]
nodeid = 1
name = "n1"
ring0_addr = "127.0.0.1"
[[node]]
nodeid = 2
ring0_addr = "127.0.0.2"
quorum_votes = 2
[[node]]
nodeid = 3
ring0_addr = "127.0.0.3"
[quorum]
expected_votes = 4
auto_tie_breaker = true
wait_for_all = true
`))
	require.NoError(t, err)
	m := map[string]string{}
	for _, e := range ConfigEntries(cfg, 2) {
		m[e.Key] = e.String()
	}
	for _, want := range []string{
		"runtime.config.totem.token (u32) = 1650",
		"totem.token (u32) = 1000",
		"totem.port (u16) = 5405",
		"totem.cluster_name (str) = ringmaster",
		"nodelist.node.0.nodeid (u32) = 1",
		"nodelist.node.0.name (str) = n1",
		"nodelist.node.1.ring0_addr (str) = 127.0.0.2",
		"nodelist.node.1.quorum_votes (u32) = 2",
		"nodelist.local_node_pos (u32) = 1",
		"quorum.expected_votes (u32) = 4",
		"quorum.wait_for_all (u8) = 1",
		"quorum.auto_tie_breaker_node (str) = lowest",
		"quorum.two_node (u8) = 0",
		"logging.to_stderr (str) = yes",
	} {
		k := want[:len(want)-len(want[indexParen(want):])]
		assert.Equal(t, want, m[k], k)
	}
	_, hasVotes := m["nodelist.node.0.quorum_votes"]
	assert.False(t, hasVotes, "quorum_votes only where configured, as in corosync")
	_, hasKey := m["totem.keyfile"]
	assert.False(t, hasKey, "no keyfile without crypto")
}

func indexParen(s string) int {
	for i := range s {
		if s[i] == ' ' {
			return i
		}
	}
	return len(s)
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

func TestMembersFromConfChange(t *testing.T) {
	cfg, err := config.Parse("c.toml", []byte("[totem]\ncrypto_cipher = \"none\"\n[[node]]\nnodeid = 1\nring0_addr = \"127.0.0.1\"\n[[node]]\nnodeid = 2\nring0_addr = \"127.0.0.2\"\n"))
	require.NoError(t, err)
	s := New(cfg, 1, Sources{})
	get := func(k string) string {
		v, err := s.Store().Get(k)
		if err != nil {
			return "-"
		}
		return v.String()
	}
	reg := func(members, joined, left []totem.NodeID) {
		s.ConfChange(totem.ConfChange{Kind: totem.Regular, Members: members, Joined: joined, Left: left})
	}
	reg([]totem.NodeID{1}, []totem.NodeID{1}, nil)
	assert.Equal(t, "joined", get("runtime.members.1.status"))
	assert.Equal(t, "r(0) ip(127.0.0.1) ", get("runtime.members.1.ip"))
	reg([]totem.NodeID{1, 2}, []totem.NodeID{2}, nil)
	reg([]totem.NodeID{1}, nil, []totem.NodeID{2})
	assert.Equal(t, "left", get("runtime.members.2.status"))
	s.ConfChange(totem.ConfChange{Kind: totem.Transitional, Members: []totem.NodeID{1}})
	reg([]totem.NodeID{1, 2}, []totem.NodeID{2}, nil)
	assert.Equal(t, "joined", get("runtime.members.2.status"))
	assert.Equal(t, "2", get("runtime.members.2.join_count"))
	assert.Equal(t, "1", get("runtime.members.1.join_count"))
	assert.Equal(t, "-", get("runtime.members.3.status"))
}
