package daemon

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"

	"ringmaster/crm/cib"
	"ringmaster/crm/controld"
	"ringmaster/internal/durable"
)

// cibWriter keeps the CIB and the scheduler inputs on disk from its own
// goroutine, so that the executive never waits for an fsync. CIB writes
// coalesce (only the newest snapshot matters); scheduler inputs are all
// written, in order.
type cibWriter struct {
	dir    string
	maxPE  int
	log    *zap.Logger
	mu     sync.Mutex
	cib    *cib.CIB
	inputs []controld.PEInput
	wake   chan struct{}
	done   chan struct{}
	closed bool
}

func newCIBWriter(stateDir string, maxPE int, log *zap.Logger) *cibWriter {
	w := &cibWriter{dir: stateDir, maxPE: maxPE, log: log, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *cibWriter) saveCIB(c *cib.CIB) {
	w.mu.Lock()
	w.cib = c
	w.mu.Unlock()
	w.poke()
}

func (w *cibWriter) savePEInput(p controld.PEInput) {
	w.mu.Lock()
	w.inputs = append(w.inputs, p)
	w.mu.Unlock()
	w.poke()
}

func (w *cibWriter) poke() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *cibWriter) loop() {
	defer close(w.done)
	for range w.wake {
		w.flush()
	}
}

func (w *cibWriter) flush() {
	w.mu.Lock()
	c, inputs := w.cib, w.inputs
	w.cib, w.inputs = nil, nil
	w.mu.Unlock()
	if c != nil {
		var b bytes.Buffer
		if _, err := c.WriteTo(&b); err == nil {
			err = durable.WriteFile(filepath.Join(w.dir, CIBFile), b.Bytes(), 0o600)
			if err != nil {
				w.log.Error("cannot save the CIB", zap.Error(err))
			}
		}
	}
	if len(inputs) == 0 {
		return
	}
	dir := filepath.Join(w.dir, peInputDir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		w.log.Warn("cannot keep scheduler inputs", zap.Error(err))
		return
	}
	for _, p := range inputs {
		var b bytes.Buffer
		if _, err := p.CIB.WriteTo(&b); err != nil {
			continue
		}
		// Inputs are for replaying decisions, not state: no fsync.
		if err := os.WriteFile(filepath.Join(dir, p.Name(w.maxPE)), b.Bytes(), 0o640); err != nil {
			w.log.Warn("cannot keep a scheduler input", zap.Error(err))
		}
	}
	// The series continues from here after a restart (Pacemaker's
	// pe-input.last): file times are too coarse to find the newest.
	last := inputs[len(inputs)-1].Seq
	_ = os.WriteFile(filepath.Join(dir, peInputLast), []byte(strconv.Itoa(last)+"\n"), 0o640)
}

// peInputLast records the sequence number of the newest scheduler input.
const peInputLast = "pe-input.last"

// nextPEInput continues the series after the newest input on disk, the
// one pe-input.last names (0 without one).
func (w *cibWriter) nextPEInput() int {
	b, err := os.ReadFile(filepath.Join(w.dir, peInputDir, peInputLast))
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 {
		return 0
	}
	return n + 1
}

// close writes what is pending and stops the goroutine.
func (w *cibWriter) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	close(w.wake)
	w.mu.Unlock()
	<-w.done
	w.flush()
}
