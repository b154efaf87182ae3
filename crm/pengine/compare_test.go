package pengine_test

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// Summary is the comparable content of crm_simulate -S text: what the
// shared scorer (check.py) looks at. Column padding, "due to" reasons,
// pseudo actions and action order do not matter.
type Summary struct {
	// Transition holds the "Transition Summary:" items, each rendered as a
	// canonical string (verb, resource, from, to, blocked; or fence, node,
	// action).
	Transition map[string]bool
	// Actions is the sorted multiset of executed actions ("rsc op node",
	// "fence node action", "cluster ..."), pseudo actions left out.
	Actions []string
	// Final maps each resource to its state in "Revised Cluster Status:".
	Final map[string]string
}

// Levels of comparison, each stricter than the one before.
const (
	LevelTransition = "transition"
	LevelActions    = "actions"
	LevelFinal      = "final"
)

var (
	reRscItem   = regexp.MustCompile(`^  \* (Start|Stop|Move|Recover|Restart|Migrate|Reload|Promote|Demote|Re-promote)\s+(\S+)\s+\(\s*(.*?)\s*\)(?:\s+due to (.*?))?(\s+\(blocked\)|\s+blocked)?\s*$`)
	reFenceItem = regexp.MustCompile(`^  \* Fence \((\w+)\) (\S+)(?: \(resource: (\S+)\))? '(.*)'\s*$`)
	reRscAction = regexp.MustCompile(`^  \* Resource action: (\S+)\s+(\S+) on (\S+)\s*$`)
	rePseudo    = regexp.MustCompile(`^  \* Pseudo action:\s+(\S+(?: on \S+)?)\s*$`)
	reCluster   = regexp.MustCompile(`^  \* Cluster action:\s+(.*?)\s*$`)
	reFencing   = regexp.MustCompile(`^  \* Fencing (\S+) \((\w+)\)\s*$`)
	reRsc       = regexp.MustCompile(`^\s+\* (\S+)\t\((.*?)\):\t (.*?)\s*$`)
	reSpaces    = regexp.MustCompile(`\s+`)
)

var roles = map[string]bool{"Started": true, "Stopped": true, "Promoted": true, "Unpromoted": true, "Slave": true, "Master": true, "Unknown": true}

// parseLoc splits "node", "n1 -> n2" or role-qualified forms into the
// origin and destination nodes.
func parseLoc(text string) (from, to string) {
	toks := strings.Fields(text)
	for i, t := range toks {
		if t != "->" {
			continue
		}
		left, right := toks[:i], toks[i+1:]
		roleFrom := len(left) > 0 && roles[left[0]]
		if roleFrom {
			left = left[1:]
		}
		if len(right) > 0 && roles[right[0]] {
			right = right[1:]
		}
		if len(left) > 0 {
			from = left[0]
		}
		if len(right) > 0 {
			to = right[0]
		}
		if from == "" && roleFrom {
			from = to
		}
		return from, to
	}
	if len(toks) > 0 && roles[toks[0]] {
		toks = toks[1:]
	}
	if len(toks) > 0 {
		from, to = toks[0], toks[0]
	}
	return from, to
}

// parseSummary extracts the comparable parts of crm_simulate -S output.
func parseSummary(text string) *Summary {
	s := &Summary{Transition: map[string]bool{}, Final: map[string]string{}}
	section := ""
	for _, line := range strings.Split(text, "\n") {
		switch line {
		case "Current cluster status:":
			section = "before"
			continue
		case "Transition Summary:":
			section = "transition"
			continue
		case "Executing Cluster Transition:":
			section = "actions"
			continue
		case "Revised Cluster Status:":
			section = "after"
			continue
		}
		switch section {
		case "transition":
			if m := reRscItem.FindStringSubmatch(line); m != nil {
				verb := strings.ToLower(m[1])
				from, to := parseLoc(m[3])
				switch verb {
				case "start":
					from = ""
				case "stop":
					to = ""
				}
				s.Transition[fmt.Sprintf("%s %s %s -> %s blocked=%v", verb, m[2], from, to, m[5] != "")] = true
			} else if m := reFenceItem.FindStringSubmatch(line); m != nil {
				s.Transition[fmt.Sprintf("fence %s %s", m[2], m[1])] = true
			}
		case "actions":
			switch {
			case reRscAction.MatchString(line):
				m := reRscAction.FindStringSubmatch(line)
				s.Actions = append(s.Actions, m[1]+" "+m[2]+" "+m[3])
			case rePseudo.MatchString(line):
			case reCluster.MatchString(line):
				m := reCluster.FindStringSubmatch(line)
				s.Actions = append(s.Actions, "cluster "+reSpaces.ReplaceAllString(m[1], " "))
			case reFencing.MatchString(line):
				m := reFencing.FindStringSubmatch(line)
				s.Actions = append(s.Actions, "fence "+m[1]+" "+m[2])
			}
		case "after":
			if strings.HasPrefix(line, "    * Resource Group: ") {
				continue
			}
			if m := reRsc.FindStringSubmatch(line); m != nil {
				s.Final[m[1]] = reSpaces.ReplaceAllString(m[3], " ")
			}
		}
	}
	sort.Strings(s.Actions)
	return s
}

// compareSummaries returns the first level at which got differs from want ("" when
// they agree at every level) and a short explanation, with check.py's
// semantics.
func compareSummaries(got, want *Summary) (level, why string) {
	var missing, extra []string
	for k := range want.Transition {
		if !got.Transition[k] {
			missing = append(missing, k)
		}
	}
	for k := range got.Transition {
		if !want.Transition[k] {
			extra = append(extra, k)
		}
	}
	if len(missing)+len(extra) > 0 {
		sort.Strings(missing)
		sort.Strings(extra)
		return LevelTransition, fmt.Sprintf("missing %q extra %q", missing, extra)
	}
	if strings.Join(got.Actions, "\n") != strings.Join(want.Actions, "\n") {
		return LevelActions, fmt.Sprintf("missing %q extra %q", multisetMinus(want.Actions, got.Actions), multisetMinus(got.Actions, want.Actions))
	}
	var diffs []string
	for k, v := range want.Final {
		if g, ok := got.Final[k]; !ok || g != v {
			diffs = append(diffs, fmt.Sprintf("%s: got %q want %q", k, g, v))
		}
	}
	for k := range got.Final {
		if _, ok := want.Final[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: unexpected", k))
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		return LevelFinal, strings.Join(diffs, "; ")
	}
	return "", ""
}

func multisetMinus(a, b []string) []string {
	left := map[string]int{}
	for _, x := range b {
		left[x]++
	}
	var out []string
	for _, x := range a {
		if left[x] > 0 {
			left[x]--
			continue
		}
		out = append(out, x)
	}
	return out
}

const summaryText = `Current cluster status:
  * Node List:
    * Online: [ n1 n2 ]

  * Full List of Resources:
    * a	(ocf:heartbeat:Dummy):	 Started n1

Transition Summary:
  * Fence (reboot) n3 'peer is no longer part of the cluster'
  * Move       a       ( n1 -> n2 )
  * Stop       b       (       n1 )  due to node availability (blocked)

Executing Cluster Transition:
  * Pseudo action:   g_stop_0
  * Resource action: a               stop on n1
  * Fencing n3 (reboot)
  * Resource action: a               start on n2
  * Cluster action:  do_shutdown on n1

Revised Cluster Status:
  * Node List:
    * Online: [ n1 n2 ]

  * Full List of Resources:
    * Resource Group: g:
      * a	(ocf:heartbeat:Dummy):	 Started n2
`

func TestParseSummaryAndCompare(t *testing.T) {
	s := parseSummary(summaryText)
	for _, k := range []string{"fence n3 reboot", "move a n1 -> n2 blocked=false", "stop b n1 ->  blocked=true"} {
		if !s.Transition[k] {
			t.Errorf("missing transition item %q in %v", k, s.Transition)
		}
	}
	if got := strings.Join(s.Actions, "|"); got != "a start n2|a stop n1|cluster do_shutdown on n1|fence n3 reboot" {
		t.Errorf("actions: %s", got)
	}
	if s.Final["a"] != "Started n2" {
		t.Errorf("final: %v", s.Final)
	}
	// Padding, reasons and action order do not matter.
	other := strings.NewReplacer("( n1 -> n2 )", "(n1 -> n2)", "  due to node availability", "").Replace(summaryText)
	if level, why := compareSummaries(parseSummary(other), s); level != "" {
		t.Errorf("reformatted summary differs: %s %s", level, why)
	}
	moved := strings.Replace(summaryText, "Started n2\n", "Started n1\n", 1)
	if level, _ := compareSummaries(parseSummary(moved), s); level != LevelFinal {
		t.Errorf("changed placement: level %q, want final", level)
	}
}
