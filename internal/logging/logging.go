// Package logging builds ringd's zap logger from [logging].
package logging

import (
	"fmt"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"ringmaster/config"
)

// Logger is a zap logger whose level can be changed on reload.
type Logger struct {
	*zap.Logger
	Level zap.AtomicLevel
	close func()
}

// New builds a logger writing human-readable lines to stderr and/or the
// log file. debug lowers the level to Debug.
func New(c config.Logging) (*Logger, error) {
	lvl := zap.NewAtomicLevelAt(zapcore.InfoLevel)
	if c.Debug {
		lvl.SetLevel(zapcore.DebugLevel)
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	ec.EncodeLevel = zapcore.CapitalLevelEncoder
	enc := zapcore.NewConsoleEncoder(ec)
	var cores []zapcore.Core
	closeFn := func() {}
	if c.ToStderr {
		cores = append(cores, zapcore.NewCore(enc, zapcore.Lock(os.Stderr), lvl))
	}
	if c.Logfile != "" {
		f, err := os.OpenFile(c.Logfile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return nil, fmt.Errorf("logging.logfile: %w", err)
		}
		cores = append(cores, zapcore.NewCore(enc.Clone(), zapcore.Lock(f), lvl))
		closeFn = func() { _ = f.Close() }
	}
	return &Logger{Logger: zap.New(zapcore.NewTee(cores...)), Level: lvl, close: closeFn}, nil
}

// Close flushes and closes the log file.
func (l *Logger) Close() {
	_ = l.Sync()
	l.close()
}
