package web

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ringmaster/clients"
	"ringmaster/internal/events"
)

func source(log *events.Log) Source {
	return Source{
		State: func() State {
			return State{Status: &clients.Status{NodeID: 1, ClusterName: "c", State: "operational",
				Members: []clients.Member{{NodeID: 1, Name: "n1", Addr: "127.0.0.1:5405"}}}}
		},
		Events:   log,
		Interval: time.Hour, // updates only on events here
	}
}

func TestPageAndState(t *testing.T) {
	log := events.New(0, nil)
	for range RecentEvents + 5 {
		log.Record(events.Quorum, "q", nil)
	}
	srv := httptest.NewServer(Handler(source(log)))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	assert.Contains(t, string(body), `id="members"`)
	assert.NotContains(t, string(body), "http://", "no external assets")
	assert.NotContains(t, string(body), "https://", "no external assets")
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'")

	resp, err = http.Get(srv.URL + "/api/state")
	require.NoError(t, err)
	var st State
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	resp.Body.Close()
	assert.Equal(t, "n1", st.Status.Members[0].Name)
	require.Len(t, st.Events, RecentEvents)
	assert.Equal(t, uint64(RecentEvents+5), st.Events[RecentEvents-1].Seq, "the newest events")

	resp, err = http.Get(srv.URL + "/nothing-here")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestReadOnly(t *testing.T) {
	srv := httptest.NewServer(Handler(source(events.New(0, nil))))
	defer srv.Close()
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		req, _ := http.NewRequest(m, srv.URL+"/api/state", strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, m)
	}
}

// The stream sends the state at once and again at each event.
func TestStreamPushesEvents(t *testing.T) {
	log := events.New(0, nil)
	srv := httptest.NewServer(Handler(source(log)))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/stream")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	r := bufio.NewReader(resp.Body)
	next := func() State {
		t.Helper()
		for {
			line, err := r.ReadString('\n')
			require.NoError(t, err)
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				var st State
				require.NoError(t, json.Unmarshal([]byte(d), &st))
				return st
			}
		}
	}
	assert.Empty(t, next().Events)
	log.Record(events.Membership, "membership changed", events.Fields{"left": []uint32{3}})
	st := next()
	require.Len(t, st.Events, 1)
	assert.Equal(t, events.Membership, st.Events[0].Kind)
}
