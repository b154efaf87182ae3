package pengine

import (
	"strconv"
	"strings"

	"ringmaster/crm/cib"
)

// evalRule is pe_eval_subexpr for rules made of node-attribute expressions
// and nested rules. With boolean-op "or" any passing sub-expression passes
// the rule; otherwise all must pass. An empty rule passes for "and" and
// fails for "or", as in Pacemaker.
func evalRule(r *cib.Rule, attrs map[string]string) bool {
	or := strings.EqualFold(r.BooleanOp, "or")
	passed := !or
	for _, x := range r.Expressions {
		t := evalExpression(x, attrs)
		if t && or {
			return true
		}
		if !t && !or {
			return false
		}
	}
	for _, sub := range r.Rules {
		t := evalRule(sub, attrs)
		if t && or {
			return true
		}
		if !t && !or {
			return false
		}
	}
	return passed
}

// evalExpression is pe__eval_attr_expr + accept_attr_expr.
func evalExpression(x *cib.Expression, attrs map[string]string) bool {
	var lval string
	haveL := false
	if attrs != nil {
		lval, haveL = attrs[x.Attribute]
	}
	op := lower(x.Operation)
	switch op {
	case "defined":
		return haveL
	case "not_defined":
		return !haveL
	}
	cmp := compareAttr(lval, haveL, x.Value, x.HasValue, x.Type, op)
	switch op {
	case "eq":
		return cmp == 0
	case "ne":
		return cmp != 0
	}
	if !haveL || !x.HasValue {
		return false
	}
	switch op {
	case "lt":
		return cmp < 0
	case "lte":
		return cmp <= 0
	case "gt":
		return cmp > 0
	case "gte":
		return cmp >= 0
	}
	return false
}

// compareAttr is compare_attr_expr_vals. Without an explicit type,
// ordering operators compare numerically (as "number" when either side
// has a '.', else "integer") and eq/ne compare as case-insensitive strings.
// A side that does not parse as the requested type falls back to a string
// comparison.
func compareAttr(l string, haveL bool, r string, haveR bool, typ, op string) int {
	switch {
	case !haveL && !haveR:
		return 0
	case !haveR:
		return 1
	case !haveL:
		return -1
	}
	t := lower(typ)
	if t == "" {
		switch op {
		case "lt", "lte", "gt", "gte":
			if strings.Contains(l, ".") || strings.Contains(r, ".") {
				t = "number"
			} else {
				t = "integer"
			}
		default:
			t = "string"
		}
	}
	switch t {
	case "integer":
		a, ok1 := scanInt(l)
		b, ok2 := scanInt(r)
		if ok1 && ok2 {
			return cmpInt64(a, b)
		}
	case "number":
		a, ok1 := scanFloat(l)
		b, ok2 := scanFloat(r)
		if ok1 && ok2 {
			switch {
			case a < b:
				return -1
			case a > b:
				return 1
			}
			return 0
		}
	case "version":
		return compareVersion(l, r)
	}
	return strings.Compare(lower(l), lower(r))
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// scanInt is pcmk__scan_ll: a leading integer, trailing text ignored; it
// fails only when there are no digits at all.
func scanInt(s string) (int64, bool) {
	t := strings.TrimLeft(s, " \t\n\r\f\v")
	end := 0
	if end < len(t) && (t[end] == '-' || t[end] == '+') {
		end++
	}
	start := end
	for end < len(t) && isDigit(t[end]) {
		end++
	}
	if end == start {
		return 0, false
	}
	v, err := strconv.ParseInt(t[:end], 10, 64)
	if err != nil {
		if t[0] == '-' {
			return -1 << 63, true
		}
		return 1<<63 - 1, true
	}
	return v, true
}

// scanFloat is pcmk__scan_double: strtod semantics (leading number,
// trailing text ignored).
func scanFloat(s string) (float64, bool) {
	t := strings.TrimLeft(s, " \t\n\r\f\v")
	end := 0
	if end < len(t) && (t[end] == '-' || t[end] == '+') {
		end++
	}
	digits := 0
	for end < len(t) && isDigit(t[end]) {
		end++
		digits++
	}
	if end < len(t) && t[end] == '.' {
		end++
		for end < len(t) && isDigit(t[end]) {
			end++
			digits++
		}
	}
	if digits == 0 {
		return 0, false
	}
	if end < len(t) && (t[end] == 'e' || t[end] == 'E') {
		e := end + 1
		if e < len(t) && (t[e] == '-' || t[e] == '+') {
			e++
		}
		if e < len(t) && isDigit(t[e]) {
			for e < len(t) && isDigit(t[e]) {
				e++
			}
			end = e
		}
	}
	v, err := strconv.ParseFloat(t[:end], 64)
	if err != nil {
		return 0, false
	}
	return v, true
}
