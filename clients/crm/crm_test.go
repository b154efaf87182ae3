package crm

import (
	"bytes"
	"compress/gzip"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ringmaster/crm/wire"
	"ringmaster/ipc"
)

// fakeCRM answers the crm service's CIB requests as a ringd would: gz is
// the ReqGetCIBGzip reply (nil: an older ringd that does not know it),
// plain the ReqGetCIB one.
type fakeCRM struct {
	gz, plain []byte
}

func (f *fakeCRM) Request(c *ipc.Conn, h ipc.Header, _ []byte) {
	switch {
	case h.Msg == wire.ReqGetCIBGzip && f.gz != nil:
		_ = c.Reply(h, f.gz)
	case h.Msg == wire.ReqGetCIB:
		_ = c.Reply(h, f.plain)
	default:
		_ = c.ReplyError(h, ipc.Errorf(ipc.CodeUnknownMessage, "unknown request %d", h.Msg))
	}
}

func (f *fakeCRM) Closed(*ipc.Conn) {}

func serveCRM(t *testing.T, f *fakeCRM) *Client {
	t.Helper()
	srv, err := ipc.Listen(filepath.Join(t.TempDir(), "s.sock"), f, ipc.Options{})
	require.NoError(t, err)
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() { _ = srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, srv.Path())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return out.Bytes()
}

// bigCIB is a CIB whose XML is larger than an IPC frame (a large
// cluster's status section).
func bigCIB() []byte {
	var b strings.Builder
	b.WriteString(`<cib admin_epoch="0" epoch="1" num_updates="0"><configuration><crm_config/><nodes/><resources/><constraints/></configuration><status>`)
	for i := 0; b.Len() <= ipc.MaxPayload+(1<<20); i++ {
		b.WriteString(`<node_state id="1" uname="n1"><lrm id="1"><lrm_resources><lrm_resource id="r" type="Dummy" class="ocf" provider="heartbeat"><lrm_rsc_op id="r_last_0" operation="monitor" call-id="7" rc-code="0" op-status="0" interval="10000"/></lrm_resource></lrm_resources></lrm></node_state>`)
	}
	b.WriteString(`</status></cib>`)
	return []byte(b.String())
}

// TestCIBLargerThanAFrame: a CIB larger than an IPC frame comes
// compressed and is whole after decompression.
func TestCIBLargerThanAFrame(t *testing.T) {
	x := bigCIB()
	c := serveCRM(t, &fakeCRM{gz: gz(t, x)})
	got, err := c.CIBXML(context.Background())
	require.NoError(t, err)
	require.Equal(t, len(x), len(got))
	require.True(t, bytes.Equal(x, got))
}

// TestCIBFromOlderRingd: a ringd without ReqGetCIBGzip is asked for the
// plain XML.
func TestCIBFromOlderRingd(t *testing.T) {
	c := serveCRM(t, &fakeCRM{plain: []byte("<cib/>")})
	got, err := c.CIBXML(context.Background())
	require.NoError(t, err)
	require.Equal(t, "<cib/>", string(got))
}

// TestCIBDecompressionBounded: a reply that inflates past MaxCIBBytes is
// refused, not held in memory.
func TestCIBDecompressionBounded(t *testing.T) {
	var out bytes.Buffer
	w, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	require.NoError(t, err)
	zeros := make([]byte, 1<<20)
	for range wire.MaxCIBBytes/len(zeros) + 1 {
		_, err := w.Write(zeros)
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	require.Less(t, out.Len(), ipc.MaxPayload)
	c := serveCRM(t, &fakeCRM{gz: out.Bytes()})
	_, err = c.CIBXML(context.Background())
	require.ErrorContains(t, err, "uncompressed")
}

// FuzzGunzipCIB: any reply to ReqGetCIBGzip gives the XML or an error,
// within the bound.
func FuzzGunzipCIB(f *testing.F) {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	_, _ = w.Write([]byte("<cib/>"))
	_ = w.Close()
	f.Add(out.Bytes())
	f.Add([]byte{})
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, z []byte) {
		b, err := gunzipCIB(z)
		if err == nil && len(b) > wire.MaxCIBBytes {
			t.Fatalf("%d bytes", len(b))
		}
	})
}
