package ring

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/internal/clustertest"
)

// TestLossNoMembershipChange: with 10–30 % of the ring's datagrams dropped
// at every node (nftables numgen rule in each namespace) and traffic
// flowing, the ring retransmits and keeps its membership: the ring ID does
// not change and every node delivers the same messages in the same order.
func TestLossNoMembershipChange(t *testing.T) {
	for _, tc := range []struct {
		transport string
		loss      int
	}{{"udpu", 10}, {"udp", 20}, {"udpu", 30}} {
		t.Run(fmt.Sprintf("%s-%d%%", tc.transport, tc.loss), func(t *testing.T) {
			c := clustertest.New(t, clustertest.Options{Nodes: 3, Transport: tc.transport, Token: 1000, Netns: true})
			c.StartAll()
			c.MustRing(deadline, []int{1, 2, 3}, 1, 2, 3)
			before := c.MustStatus(t, 1).RingID
			for i := 1; i <= 3; i++ {
				c.SetLoss(i, tc.loss)
			}
			out, err := exec.Command(c.Bin+"/pload", "verify", "--json", "--size", "1000", "--duration", "4s",
				"--socket", c.Node(1).Socket, "--socket", c.Node(2).Socket, "--socket", c.Node(3).Socket).CombinedOutput()
			require.NoError(t, err, "pload verify under %d%% loss:\n%s", tc.loss, out)
			var v struct {
				Sent    int     `json:"sent"`
				Deliv   []int   `json:"delivered"`
				OrderOK bool    `json:"order_ok"`
				Rate    float64 `json:"msgs_per_sec"`
			}
			require.NoError(t, json.Unmarshal(out, &v), string(out))
			assert.True(t, v.OrderOK)
			assert.Positive(t, v.Sent)
			st := c.MustStatus(t, 1)
			t.Logf("%d%% loss: %d messages of 1000 B from 3 senders, %.0f msgs/s delivered; node 1: %d retransmissions, %d datagrams in, %d out",
				tc.loss, v.Sent, v.Rate, st.Counters["retransmits"], st.Counters["datagrams_in"], st.Counters["datagrams_out"])
			for i := 1; i <= 3; i++ {
				c.SetLoss(i, 0)
			}
			for i := 1; i <= 3; i++ {
				st := c.MustStatus(t, i)
				assert.Equal(t, before, st.RingID, "node %d changed ring under %d%% loss (retransmits %d, token losses %d)",
					i, tc.loss, st.Counters["retransmits"], st.Counters["token_losses"])
			}
		})
	}
}
