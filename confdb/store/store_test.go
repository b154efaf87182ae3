package store

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/confdb/wire"
	"ringmaster/ipc"
)

func TestStoreTracking(t *testing.T) {
	s := NewStore()
	var got []string
	rec := func(tag string) TrackFunc {
		return func(_ TrackID, ev wire.Event) {
			got = append(got, tag+" "+ev.Kind.String()+" "+ev.Key+" "+ev.Old.String()+">"+ev.New.String())
		}
	}
	prefix := s.Track("app.", true, wire.EventAll, rec("P"))
	s.Track("app.x", false, wire.EventModify, rec("K"))
	require.NoError(t, s.Set("app.x", wire.U32(1)))
	require.NoError(t, s.Set("app.x", wire.U32(1)), "unchanged: no event")
	require.NoError(t, s.Set("app.x", wire.U32(2)))
	require.NoError(t, s.Set("app.x", wire.String("two")), "a type change is a modify")
	require.NoError(t, s.Set("other.y", wire.U8(1)))
	require.NoError(t, s.Delete("app.x"))
	assert.ErrorIs(t, s.Delete("app.x"), wire.ErrNotFound)
	require.NoError(t, s.Set("app.a", wire.U8(1)))
	require.NoError(t, s.Set("app.b", wire.U8(2)))
	s.DeletePrefix("app.")
	assert.True(t, s.Untrack(prefix))
	assert.False(t, s.Untrack(prefix))
	require.NoError(t, s.Set("app.c", wire.U8(3)))
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
	assert.Equal(t, wire.U8(3), v)
	_, err = s.Get("app.none")
	assert.ErrorIs(t, err, wire.ErrNotFound)
	assert.ErrorIs(t, s.Set("x", wire.U8(1)), wire.ErrInvalidKey)
	assert.ErrorIs(t, s.Set("app.z", wire.Value{}), wire.ErrBadValue)
	assert.ErrorIs(t, s.Set("app.big", wire.String(string(make([]byte, wire.MaxValueSize+1)))), wire.ErrBadValue)
}

func TestStoreSources(t *testing.T) {
	s := NewStore()
	n := uint64(0)
	s.AddSource("stats.", func() []wire.Entry {
		n++
		return []wire.Entry{{Key: "stats.b", Value: wire.U64(n)}, {Key: "stats.a", Value: wire.U64(0)}}
	})
	require.NoError(t, s.Set("runtime.x", wire.U8(1)))
	v, err := s.Get("stats.b")
	require.NoError(t, err)
	assert.Equal(t, wire.U64(1), v, "computed when read")
	v, _ = s.Get("stats.b")
	assert.Equal(t, wire.U64(2), v)
	_, err = s.Get("stats.c")
	assert.ErrorIs(t, err, wire.ErrNotFound)
	assert.ErrorIs(t, s.Set("stats.b", wire.U64(9)), wire.ErrReadOnly)
	var keys []string
	for _, e := range s.List("") {
		keys = append(keys, e.Key)
	}
	assert.Equal(t, []string{"runtime.x", "stats.a", "stats.b"}, keys)
	assert.Len(t, s.List("stats.a"), 1)
	assert.Len(t, s.List("runtime."), 1)
}

func TestPolicy(t *testing.T) {
	p := &Policy{LocalNodePos: 1, configTypes: map[string]wire.Type{"totem.token": wire.TypeU32}}
	ok := []struct {
		key string
		v   wire.Value
	}{
		{"totem.token", wire.U32(500)},
		{"quorum.expected_votes", wire.U32(3)},
		{"nodelist.node.0.ring0_addr", wire.String("10.0.0.1")},
		{"nodelist.node.3.quorum_votes", wire.U32(2)},
		{"logging.debug", wire.String("on")},
		{"stats.clear.all", wire.U8(1)},
		{"myapp.setting", wire.String("x")},
	}
	for _, c := range ok {
		assert.NoError(t, p.CheckWrite(c.key, wire.Value{}, c.v), c.key)
	}
	ro := []string{"runtime.votequorum.quorate", "runtime.config.totem.token", "stats.srp.messages_in",
		"totem.crypto_cipher", "totem.cluster_name", "quorum.wait_for_all", "nodelist.local_node_pos",
		"nodelist.node.1.ring0_addr", "internal_configuration.x", "uidgid.config.x"}
	for _, k := range ro {
		err := p.CheckWrite(k, wire.Value{}, wire.U8(1))
		assert.ErrorIs(t, err, wire.ErrReadOnly, k)
		assert.ErrorIs(t, err, ipc.ErrAccess, k)
		assert.Contains(t, err.Error(), k, "the error names the key")
		assert.ErrorIs(t, p.CheckDelete(k), wire.ErrReadOnly, k)
	}
	bad := []struct {
		key string
		v   wire.Value
	}{
		{"totem.token", wire.String("1000")},
		{"totem.token", wire.U32(5)},
		{"totem.window_size", wire.U32(0)},
		{"quorum.two_node", wire.U8(2)},
		{"nodelist.node.0.quorum_votes", wire.U32(300)},
		{"nodelist.node.0.nodeid", wire.U32(0)},
		{"totem.join", wire.String("x")},
	}
	for _, c := range bad {
		assert.ErrorIs(t, p.CheckWrite(c.key, wire.Value{}, c.v), wire.ErrBadValue, c.key)
	}
	assert.NoError(t, p.CheckDelete("myapp.setting"))
}

// TestCore drives the state machine as the service does, with no
// goroutines, sockets or clocks: a node starts with its configuration keys
// (NewPolicy), clients write through the policy, the daemon writes its own
// keys directly, and a tracker sees every change in order.
func TestCore(t *testing.T) {
	entries := []wire.Entry{
		{Key: "totem.token", Value: wire.U32(1000)},
		{Key: "nodelist.node.0.ring0_addr", Value: wire.String("10.0.0.1")},
		{Key: "nodelist.node.1.ring0_addr", Value: wire.String("10.0.0.2")},
		{Key: "nodelist.local_node_pos", Value: wire.U32(1)},
		{Key: "runtime.config.totem.token", Value: wire.U32(1650)},
	}
	s := NewStore()
	p := NewPolicy(entries)
	for _, e := range entries {
		require.NoError(t, s.Set(e.Key, e.Value))
	}
	var got []string
	s.Track("", true, wire.EventAll, func(_ TrackID, ev wire.Event) {
		got = append(got, ev.Kind.String()+" "+ev.Key+" "+ev.Old.String()+">"+ev.New.String())
	})
	// write is a client's write as the service checks it.
	write := func(key string, v wire.Value) error {
		old, err := s.Get(key)
		if err != nil && !assert.ErrorIs(t, err, wire.ErrNotFound) {
			return err
		}
		if err := p.CheckWrite(key, old, v); err != nil {
			return err
		}
		return s.Set(key, v)
	}
	require.NoError(t, write("totem.token", wire.U32(2000)))
	assert.ErrorIs(t, write("totem.token", wire.String("2000")), wire.ErrBadValue, "a configuration key keeps its type")
	assert.ErrorIs(t, write("nodelist.node.1.ring0_addr", wire.String("10.0.0.9")), wire.ErrReadOnly, "the local node's own address")
	require.NoError(t, write("nodelist.node.0.ring0_addr", wire.String("10.0.0.9")))
	assert.ErrorIs(t, write("runtime.config.totem.token", wire.U32(1)), wire.ErrReadOnly)
	require.NoError(t, s.Set("runtime.config.totem.token", wire.U32(3300)), "the daemon's own writes skip the policy")
	require.NoError(t, write("myapp.x", wire.String("v")))
	require.NoError(t, p.CheckDelete("myapp.x"))
	require.NoError(t, s.Delete("myapp.x"))
	assert.Equal(t, []string{
		"modify totem.token 1000>2000",
		"modify nodelist.node.0.ring0_addr 10.0.0.1>10.0.0.9",
		"modify runtime.config.totem.token 1650>3300",
		"add myapp.x >v",
		"delete myapp.x v>",
	}, got)
}
