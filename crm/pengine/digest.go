package pengine

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"ringmaster/crm/cib"
)

type digestRC int

const (
	digestMatch digestRC = iota
	digestAll
	digestRestart
	digestUnknown
)

type digestResult struct {
	rc          digestRC
	allCalc     string
	restartCalc string
}

// opDigestParams returns the parameters that an operation's digest covers:
// the resource's instance attributes for the node, the op's own instance
// attributes, and, for recurring operations only, CRM_meta_timeout (so that a
// changed monitor timeout reschedules the monitor).
func (s *scheduler) opDigestParams(r *resource, task string, intervalMS int, n *node) map[string]string {
	params := s.rscParams(r, n)
	a := s.customAction(r, opKey(r.id, task, intervalMS), task, n, true, false)
	if a.opEntry != nil {
		extra := map[string]string{}
		var attrs map[string]string
		if n != nil {
			attrs = n.attrs
		}
		s.evalNVSets(a.opEntry.Instance, "", attrs, extra, false)
		for k, v := range extra {
			params[k] = v
		}
	}
	for _, k := range []string{"id", "crm_feature_set", "op-digest", "on_node", "on_node_uuid", "pcmk_external_ip"} {
		delete(params, k)
	}
	for k := range params {
		if strings.HasPrefix(k, "CRM_meta_") {
			delete(params, k)
		}
	}
	if intervalMS > 0 {
		params["CRM_meta_timeout"] = a.meta["timeout"]
	}
	return params
}

// Digest is Pacemaker's operation digest: the MD5 of the parameters
// rendered as a <parameters/> element with attributes sorted by name,
// preceded by a space and followed by a newline (the historical v1 format).
func Digest(params map[string]string) string {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(" <parameters")
	for _, k := range names {
		fmt.Fprintf(&b, " %s=\"%s\"", k, digestEscape(params[k]))
	}
	b.WriteString("/>\n")
	sum := md5.Sum([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

// digestEscape is crm_xml_escape, which the digest text uses.
func digestEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		case '\'':
			b.WriteString("&apos;")
		case '&':
			b.WriteString("&amp;")
		case '\t':
			b.WriteString("    ")
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if c < ' ' || c > '~' {
				fmt.Fprintf(&b, "\\%03o", c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	return b.String()
}

// digestEntry is one entry of a node's digest cache.
type digestEntry struct {
	allCalc     string
	restartCalc string
	// haveRestart records whether the restart digest was calculated: only
	// when the history entry that filled the cache carried one.
	haveRestart bool
}

// digestCompare is rsc_action_digest_cmp for one history entry.
//
// Like Pacemaker, the calculated digests are cached per node and operation
// key, and the first history entry for a key decides whether a restart
// digest is calculated at all. This matters: an expired monitor failure
// marked for rescheduling does not force a restart when a successful entry
// for the same monitor was compared first.
func (s *scheduler) digestCompare(r *resource, op *cib.LRMOp, n *node) digestResult {
	iv := op.IntervalMS()
	restart, hasRestart := op.Attrs.Get("op-restart-digest")
	if v, ok := s.restartDigests[op]; ok {
		restart, hasRestart = v, true
	}
	key := n.name + "\x00" + opKey(r.id, op.Task(), iv)
	d := s.digestCache[key]
	if d == nil {
		params := s.opDigestParams(r, op.Task(), iv, n)
		d = &digestEntry{allCalc: Digest(params)}
		if hasRestart {
			rp := map[string]string{}
			list, filtered := op.Attrs.Get("op-force-restart")
			for k, v := range params {
				if !filtered || strings.Contains(list, " "+k+" ") {
					rp[k] = v
				}
			}
			d.restartCalc, d.haveRestart = Digest(rp), true
		}
		if s.digestCache == nil {
			s.digestCache = map[string]*digestEntry{}
		}
		s.digestCache[key] = d
	}
	res := digestResult{allCalc: d.allCalc, restartCalc: d.restartCalc}
	all, hasAll := op.Attrs.Get("op-digest")
	switch {
	case hasRestart && d.haveRestart && d.restartCalc != restart:
		res.rc = digestRestart
	case !hasAll:
		res.rc = digestUnknown
	case all != d.allCalc && !s.secureDigestMatches(r, op, n):
		res.rc = digestAll
	default:
		res.rc = digestMatch
	}
	return res
}

// actionDigest returns the digest the controller would record for an
// action's result; the simulator stores it in the fake history.
func (s *scheduler) actionDigest(a *action) string {
	if a.rsc == nil || a.node == nil {
		return ""
	}
	switch a.task {
	case taskStart, taskMonitor, taskStop, taskPromote, taskDemote, taskMigrateFrom, taskMigrateTo, taskReloadAgent:
	case taskCancel:
		// A cancellation carries the parameters of the operation it
		// cancels (the simulator records it in the history too).
		return Digest(s.opDigestParams(a.rsc, a.cancelTask, a.intervalMS, a.node))
	default:
		return ""
	}
	return Digest(s.opDigestParams(a.rsc, a.task, a.intervalMS, a.node))
}

// secureDigestMatches is the sanitized comparison crm_simulate makes (it
// runs with pe_flag_sanitized): when the recorded op-digest differs but the
// entry carries op-secure-params, the digest of the parameters without the
// secret ones (and, for fence devices, without Pacemaker's own pcmk_*
// parameters) is compared with op-secure-digest instead.
func (s *scheduler) secureDigestMatches(r *resource, op *cib.LRMOp, n *node) bool {
	list, ok := op.Attrs.Get("op-secure-params")
	want, ok2 := op.Attrs.Get("op-secure-digest")
	if !ok || !ok2 {
		return false
	}
	// Entries recorded by a controller older than feature set 3.16.0 left
	// the fencer's own parameters and the monitor timeout out of it.
	fs, _ := op.Attrs.Get("crm_feature_set")
	old := compareVersion(fs, "3.16.0") < 0
	params := s.opDigestParams(r, op.Task(), op.IntervalMS(), n)
	for k := range params {
		if strings.Contains(list, " "+k+" ") {
			delete(params, k)
		} else if old && r.cfg != nil && r.cfg.Class == "stonith" && isStonithParam(k) {
			delete(params, k)
		}
	}
	if old {
		delete(params, "CRM_meta_timeout")
	}
	return Digest(params) == want
}

// isStonithParam is pcmk_stonith_param: parameters the fencer consumes
// itself, which fence agents' metadata does not list.
func isStonithParam(p string) bool {
	switch p {
	case "provides", "stonith-timeout":
		return true
	}
	if !strings.HasPrefix(p, "pcmk_") {
		return false
	}
	switch p {
	case "pcmk_action_limit", "pcmk_delay_base", "pcmk_delay_max", "pcmk_host_argument", "pcmk_host_check", "pcmk_host_list", "pcmk_host_map":
		return true
	}
	if i := strings.IndexByte(p[5:], '_'); i >= 0 {
		switch p[5+i:] {
		case "_action", "_timeout", "_retries":
			return true
		}
	}
	return false
}
