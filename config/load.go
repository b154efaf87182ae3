package config

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Load reads, parses and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes data (named name in errors) over the defaults and validates
// the result. The error, if any, is an Errors listing every problem.
func Parse(name string, data []byte) (*Config, error) {
	c := Default()
	c.Path = name
	c.lines = scanLines(data)
	md, err := toml.Decode(string(data), c)
	if err != nil {
		return nil, Errors{decodeError(name, c, err)}
	}
	var errs Errors
	for _, k := range md.Undecoded() {
		key := undecodedKey(k)
		if c.isParentOfUndecoded(md, k) {
			continue
		}
		errs = append(errs, &FieldError{File: name, Line: c.undecodedLine(k), Key: key, Msg: "unknown key"})
	}
	if verr := c.Validate(); verr != nil {
		var ve Errors
		if errors.As(verr, &ve) {
			errs = append(errs, ve...)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// isParentOfUndecoded: for an unknown table "[foo]" with keys inside, toml
// lists both "foo" and "foo.bar"; reporting the table once is enough, so the
// children of an undecoded table are skipped.
func (c *Config) isParentOfUndecoded(md toml.MetaData, k toml.Key) bool {
	for i := 1; i < len(k); i++ {
		parent := k[:i]
		for _, u := range md.Undecoded() {
			if len(u) == len(parent) && u.String() == parent.String() {
				return true
			}
		}
	}
	return false
}

func undecodedKey(k toml.Key) string { return strings.Join(k, ".") }

// undecodedLine finds the line of an unknown key. Keys inside [[node]]
// entries have no index in toml's metadata, so the first line setting that
// key in any node table is used.
func (c *Config) undecodedLine(k toml.Key) int {
	key := undecodedKey(k)
	if l, ok := c.lines[key]; ok {
		return l
	}
	if len(k) >= 2 {
		best := 0
		suffix := "." + strings.Join(k[1:], ".")
		for lk, l := range c.lines {
			if strings.HasPrefix(lk, k[0]+".") && strings.HasSuffix(lk, suffix) && (best == 0 || l < best) {
				best = l
			}
		}
		if best > 0 {
			return best
		}
	}
	return c.line(key)
}

var lineRe = regexp.MustCompile(`line (\d+)`)

// decodeError turns a toml decode error (syntax or wrong type) into a
// FieldError naming the line and key.
func decodeError(name string, c *Config, err error) *FieldError {
	fe := &FieldError{File: name}
	var pe toml.ParseError
	if errors.As(err, &pe) {
		fe.Line = pe.Position.Line
		fe.Msg = pe.Message
		// LastKey is only the last key toml parsed; name it only when the
		// error is on that key's line (a type error), not for a syntax
		// error further down.
		if kl := c.line(pe.LastKey); pe.LastKey != "" && (fe.Line == 0 || kl == fe.Line) {
			fe.Key = pe.LastKey
			if fe.Line == 0 {
				fe.Line = kl
			}
		}
		return fe
	}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "toml: ")
	if m := lineRe.FindStringSubmatch(msg); m != nil {
		fe.Line, _ = strconv.Atoi(m[1])
	}
	if i := strings.Index(msg, "(last key \""); i >= 0 {
		rest := msg[i+len("(last key \""):]
		if j := strings.Index(rest, "\")"); j >= 0 {
			fe.Key = rest[:j]
			msg = strings.TrimSpace(strings.TrimPrefix(rest[j+2:], ":"))
		}
	}
	fe.Msg = msg
	return fe
}

// scanLines maps dotted keys to the line that sets them. It understands the
// subset of TOML a corosync.toml uses: [table], [[array]] (entries numbered
// from 0: "node.0.nodeid"), and "key = value" lines; values spanning lines
// are skipped by tracking brackets and triple quotes. It only serves error
// messages, so anything it misses merely loses the line number.
func scanLines(data []byte) map[string]int {
	lines := map[string]int{}
	table := ""
	arrays := map[string]int{}
	depth := 0
	inMulti := false
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		l := strings.TrimSpace(raw)
		if inMulti {
			if strings.Count(l, `"""`)%2 == 1 || strings.Count(l, `'''`)%2 == 1 {
				inMulti = false
			}
			continue
		}
		if depth > 0 {
			depth += strings.Count(l, "[") - strings.Count(l, "]")
			continue
		}
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "[[") {
			name := strings.TrimSpace(strings.Trim(StripComment(l), "[] "))
			idx := arrays[name]
			arrays[name] = idx + 1
			table = name + "." + strconv.Itoa(idx)
			if _, ok := lines[name]; !ok {
				lines[name] = n
			}
			lines[table] = n
			continue
		}
		if strings.HasPrefix(l, "[") {
			table = strings.TrimSpace(strings.Trim(StripComment(l), "[] "))
			lines[table] = n
			continue
		}
		eq := strings.IndexByte(l, '=')
		if eq < 0 {
			continue
		}
		key := strings.Trim(strings.TrimSpace(l[:eq]), `"'`)
		full := key
		if table != "" {
			full = table + "." + key
		}
		lines[full] = n
		val := StripComment(strings.TrimSpace(l[eq+1:]))
		depth = strings.Count(val, "[") - strings.Count(val, "]")
		if depth < 0 {
			depth = 0
		}
		if strings.Count(val, `"""`)%2 == 1 || strings.Count(val, `'''`)%2 == 1 {
			inMulti = true
		}
	}
	return lines
}

// StripComment removes a trailing # comment that is not inside quotes from
// one line of TOML (shared with crm/cibtoml's line scanner).
func StripComment(s string) string {
	inQ := byte(0)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case inQ != 0:
			if ch == '\\' && inQ == '"' {
				i++
			} else if ch == inQ {
				inQ = 0
			}
		case ch == '"' || ch == '\'':
			inQ = ch
		case ch == '#':
			return strings.TrimSpace(s[:i])
		}
	}
	return s
}
