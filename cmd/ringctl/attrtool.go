package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"ringmaster/crm/cib"
	"ringmaster/crm/cibedit"
)

// ringctl installed (linked) as crm_attribute, crm_master or attrd_updater
// answers the resource agents that call these Pacemaker tools (through
// HA_SBIN_DIR). main dispatches on argv[0] to runAttrTool, which parses the
// options the agents use and turns them into a cibedit edit or query.
//
// Until ringd carries the resource manager, the CIB is a file named by
// RINGMASTER_CIB_FILE (or --cib FILE): the test hook. Without one the tools
// exit 102 (Pacemaker's "not connected").
//
// Exit codes are Pacemaker's: 0 done, 64 usage, 102 not connected, 105 no
// such attribute (a query with nothing set and no -d default), 1 other.
const (
	exitUsage        = 64
	exitNotConnected = 102
	exitNoSuch       = 105
)

// attrEnv is what the tools read from their environment.
type attrEnv struct {
	getenv func(string) string
	cib    string // the --cib default (RINGMASTER_CIB_FILE)
	socket string // ringd's IPC socket (RINGMASTER_SOCKET)
}

// attrToolNames are the argv[0] names main dispatches to runAttrTool.
var attrToolNames = map[string]bool{"crm_attribute": true, "crm_master": true, "attrd_updater": true}

// attrRequest is one parsed invocation.
type attrRequest struct {
	attr    cibedit.Attr
	op      byte // 'G' query, 'v' update, 'D' delete
	value   string
	quiet   bool
	def     string
	hasDef  bool
	cibFile string
	socket  string
	tool    string
}

// localNode is the node a tool acts on without -N: the node the agent runs
// for (OCF_RESKEY_CRM_meta_on_node, set by the executor), else this host.
func localNode(env attrEnv) string {
	if n := env.getenv("OCF_RESKEY_CRM_meta_on_node"); n != "" {
		return n
	}
	h, _ := os.Hostname()
	return h
}

func runAttrTool(tool string, args []string, env attrEnv, stdout, stderr io.Writer) int {
	req, err := parseAttrTool(tool, args, env)
	if err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "%s: %v\n", tool, err)
		return exitUsage
	}
	return req.run(stdout, stderr)
}

func parseAttrTool(tool string, args []string, env attrEnv) (*attrRequest, error) {
	fs := pflag.NewFlagSet(tool, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		name, update, node, lifetime, typ, setName, promotion, rsc, def, cibFile string
		query, del, quiet, util, verbose, both, refresh, private, all            bool
		delay, id                                                                string
	)
	fs.StringVar(&cibFile, "cib", env.cib, "CIB file to edit (test hook; env "+cibFileEnv+")")
	fs.BoolVarP(&quiet, "quiet", "q", false, "print only the value")
	fs.CountP("verbose", "V", "more output")
	_ = verbose
	switch tool {
	case "crm_attribute", "crm_master":
		fs.StringVarP(&name, "name", "n", "", "attribute name")
		fs.StringVarP(&update, "update", "v", "", "set the value")
		fs.StringVar(&update, "attr-value", "", "deprecated --update")
		fs.BoolVarP(&query, "query", "G", false, "print the value")
		fs.BoolVar(&query, "get-value", false, "deprecated --query")
		fs.BoolVarP(&del, "delete", "D", false, "delete the attribute")
		fs.BoolVar(&del, "delete-attr", false, "deprecated --delete")
		fs.StringVarP(&node, "node", "N", "", "node attribute of NODE")
		fs.StringVarP(&node, "uname", "U", "", "deprecated --node")
		fs.StringVarP(&lifetime, "lifetime", "l", "", "reboot or forever")
		fs.StringVarP(&typ, "type", "t", "", "crm_config, rsc_defaults, op_defaults, nodes, status")
		fs.BoolVarP(&util, "utilization", "z", false, "node utilization attribute")
		fs.StringVarP(&setName, "set-name", "s", "", "attribute set id")
		fs.StringVarP(&id, "id", "i", "", "attribute id (ignored: ids are generated)")
		fs.StringVarP(&def, "default", "d", "", "value to print when unset")
		fs.StringVarP(&promotion, "promotion", "p", "", "promotion score of RSC (default OCF_RESOURCE_INSTANCE)")
		fs.Lookup("promotion").NoOptDefVal = "\x00"
		fs.StringVarP(&rsc, "resource", "r", "", "crm_master: the resource (default OCF_RESOURCE_INSTANCE)")
		fs.BoolP("Q", "Q", false, "deprecated --quiet")
		fs.StringP("pattern", "P", "", "attributes matching a pattern (not supported)")
	case "attrd_updater":
		fs.StringVarP(&name, "name", "n", "", "attribute name")
		fs.StringVarP(&update, "update", "U", "", "set the value")
		fs.StringVarP(&update, "value", "v", "", "set the value")
		fs.BoolVarP(&both, "update-both", "B", false, "set value and delay")
		fs.BoolP("update-delay", "Y", false, "change only the delay")
		fs.BoolVarP(&query, "query", "Q", false, "print the value")
		fs.BoolVarP(&del, "delete", "D", false, "delete the attribute")
		fs.BoolVarP(&refresh, "refresh", "R", false, "resend all attributes (nothing to do)")
		fs.StringVarP(&node, "node", "N", "", "the node (default this one)")
		fs.BoolVarP(&all, "all", "A", false, "query every node")
		fs.StringVarP(&delay, "delay", "d", "", "dampening delay (the CIB is written at once)")
		fs.StringVarP(&setName, "set", "s", "", "attribute set id")
		fs.BoolVarP(&private, "private", "p", false, "do not write to the CIB")
		fs.StringVarP(&lifetime, "lifetime", "l", "reboot", "only reboot")
		fs.BoolVarP(&util, "utilization", "z", false, "not supported")
		fs.StringP("pattern", "P", "", "not supported")
	default:
		return nil, fmt.Errorf("unknown tool %q", tool)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if fs.Changed("pattern") {
		return nil, fmt.Errorf("-P/--pattern is not supported")
	}
	if fs.Changed("Q") {
		quiet = true
	}
	req := &attrRequest{cibFile: cibFile, socket: env.socket, tool: tool, def: def, hasDef: fs.Changed("default"), quiet: quiet}
	switch {
	case del:
		req.op = 'D'
	case fs.Changed("update") || fs.Changed("value") || fs.Changed("attr-value"):
		req.op, req.value = 'v', update
	case query || tool == "crm_attribute" || tool == "crm_master":
		// crm_attribute without a command queries.
		req.op = 'G'
	default:
		if fs.Changed("update-delay") {
			// Only the dampening delay changes: the CIB is written at
			// once anyway, so there is nothing to do.
			req.op = 'P'
			return req, nil
		}
		if refresh {
			req.op = 'R'
			return req, nil
		}
		return nil, fmt.Errorf("one of -U/--update, -Q/--query, -D/--delete is required")
	}
	a := cibedit.Attr{Name: name, Node: node, SetID: setName, Utilization: util}
	switch tool {
	case "attrd_updater":
		// attrd attributes are transient node attributes.
		if lifetime != "reboot" {
			return nil, fmt.Errorf("attrd_updater attributes live until reboot (-l %s)", lifetime)
		}
		if util {
			return nil, fmt.Errorf("-z/--utilization is not supported")
		}
		if private && req.op != 'G' {
			// Private attributes never reach the CIB: nothing to store.
			req.op = 'P'
		}
		if all {
			return nil, fmt.Errorf("-A/--all is not supported")
		}
		a.Lifetime = cibedit.Reboot
		if a.Node == "" {
			a.Node = localNode(env)
		}
	case "crm_master":
		// The script: crm_attribute -n master-RSC --lifetime forever "$@".
		if rsc == "" {
			rsc = env.getenv("OCF_RESOURCE_INSTANCE")
		}
		if rsc == "" {
			return nil, fmt.Errorf("no resource specified (-r or OCF_RESOURCE_INSTANCE)")
		}
		a.Name = cibedit.PromotionName(rsc)
		if lifetime == "" {
			lifetime = "forever"
		}
		fallthrough
	case "crm_attribute":
		if fs.Changed("promotion") {
			if promotion == "\x00" {
				promotion = env.getenv("OCF_RESOURCE_INSTANCE")
			}
			if promotion == "" {
				return nil, fmt.Errorf("--promotion needs a resource (or OCF_RESOURCE_INSTANCE)")
			}
			a.Name = cibedit.PromotionName(promotion)
			if lifetime == "" && typ == "" {
				lifetime = "reboot"
			}
		}
		// Where the attribute lives: -t wins, then -l, then a node
		// attribute when -N is given, else a cluster option.
		switch typ {
		case "", "nodes", "status", "forever", "reboot":
			if typ != "" {
				lifetime = typ
			}
			if lifetime != "" {
				lt, err := cibedit.ParseLifetime(lifetime)
				if err != nil {
					return nil, err
				}
				a.Lifetime = lt
				if a.Node == "" {
					a.Node = localNode(env)
				}
			}
		case "crm_config", "rsc_defaults", "op_defaults":
			if a.Node != "" {
				return nil, fmt.Errorf("-N/--node with -t %s", typ)
			}
			a.Section = typ
		default:
			return nil, fmt.Errorf("-t/--type %q is not supported (crm_config, rsc_defaults, op_defaults, nodes, status)", typ)
		}
		if a.Utilization {
			if a.Node == "" {
				a.Node = localNode(env)
			}
			a.Lifetime = cibedit.Forever
		}
	}
	if a.Name == "" {
		return nil, fmt.Errorf("-n/--name is required")
	}
	req.attr = a
	return req, nil
}

func (r *attrRequest) run(stdout, stderr io.Writer) int {
	if r.op == 'R' || r.op == 'P' {
		return 0
	}
	st, err := openCIBStore(r.socket, r.cibFile)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", r.tool, err)
		return exitNotConnected
	}
	switch r.op {
	case 'G':
		var c *cib.CIB
		if c, err = st.Load(); err != nil {
			break
		}
		var v string
		v, err = cibedit.GetAttr(c, r.attr)
		if errors.Is(err, cibedit.ErrNoAttr) && r.hasDef {
			v, err = r.def, nil
		}
		if err == nil {
			r.print(stdout, v)
			return 0
		}
	case 'v', 'D':
		ss, viaController := st.(statusStore)
		switch {
		case viaController && r.attr.Node != "" && r.attr.Lifetime == cibedit.Reboot && !r.attr.Utilization:
			err = ss.SetTransient(r.attr, r.value, r.op == 'D')
		case r.op == 'v':
			err = st.Update(func(c *cib.CIB) (*cib.CIB, error) { return cibedit.SetAttr(c, r.attr, r.value) })
		default:
			err = st.Update(func(c *cib.CIB) (*cib.CIB, error) { return cibedit.DelAttr(c, r.attr) })
		}
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, cibedit.ErrNoAttr):
		if !r.quiet {
			fmt.Fprintf(stderr, "%s: %v\n", r.tool, err)
		}
		return exitNoSuch
	case errors.Is(err, cibedit.ErrUsage):
		fmt.Fprintf(stderr, "%s: %v\n", r.tool, err)
		return exitUsage
	case errors.Is(err, cibedit.ErrNoNode):
		fmt.Fprintf(stderr, "%s: %v\n", r.tool, err)
		return exitNoSuch
	case notConnected(err):
		fmt.Fprintf(stderr, "%s: %v\n", r.tool, err)
		return exitNotConnected
	}
	fmt.Fprintf(stderr, "%s: %v\n", r.tool, err)
	return 1
}

// print writes a query result the way each tool does.
func (r *attrRequest) print(w io.Writer, v string) {
	switch {
	case r.quiet:
		fmt.Fprintln(w, v)
	case r.tool == "attrd_updater":
		fmt.Fprintf(w, "name=%q host=%q value=%q\n", r.attr.Name, r.attr.Node, v)
	default:
		scope := "crm_config"
		switch {
		case r.attr.Node != "" && r.attr.Lifetime == cibedit.Reboot:
			scope = "status"
		case r.attr.Node != "":
			scope = "nodes"
		case r.attr.Section != "":
			scope = r.attr.Section
		}
		fmt.Fprintf(w, "scope=%s  name=%s value=%s\n", scope, r.attr.Name, strings.TrimSpace(v))
	}
}
