// Package web serves ringd's read-only status page: the members with their
// addresses, the ring id, quorum, the resources and where they run, and the
// recent events, kept live by
// server-sent events (no reload, no JavaScript framework, no external
// asset: everything is embedded in the binary).
//
//	GET /             the page (static/index.html)
//	GET /api/state    the state as JSON (status, quorum, recent events)
//	GET /api/stream   server-sent events: one "state" message at once,
//	                  then one at every event recorded and every
//	                  Interval (so counters and ring states that record
//	                  no event still show)
//
// Anything but GET and HEAD is refused (405): the page changes nothing.
package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"ringmaster/clients"
	"ringmaster/internal/events"
	vqwire "ringmaster/votequorum/wire"
)

//go:embed static
var static embed.FS

// RecentEvents is how many of the newest events the page shows.
const RecentEvents = 50

// State is what the page shows.
type State struct {
	Status *clients.Status `json:"status"`
	Quorum *vqwire.Status  `json:"quorum,omitempty"`
	// CRM is the resource manager's view (nil when it does not run).
	CRM    *CRM           `json:"crm,omitempty"`
	Events []events.Event `json:"events"`
}

// CRM is the resource manager as the page shows it.
type CRM struct {
	DC        string     `json:"dc"` // "" when there is none
	Version   string     `json:"version"`
	Resources []Resource `json:"resources"`
}

// Resource is one primitive (group members and clone instances included).
type Resource struct {
	ID    string `json:"id"`
	Agent string `json:"agent"`
	// State is started, stopped, failed, promoted or unpromoted.
	State string `json:"state"`
	Node  string `json:"node"` // "" when stopped
	Group string `json:"group,omitempty"`
}

// Source is where the page reads from. State is called from HTTP
// goroutines, possibly concurrently.
type Source struct {
	State  func() State // status and quorum; Events is filled in here
	Events *events.Log
	// Interval between unprompted updates of a stream (default 2 s).
	Interval time.Duration
}

// Handler returns the page's handler (mounted at "/").
func Handler(src Source) http.Handler {
	if src.Interval <= 0 {
		src.Interval = 2 * time.Second
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		b, err := static.ReadFile("static/index.html")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(b)
	})
	mux.HandleFunc("GET /api/state", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(src.state())
	})
	mux.HandleFunc("GET /api/stream", src.stream)
	return readOnly(secure(mux))
}

func (src Source) state() State {
	st := src.State()
	if src.Events != nil {
		evs, _ := src.Events.After(0, time.Time{})
		if len(evs) > RecentEvents {
			evs = evs[len(evs)-RecentEvents:]
		}
		st.Events = evs
	}
	if st.Events == nil {
		st.Events = []events.Event{}
	}
	return st
}

func (src Source) stream(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	tick := time.NewTicker(src.Interval)
	defer tick.Stop()
	for {
		var changed <-chan struct{}
		if src.Events != nil {
			changed = src.Events.Changed()
		}
		b, _ := json.Marshal(src.state())
		if _, err := fmt.Fprintf(w, "event: state\ndata: %s\n\n", b); err != nil {
			return
		}
		fl.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-changed:
		case <-tick.C:
		}
	}
}

// readOnly refuses every method but GET and HEAD.
func readOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// secure forbids anything not from the page itself and framing.
func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}
