// Package corosyncconf reads corosync's own configuration file
// (corosync.conf(5): nested "name { key: value }" sections) and converts it
// into ringmaster's corosync.toml, so a cluster moves over with its node
// list, timing and quorum options. Everything that cannot be carried over
// (knet link options, redundant rings, syslog details) is reported as a
// warning naming the line, never dropped silently.
package corosyncconf

import (
	"errors"
	"fmt"
	"strings"
)

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("corosync.conf syntax error")

// Limits keep a hostile or broken file from costing unbounded memory or
// recursion: corosync.conf files are a few kilobytes and three levels deep.
const (
	maxDepth = 16
	maxItems = 100000
)

// Section is one "name { ... }" block (the file itself is the unnamed root).
type Section struct {
	Name     string
	Line     int
	Keys     []KeyValue
	Sections []*Section
}

// KeyValue is one "key: value" line.
type KeyValue struct {
	Key, Value string
	Line       int
}

// Get returns the last value of key in s (corosync keeps the last one).
func (s *Section) Get(key string) (KeyValue, bool) {
	for i := len(s.Keys) - 1; i >= 0; i-- {
		if s.Keys[i].Key == key {
			return s.Keys[i], true
		}
	}
	return KeyValue{}, false
}

// All returns the subsections named name, in file order.
func (s *Section) All(name string) []*Section {
	var out []*Section
	for _, c := range s.Sections {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

// Parse reads a corosync.conf. Comments start with '#' at the beginning of
// a line (after blanks); "key: value", "key = value" (corosync accepts both)
// and "name {" ... "}" are the only other line forms. Errors name the file
// and line.
func Parse(name string, data []byte) (*Section, error) {
	root := &Section{}
	stack := []*Section{root}
	items := 0
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
		n := i + 1
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if items++; items > maxItems {
			return nil, fmt.Errorf("%w: %s:%d: more than %d items", ErrSyntax, name, n, maxItems)
		}
		cur := stack[len(stack)-1]
		switch {
		case line == "}":
			if len(stack) == 1 {
				return nil, fmt.Errorf("%w: %s:%d: '}' without an open section", ErrSyntax, name, n)
			}
			stack = stack[:len(stack)-1]
		case strings.HasSuffix(line, "{"):
			sec := strings.TrimSpace(strings.TrimSuffix(line, "{"))
			if sec == "" || strings.ContainsAny(sec, ":={}") {
				return nil, fmt.Errorf("%w: %s:%d: bad section name %q", ErrSyntax, name, n, sec)
			}
			if len(stack) > maxDepth {
				return nil, fmt.Errorf("%w: %s:%d: sections nested deeper than %d", ErrSyntax, name, n, maxDepth)
			}
			s := &Section{Name: sec, Line: n}
			cur.Sections = append(cur.Sections, s)
			stack = append(stack, s)
		default:
			i := strings.IndexAny(line, ":=")
			if i <= 0 {
				return nil, fmt.Errorf("%w: %s:%d: expected \"key: value\", \"name {\" or \"}\", got %q", ErrSyntax, name, n, line)
			}
			k := strings.TrimSpace(line[:i])
			v := strings.TrimSpace(line[i+1:])
			if strings.ContainsAny(k, " \t{}") {
				return nil, fmt.Errorf("%w: %s:%d: bad key %q", ErrSyntax, name, n, k)
			}
			cur.Keys = append(cur.Keys, KeyValue{Key: k, Value: v, Line: n})
		}
	}
	if len(stack) > 1 {
		open := stack[len(stack)-1]
		return nil, fmt.Errorf("%w: %s:%d: section %q is never closed", ErrSyntax, name, open.Line, open.Name)
	}
	return root, nil
}
