package stonithd

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxMetadataSize bounds the meta-data XML we parse. fence_ipmilan's is
// about 20 KiB; anything past 1 MiB is not meta-data.
const MaxMetadataSize = 1 << 20

// Metadata is what a fence agent says about itself (`fence_X -o metadata`,
// or action=metadata on stdin): its parameters and actions. Only what the
// fencer acts on is kept.
type Metadata struct {
	Name      string
	ShortDesc string
	Params    []MetaParam
	Actions   []MetaAction
}

// MetaParam is one <parameter>.
type MetaParam struct {
	Name       string
	Required   bool
	Deprecated bool
	Obsoletes  string
	Type       string
	Default    string
	ShortDesc  string
}

// MetaAction is one <action>. Automatic is the "automatic" attribute of
// the on action (unfencing required); OnTarget means the action runs on
// the node being fenced (fence_kdump, sbd-style agents).
type MetaAction struct {
	Name      string
	Automatic bool
	OnTarget  bool
}

// ParseMetadata parses fence-agent meta-data XML. It rejects, never
// panics on, malformed input; unknown elements are ignored, as agents add
// their own (vendor-url, symlink).
func ParseMetadata(b []byte) (*Metadata, error) {
	if len(b) > MaxMetadataSize {
		return nil, fmt.Errorf("%w: meta-data larger than %d bytes", ErrBadMetadata, MaxMetadataSize)
	}
	var raw struct {
		XMLName   xml.Name `xml:"resource-agent"`
		Name      string   `xml:"name,attr"`
		ShortDesc string   `xml:"shortdesc,attr"`
		Params    []struct {
			Name       string `xml:"name,attr"`
			Required   string `xml:"required,attr"`
			Deprecated string `xml:"deprecated,attr"`
			Obsoletes  string `xml:"obsoletes,attr"`
			Content    struct {
				Type    string `xml:"type,attr"`
				Default string `xml:"default,attr"`
			} `xml:"content"`
			ShortDesc []struct {
				Lang string `xml:"lang,attr"`
				Text string `xml:",chardata"`
			} `xml:"shortdesc"`
		} `xml:"parameters>parameter"`
		Actions []struct {
			Name      string `xml:"name,attr"`
			Automatic string `xml:"automatic,attr"`
			OnTarget  string `xml:"on_target,attr"`
		} `xml:"actions>action"`
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty", ErrBadMetadata)
		}
		return nil, fmt.Errorf("%w: %v", ErrBadMetadata, err)
	}
	if raw.Name == "" {
		return nil, fmt.Errorf("%w: <resource-agent> has no name", ErrBadMetadata)
	}
	md := &Metadata{Name: raw.Name, ShortDesc: strings.TrimSpace(raw.ShortDesc)}
	seen := map[string]bool{}
	for _, p := range raw.Params {
		if p.Name == "" || seen[p.Name] {
			continue
		}
		seen[p.Name] = true
		mp := MetaParam{
			Name:       p.Name,
			Required:   truthy(p.Required),
			Deprecated: truthy(p.Deprecated),
			Obsoletes:  p.Obsoletes,
			Type:       p.Content.Type,
			Default:    p.Content.Default,
		}
		for _, d := range p.ShortDesc {
			if d.Lang == "" || d.Lang == "en" {
				mp.ShortDesc = strings.TrimSpace(d.Text)
				break
			}
		}
		md.Params = append(md.Params, mp)
	}
	seenA := map[string]bool{}
	for _, a := range raw.Actions {
		if a.Name == "" || seenA[a.Name] {
			continue
		}
		seenA[a.Name] = true
		md.Actions = append(md.Actions, MetaAction{Name: a.Name, Automatic: truthy(a.Automatic), OnTarget: truthy(a.OnTarget)})
	}
	return md, nil
}

func truthy(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes", "on", "y":
		return true
	}
	return false
}

// Param returns the named parameter, or nil.
func (m *Metadata) Param(name string) *MetaParam {
	if m == nil {
		return nil
	}
	for i := range m.Params {
		if m.Params[i].Name == name {
			return &m.Params[i]
		}
	}
	return nil
}

// HasAction reports whether the agent advertises the action. Agents
// advertise "reboot", "off", "on", "status", "list", "monitor"; a nil
// Metadata (not fetched) claims everything, so a device whose agent could
// not be asked is still tried rather than silently dropped.
func (m *Metadata) HasAction(name string) bool {
	if m == nil {
		return true
	}
	for _, a := range m.Actions {
		if a.Name == name {
			return true
		}
	}
	return false
}

// DefaultHostArgument is the parameter that names the target when
// pcmk_host_argument is not set: "port" if the agent advertises it,
// otherwise "plug" if it does, otherwise "none" (no target argument; the
// agent still gets nodename). Without meta-data it is "port", the
// historical default. This follows the pacemaker-fenced(7) description of
// pcmk_host_argument.
func (m *Metadata) DefaultHostArgument() string {
	if m == nil {
		return "port"
	}
	switch {
	case m.Param("port") != nil:
		return "port"
	case m.Param("plug") != nil:
		return "plug"
	}
	return "none"
}
