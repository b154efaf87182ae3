package config

import "fmt"

// FieldErr is a problem with a dotted key of the file c was loaded from,
// naming the file and the line that set the key (or its closest parent),
// as Validate's errors do. The daemon's cluster-wide reload refuses a
// file with it for reasons only a running node knows (a node removed from
// the list while still a ring member).
func (c *Config) FieldErr(key, format string, args ...any) *FieldError {
	return &FieldError{File: c.Path, Line: c.line(key), Key: key, Msg: fmt.Sprintf(format, args...)}
}
