package cibtoml

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"ringmaster/config"
)

// Parse decodes a resources.toml (named name in errors) and checks it
// completely, including everything Build checks. The error, if any, is a
// config.Errors listing every problem with its FILE:LINE and key.
func Parse(name string, data []byte) (*Model, error) {
	lines := scanLines(data)
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, config.Errors{decodeError(name, err)}
	}
	var errs config.Errors
	checkKeys(raw, reflect.TypeOf(Model{}), "", func(path, msg string) {
		errs = append(errs, &config.FieldError{File: name, Line: lookup(lines, path), Key: display(path), Msg: msg})
	})
	if len(errs) > 0 {
		return nil, errs
	}
	m := &Model{}
	if _, err := toml.Decode(string(data), m); err != nil {
		return nil, config.Errors{decodeError(name, err)}
	}
	m.file, m.lines = name, lines
	if _, err := m.Build(); err != nil {
		return nil, err
	}
	return m, nil
}

var lineRe = regexp.MustCompile(`line (\d+)`)

// decodeError turns a toml error (syntax or a wrong type) into a
// FieldError with the line and, when toml names it, the key.
func decodeError(name string, err error) *config.FieldError {
	fe := &config.FieldError{File: name}
	var pe toml.ParseError
	if errors.As(err, &pe) {
		fe.Line, fe.Msg = pe.Position.Line, pe.Message
		if pe.LastKey != "" {
			fe.Key = pe.LastKey
		}
		return fe
	}
	msg := strings.TrimPrefix(err.Error(), "toml: ")
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

// checkKeys walks the generic decode of the file against the model's
// types and reports every key the model does not have, with its full path
// ("resource.2.op.0.intervall").
func checkKeys(v any, t reflect.Type, path string, report func(path, msg string)) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeOf(Value{}) {
			switch v.(type) {
			case string, int64, float64, bool:
			default:
				report(path, fmt.Sprintf("must be a string, number or boolean, not %s", tomlKind(v)))
			}
			return
		}
		m, ok := v.(map[string]any)
		if !ok {
			report(path, fmt.Sprintf("must be a table, not %s", tomlKind(v)))
			return
		}
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			if tag := t.Field(i).Tag.Get("toml"); tag != "" {
				fields[tag] = t.Field(i).Type
			}
		}
		for _, k := range sortedKeys(m) {
			ft, ok := fields[k]
			if !ok {
				report(join(path, k), "unknown key")
				continue
			}
			checkKeys(m[k], ft, join(path, k), report)
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			report(path, fmt.Sprintf("must be a table, not %s", tomlKind(v)))
			return
		}
		for _, k := range sortedKeys(m) {
			checkKeys(m[k], t.Elem(), join(path, k), report)
		}
	case reflect.Slice:
		var items []any
		switch s := v.(type) {
		case []map[string]any:
			for _, x := range s {
				items = append(items, x)
			}
		case []any:
			items = s
		default:
			report(path, fmt.Sprintf("must be an array, not %s", tomlKind(v)))
			return
		}
		for i, x := range items {
			checkKeys(x, t.Elem(), join(path, strconv.Itoa(i)), report)
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			report(path, fmt.Sprintf("must be a string, not %s", tomlKind(v)))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			report(path, fmt.Sprintf("must be a boolean, not %s", tomlKind(v)))
		}
	}
}

func tomlKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a table"
	case []any, []map[string]any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64, float64:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// display renders an internal path ("resource.2.op.0.name") for people:
// resource[2].op[0].name.
func display(path string) string {
	parts := strings.Split(path, ".")
	var b strings.Builder
	for i, p := range parts {
		if _, err := strconv.Atoi(p); err == nil && i > 0 {
			b.WriteString("[" + p + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// lookup finds the line of path, or of its nearest ancestor the scanner
// saw (keys inside an inline table share the table's line).
func lookup(lines map[string]int, path string) int {
	for p := path; p != ""; {
		if l, ok := lines[p]; ok {
			return l
		}
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// scanLines maps internal key paths to the line that sets them. It knows
// [table], [[array]] (entries numbered from 0, nested ones such as
// [[resource.op]] under the current entry), dotted keys and "key = value"
// lines; values spanning lines are skipped. It only serves error
// messages: anything it misses merely loses the line number.
func scanLines(data []byte) map[string]int {
	lines := map[string]int{}
	arrays := map[string]int{} // resolved array path -> entries so far
	resolve := func(name string) string {
		out := ""
		for _, part := range strings.Split(name, ".") {
			out = join(out, strings.Trim(strings.TrimSpace(part), `"'`))
			if n, ok := arrays[out]; ok {
				out = join(out, strconv.Itoa(n-1))
			}
		}
		return out
	}
	table, depth, inMulti := "", 0, false
	for i, rawLine := range strings.Split(string(data), "\n") {
		n := i + 1
		l := strings.TrimSpace(rawLine)
		if inMulti {
			if strings.Count(l, `"""`)%2 == 1 || strings.Count(l, `'''`)%2 == 1 {
				inMulti = false
			}
			continue
		}
		if depth > 0 {
			depth += strings.Count(l, "[") + strings.Count(l, "{") - strings.Count(l, "]") - strings.Count(l, "}")
			continue
		}
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "[[") {
			name := strings.TrimSpace(strings.Trim(config.StripComment(l), "[] "))
			parent := ""
			if i := strings.LastIndexByte(name, '.'); i >= 0 {
				parent = resolve(name[:i]) + "."
				name = name[i+1:]
			}
			key := parent + name
			arrays[key]++
			table = join(key, strconv.Itoa(arrays[key]-1))
			if _, ok := lines[key]; !ok {
				lines[key] = n
			}
			lines[table] = n
			continue
		}
		if strings.HasPrefix(l, "[") {
			table = resolve(strings.TrimSpace(strings.Trim(config.StripComment(l), "[] ")))
			lines[table] = n
			continue
		}
		eq := strings.IndexByte(l, '=')
		if eq < 0 {
			continue
		}
		key := strings.TrimSpace(l[:eq])
		var parts []string
		for _, p := range strings.Split(key, ".") {
			parts = append(parts, strings.Trim(strings.TrimSpace(p), `"'`))
		}
		full := join(table, strings.Join(parts, "."))
		lines[full] = n
		val := config.StripComment(strings.TrimSpace(l[eq+1:]))
		depth = strings.Count(val, "[") + strings.Count(val, "{") - strings.Count(val, "]") - strings.Count(val, "}")
		if depth < 0 {
			depth = 0
		}
		// An array of inline tables written one per line: number them.
		if depth > 0 && strings.HasSuffix(val, "[") {
			scanInlineArray(strings.Split(string(data), "\n")[i+1:], n+1, full, lines)
		}
		if strings.Count(val, `"""`)%2 == 1 || strings.Count(val, `'''`)%2 == 1 {
			inMulti = true
		}
	}
	return lines
}

// scanInlineArray records the line of each "{ ... }" element of a
// multi-line array (ops = [ {...}, {...} ]) as path.N.
func scanInlineArray(rest []string, first int, path string, lines map[string]int) {
	idx := 0
	for j, l := range rest {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "]") {
			return
		}
		if strings.HasPrefix(l, "{") {
			lines[join(path, strconv.Itoa(idx))] = first + j
			idx++
		}
	}
}
