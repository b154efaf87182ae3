package pengine

import (
	"strconv"
	"strings"
)

// Infinity is Pacemaker's INFINITY score. Scores saturate at ±Infinity.
const Infinity = 1000000

// AddScores adds two scores with Pacemaker's saturating arithmetic:
// -INFINITY wins over +INFINITY (a ban beats a preference), and any sum
// beyond ±INFINITY is clamped.
func AddScores(a, b int) int {
	if a <= -Infinity || b <= -Infinity {
		return -Infinity
	}
	if a >= Infinity || b >= Infinity {
		return Infinity
	}
	s := a + b
	if s > Infinity {
		return Infinity
	}
	if s < -Infinity {
		return -Infinity
	}
	return s
}

// ParseScore is char2score: "INFINITY"/"+INFINITY", "-INFINITY", the
// health colours, or an integer (clamped); anything unparsable is 0.
func ParseScore(s string) int {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "":
		return 0
	case "infinity", "+infinity":
		return Infinity
	case "-infinity":
		return -Infinity
	case "red":
		return -Infinity
	case "yellow", "green":
		return 0
	}
	// strtol semantics: leading integer, trailing garbage ignored.
	end := 0
	if end < len(s) && (s[end] == '-' || s[end] == '+') {
		end++
	}
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	v, err := strconv.ParseInt(s[:end], 10, 64)
	if err != nil {
		return 0
	}
	if v > Infinity {
		return Infinity
	}
	if v < -Infinity {
		return -Infinity
	}
	return int(v)
}

// FormatScore renders a score the way crm_simulate prints it.
func FormatScore(v int) string {
	switch {
	case v >= Infinity:
		return "INFINITY"
	case v <= -Infinity:
		return "-INFINITY"
	}
	return strconv.Itoa(v)
}

// parseMS is crm_get_msec: a number with an optional unit (ms, us, s, m, h;
// default seconds). It returns -1 when the text is not a duration.
func parseMS(s string) int64 {
	t := strings.TrimLeft(s, " \t\n\r")
	n := 0
	for n < len(t) && (t[n] >= '0' && t[n] <= '9' || t[n] == '.') {
		n++
	}
	if n == 0 {
		return -1
	}
	num := t[:n]
	units := strings.TrimLeft(t[n:], " \t\n\r")
	mult, div := int64(1000), int64(1)
	lu := strings.ToLower(units)
	switch {
	case strings.HasPrefix(lu, "ms"), strings.HasPrefix(lu, "msec"):
		mult = 1
	case strings.HasPrefix(lu, "us"), strings.HasPrefix(lu, "usec"):
		mult, div = 1, 1000
	case strings.HasPrefix(lu, "s"):
	case strings.HasPrefix(lu, "m"):
		mult = 60 * 1000
	case strings.HasPrefix(lu, "h"):
		mult = 60 * 60 * 1000
	case lu == "" || lu[0] == '\n' || lu[0] == '\r':
	default:
		return -1
	}
	if i := strings.IndexByte(num, '.'); i >= 0 {
		num = num[:i]
		if num == "" {
			num = "0"
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return -1
	}
	return v * mult / div
}

// parseInterval is crm_parse_interval_spec: an ISO 8601 duration
// ("P1DT2H", "PT30S") or a crm_get_msec value; 0 on error.
func parseInterval(s string) int64 {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0
	}
	if s[0] == 'P' {
		return parseISODuration(s)
	}
	v := parseMS(s)
	if v < 0 {
		return 0
	}
	return v
}

func parseISODuration(s string) int64 {
	var total int64
	inTime := false
	num := ""
	for _, r := range s[1:] {
		switch {
		case r == 'T':
			inTime = true
		case r >= '0' && r <= '9':
			num += string(r)
		default:
			v, err := strconv.ParseInt(num, 10, 64)
			if err != nil {
				return 0
			}
			num = ""
			switch {
			case r == 'Y':
				total += v * 365 * 86400
			case r == 'M' && !inTime:
				total += v * 30 * 86400
			case r == 'W':
				total += v * 7 * 86400
			case r == 'D':
				total += v * 86400
			case r == 'H':
				total += v * 3600
			case r == 'M':
				total += v * 60
			case r == 'S':
				total += v
			default:
				return 0
			}
		}
	}
	return total * 1000
}
