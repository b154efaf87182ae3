// Package logging builds ringd's zap logger from [logging] and re-applies
// it on reload.
//
// Outputs (any combination): stderr and the log file in the chosen format
// ("console": human-readable, tab-separated; "json": one object a line),
// syslog (to_syslog: /dev/log, facility daemon, tag ringd, the console
// format without the time, which syslog adds) and the systemd journal
// (to_journald: the message with every field as a journal field,
// RINGMASTER_<KEY>, so `journalctl -o verbose` and field matches work).
//
// Reload (Apply) swaps every output at once: loggers derived earlier with
// With or Named keep working and write to the new outputs, with their
// fields. Apply either applies the whole new [logging] or, when an output
// cannot be opened, changes nothing and says why.
package logging

import (
	"errors"
	"fmt"
	"io"
	"log/syslog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"ringmaster/config"
)

// Logger is a zap logger whose outputs and level can be changed on reload.
type Logger struct {
	*zap.Logger
	Level zap.AtomicLevel

	opt   Options
	dyn   *dynRoot
	mu    sync.Mutex // serialises Apply and Close
	cfg   config.Logging
	close []io.Closer
}

// Options are for tests.
type Options struct {
	// SyslogNetwork and SyslogAddr replace the local syslog socket
	// (log/syslog.Dial's arguments).
	SyslogNetwork, SyslogAddr string
	// Stderr replaces os.Stderr.
	Stderr zapcore.WriteSyncer
}

// New builds a logger from c.
func New(c config.Logging) (*Logger, error) { return NewWith(c, Options{}) }

// NewWith builds a logger from c with test options.
func NewWith(c config.Logging, o Options) (*Logger, error) {
	if o.Stderr == nil {
		o.Stderr = zapcore.Lock(os.Stderr)
	}
	l := &Logger{Level: zap.NewAtomicLevelAt(levelOf(c)), opt: o, dyn: &dynRoot{}}
	core, closers, err := build(c, l.Level, o)
	if err != nil {
		return nil, err
	}
	l.dyn.set(core)
	l.cfg, l.close = c, closers
	l.Logger = zap.New(&dynCore{root: l.dyn, lvl: l.Level})
	return l, nil
}

func levelOf(c config.Logging) zapcore.Level {
	if c.Debug {
		return zapcore.DebugLevel
	}
	return zapcore.InfoLevel
}

// Config is the [logging] in effect.
func (l *Logger) Config() config.Logging {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg
}

// Apply re-applies [logging] (SIGHUP): level, outputs and format. When an
// output cannot be opened nothing changes and the error says which.
func (l *Logger) Apply(c config.Logging) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	core, closers, err := build(c, l.Level, l.opt)
	if err != nil {
		return err
	}
	_ = l.dyn.get().Sync()
	l.dyn.set(core)
	l.Level.SetLevel(levelOf(c))
	old := l.close
	l.cfg, l.close = c, closers
	// A write that picked the old outputs just before the swap may
	// still be running: close them a little later.
	time.AfterFunc(time.Second, func() { closeAll(old) })
	return nil
}

// Close flushes and closes the outputs.
func (l *Logger) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.Sync()
	closeAll(l.close)
	l.close = nil
}

func closeAll(cs []io.Closer) {
	for _, c := range cs {
		_ = c.Close()
	}
}

// build makes the cores of c's outputs.
func build(c config.Logging, lvl zap.AtomicLevel, o Options) (zapcore.Core, []io.Closer, error) {
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch c.Format {
	case "json":
		enc = zapcore.NewJSONEncoder(ec)
	case "", "console":
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return nil, nil, fmt.Errorf("logging.format: %q is neither \"console\" nor \"json\"", c.Format)
	}
	var (
		cores   []zapcore.Core
		closers []io.Closer
	)
	fail := func(err error) (zapcore.Core, []io.Closer, error) {
		closeAll(closers)
		return nil, nil, err
	}
	if c.ToStderr {
		cores = append(cores, zapcore.NewCore(enc, o.Stderr, lvl))
	}
	if c.Logfile != "" {
		f, err := os.OpenFile(c.Logfile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return fail(fmt.Errorf("logging.logfile: %w", err))
		}
		closers = append(closers, f)
		cores = append(cores, zapcore.NewCore(enc.Clone(), zapcore.Lock(f), lvl))
	}
	if c.ToSyslog {
		w, err := syslog.Dial(o.SyslogNetwork, o.SyslogAddr, syslog.LOG_DAEMON|syslog.LOG_INFO, "ringd")
		if err != nil {
			return fail(fmt.Errorf("logging.to_syslog: %w", err))
		}
		closers = append(closers, w)
		sec := ec
		sec.TimeKey = "" // syslog stamps the time itself
		sec.EncodeLevel = zapcore.CapitalLevelEncoder
		var senc zapcore.Encoder = zapcore.NewConsoleEncoder(sec)
		if c.Format == "json" {
			senc = zapcore.NewJSONEncoder(sec)
		}
		cores = append(cores, &syslogCore{LevelEnabler: lvl, enc: senc, w: w})
	}
	if c.ToJournald {
		if !journal.Enabled() {
			return fail(errors.New("logging.to_journald: no journald socket (/run/systemd/journal/socket)"))
		}
		cores = append(cores, &journalCore{LevelEnabler: lvl})
	}
	if len(cores) == 0 {
		return zapcore.NewNopCore(), closers, nil
	}
	return zapcore.NewTee(cores...), closers, nil
}

// --- a core whose outputs can be swapped under loggers already made ---

type dynRoot struct {
	cur atomic.Pointer[generation]
}

type generation struct {
	core zapcore.Core
}

func (r *dynRoot) set(c zapcore.Core)    { r.cur.Store(&generation{core: c}) }
func (r *dynRoot) get() zapcore.Core     { return r.cur.Load().core }
func (r *dynRoot) gen() *generation      { return r.cur.Load() }
func (g *generation) with() zapcore.Core { return g.core }

// dynCore writes to the root's current outputs with its own fields; the
// core with the fields encoded is built once per generation.
type dynCore struct {
	root   *dynRoot
	lvl    zapcore.LevelEnabler
	fields []zapcore.Field
	cache  atomic.Pointer[cached]
}

type cached struct {
	gen  *generation
	core zapcore.Core
}

func (c *dynCore) current() zapcore.Core {
	g := c.root.gen()
	if k := c.cache.Load(); k != nil && k.gen == g {
		return k.core
	}
	core := g.with()
	if len(c.fields) > 0 {
		core = core.With(c.fields)
	}
	c.cache.Store(&cached{gen: g, core: core})
	return core
}

func (c *dynCore) Enabled(l zapcore.Level) bool { return c.lvl.Enabled(l) }

func (c *dynCore) With(fs []zapcore.Field) zapcore.Core {
	n := &dynCore{root: c.root, lvl: c.lvl, fields: make([]zapcore.Field, 0, len(c.fields)+len(fs))}
	n.fields = append(append(n.fields, c.fields...), fs...)
	return n
}

func (c *dynCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *dynCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	return c.current().Write(e, fs)
}

func (c *dynCore) Sync() error { return c.current().Sync() }

// --- syslog ---

// syslogCore writes encoded lines (fields added by With are encoded
// into enc) with the entry's syslog priority.
type syslogCore struct {
	zapcore.LevelEnabler
	enc zapcore.Encoder
	w   *syslog.Writer
}

func (c *syslogCore) With(fs []zapcore.Field) zapcore.Core {
	enc := c.enc.Clone()
	for _, f := range fs {
		f.AddTo(enc)
	}
	return &syslogCore{LevelEnabler: c.LevelEnabler, enc: enc, w: c.w}
}

func (c *syslogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *syslogCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	buf, err := c.enc.EncodeEntry(e, fs)
	if err != nil {
		return err
	}
	defer buf.Free()
	line := strings.TrimRight(buf.String(), "\n")
	switch {
	case e.Level >= zapcore.ErrorLevel:
		return c.w.Err(line)
	case e.Level == zapcore.WarnLevel:
		return c.w.Warning(line)
	case e.Level == zapcore.InfoLevel:
		return c.w.Info(line)
	default:
		return c.w.Debug(line)
	}
}

func (c *syslogCore) Sync() error { return nil }

// --- journald ---

type journalCore struct {
	zapcore.LevelEnabler
	fields []zapcore.Field
}

func (c *journalCore) With(fs []zapcore.Field) zapcore.Core {
	n := &journalCore{LevelEnabler: c.LevelEnabler}
	n.fields = append(append(n.fields, c.fields...), fs...)
	return n
}

func (c *journalCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *journalCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	m := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(m)
	}
	for _, f := range fs {
		f.AddTo(m)
	}
	vars := map[string]string{"SYSLOG_IDENTIFIER": "ringd"}
	if e.LoggerName != "" {
		vars["RINGMASTER_LOGGER"] = e.LoggerName
	}
	for k, v := range m.Fields {
		vars["RINGMASTER_"+journalKey(k)] = fmt.Sprint(v)
	}
	return journal.Send(e.Message, journalPriority(e.Level), vars)
}

func (c *journalCore) Sync() error { return nil }

// journalKey makes a journal field name: upper case letters, digits and
// underscores.
func journalKey(k string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, k)
}

func journalPriority(l zapcore.Level) journal.Priority {
	switch {
	case l >= zapcore.ErrorLevel:
		return journal.PriErr
	case l == zapcore.WarnLevel:
		return journal.PriWarning
	case l == zapcore.InfoLevel:
		return journal.PriInfo
	}
	return journal.PriDebug
}
