package wire

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/totem"
)

func sampleInfo() NodeInfo {
	return NodeInfo{
		Ring: totem.RingID{Rep: 1, Seq: 44}, Votes: 2, Expected: 5, Flags: InfoQuorate | InfoWaitForAll,
		Prev: []totem.NodeID{1, 2, 3},
		Lineage: Lineage{
			Ring: totem.RingID{Rep: 1, Seq: 40}, Step: 3, Expected: 5,
			Voters:  []Voter{{1, 2}, {2, 1}, {4, 2}},
			Members: []totem.NodeID{1, 2},
		},
	}
}

func TestWireRoundTrip(t *testing.T) {
	in := sampleInfo()
	out, err := DecodeNodeInfo(EncodeNodeInfo(in))
	require.NoError(t, err)
	assert.Equal(t, in, out)

	empty, err := DecodeNodeInfo(EncodeNodeInfo(NodeInfo{}))
	require.NoError(t, err)
	assert.Equal(t, NodeInfo{}, empty)

	r := Reconfigure{Param: ParamVotes, Node: 7, Value: 3, Nonce: 1 << 40}
	r2, err := DecodeReconfigure(EncodeReconfigure(r))
	require.NoError(t, err)
	assert.Equal(t, r, r2)

	ring := totem.RingID{Rep: 3, Seq: 1 << 33}
	ring2, err := DecodeLMS(EncodeLMS(ring))
	require.NoError(t, err)
	assert.Equal(t, ring, ring2)

	var req SetVotesRequest
	require.NoError(t, DecodePayload(EncodePayload(SetVotesRequest{NodeID: 2, Votes: 3}), &req))
	assert.Equal(t, SetVotesRequest{NodeID: 2, Votes: 3}, req)
}

func TestWireRejects(t *testing.T) {
	b := EncodeNodeInfo(sampleInfo())
	for i := range b {
		_, err := DecodeNodeInfo(b[:i])
		assert.ErrorIs(t, err, ErrMalformed, "truncated at %d", i)
	}
	_, err := DecodeNodeInfo(append(b, 0))
	assert.ErrorIs(t, err, ErrMalformed, "trailing byte")
	bad := append([]byte(nil), b...)
	bad[0] = 9
	_, err = DecodeNodeInfo(bad)
	assert.ErrorIs(t, err, ErrMalformed, "version")
	unsorted := sampleInfo()
	unsorted.Lineage.Voters[0], unsorted.Lineage.Voters[1] = unsorted.Lineage.Voters[1], unsorted.Lineage.Voters[0]
	_, err = DecodeNodeInfo(EncodeNodeInfo(unsorted))
	assert.ErrorIs(t, err, ErrMalformed, "unsorted voters")

	_, err = DecodeReconfigure(EncodeReconfigure(Reconfigure{Param: 9}))
	assert.ErrorIs(t, err, ErrMalformed)
	_, err = DecodeLMS([]byte{1, 2})
	assert.ErrorIs(t, err, ErrMalformed)
	var v SetExpectedRequest
	assert.ErrorIs(t, DecodePayload(nil, &v), ErrMalformed)
	assert.ErrorIs(t, DecodePayload([]byte{2, '{', '}'}, &v), ErrMalformed)
	assert.ErrorIs(t, DecodePayload([]byte{1, '['}, &v), ErrMalformed)
}

// The decoders of ring messages and client payloads never panic, and what
// they accept re-encodes to the same bytes.
func FuzzDecodeNodeInfo(f *testing.F) {
	f.Add(EncodeNodeInfo(sampleInfo()))
	f.Add(EncodeNodeInfo(NodeInfo{}))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := DecodeNodeInfo(b)
		if err != nil {
			return
		}
		assert.Equal(t, b, EncodeNodeInfo(in))
	})
}

func FuzzDecodeReconfigure(f *testing.F) {
	f.Add(EncodeReconfigure(Reconfigure{Param: ParamExpected, Value: 3, Nonce: 1}))
	f.Add(EncodeLMS(totem.RingID{Rep: 1, Seq: 4}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := DecodeReconfigure(b); err == nil {
			assert.Equal(t, b, EncodeReconfigure(r))
		}
		if ring, err := DecodeLMS(b); err == nil {
			assert.Equal(t, b, EncodeLMS(ring))
		}
		var a SetExpectedRequest
		_ = DecodePayload(b, &a)
		var v SetVotesRequest
		_ = DecodePayload(b, &v)
		var st Status
		_ = DecodePayload(b, &st)
	})
}

func TestStatusErr(t *testing.T) {
	st := Status{Quorate: true}
	assert.NoError(t, st.Err())
	st = Status{TotalVotes: 1, Quorum: 2, ExpectedVotes: 3}
	assert.True(t, errors.Is(st.Err(), ErrNotQuorate))
	assert.Contains(t, st.Err().Error(), "1 votes present, quorum is 2 of 3")
	st.WaitForAllStatus = true
	assert.Contains(t, st.Err().Error(), "waiting for all nodes")
}
