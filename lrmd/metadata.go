package lrmd

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MetaData is an agent's OCF meta-data (ra-api-1.dtd / OCF 1.1). Script
// agents print it for the meta-data action; builtin agents declare it in
// Go and it is rendered to the same XML, so `ringctl agent meta` looks the
// same for both.
type MetaData struct {
	XMLName    xml.Name    `xml:"resource-agent" json:"-"`
	Name       string      `xml:"name,attr" json:"name"`
	Version    string      `xml:"version,attr,omitempty" json:"version,omitempty"` // the agent's own version
	OCFVersion string      `xml:"version" json:"ocf_version,omitempty"`            // the OCF API version
	LongDescs  []Desc      `xml:"longdesc" json:"-"`
	ShortDescs []Desc      `xml:"shortdesc" json:"-"`
	Parameters []Parameter `xml:"parameters>parameter" json:"parameters"`
	Actions    []Action    `xml:"actions>action" json:"actions"`
}

// Desc is a (possibly translated) description.
type Desc struct {
	Lang string `xml:"lang,attr,omitempty"`
	Text string `xml:",chardata"`
}

// Parameter is one instance attribute an agent accepts.
type Parameter struct {
	Name        string  `xml:"name,attr" json:"name"`
	Required    string  `xml:"required,attr,omitempty" json:"-"`
	Unique      string  `xml:"unique,attr,omitempty" json:"-"`
	UniqueGroup string  `xml:"unique-group,attr,omitempty" json:"unique_group,omitempty"`
	Reloadable  string  `xml:"reloadable,attr,omitempty" json:"-"`
	LongDescs   []Desc  `xml:"longdesc" json:"-"`
	ShortDescs  []Desc  `xml:"shortdesc" json:"-"`
	Content     Content `xml:"content" json:"content"`
}

// Content declares a parameter's type and default. Types understood for
// validation: string, integer, boolean, select, and the ringmaster
// extension "duration" (a Go duration such as 200ms, or an integer in the
// unit the parameter's description names).
type Content struct {
	Type    string   `xml:"type,attr" json:"type"`
	Default *string  `xml:"default,attr" json:"default,omitempty"`
	Options []Option `xml:"option" json:"options,omitempty"`
}

// Option is one allowed value of a select parameter.
type Option struct {
	Value string `xml:"value,attr" json:"value"`
}

// Action is one action the agent advertises, with its advised timeout.
type Action struct {
	Name     string `xml:"name,attr" json:"name"`
	Timeout  string `xml:"timeout,attr,omitempty" json:"timeout,omitempty"`
	Interval string `xml:"interval,attr,omitempty" json:"interval,omitempty"`
	Depth    string `xml:"depth,attr,omitempty" json:"depth,omitempty"`
	Role     string `xml:"role,attr,omitempty" json:"role,omitempty"`
}

// ParseMetaData parses an agent's meta-data XML.
func ParseMetaData(b []byte) (*MetaData, error) {
	var md MetaData
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = false // agents in the wild emit sloppy XML; pacemaker uses libxml2 in recover mode
	if err := dec.Decode(&md); err != nil {
		return nil, fmt.Errorf("parse meta-data: %w", err)
	}
	return &md, nil
}

// XML renders the meta-data as the OCF XML document.
func (md *MetaData) XML() ([]byte, error) {
	b, err := xml.MarshalIndent(md, "", "  ")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	buf.WriteString(`<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">` + "\n")
	buf.Write(b)
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// ShortDesc and LongDesc return the English (or first) description.
func (md *MetaData) ShortDesc() string { return pickDesc(md.ShortDescs) }
func (md *MetaData) LongDesc() string  { return pickDesc(md.LongDescs) }

// ShortDesc returns the parameter's English (or first) short description.
func (p *Parameter) ShortDesc() string { return pickDesc(p.ShortDescs) }

// IsRequired interprets the required attribute the way pacemaker does.
func (p *Parameter) IsRequired() bool { return IsTrue(p.Required) }

func pickDesc(ds []Desc) string {
	for _, d := range ds {
		if d.Lang == "" || d.Lang == "en" {
			return strings.TrimSpace(d.Text)
		}
	}
	if len(ds) > 0 {
		return strings.TrimSpace(ds[0].Text)
	}
	return ""
}

// Param returns the named parameter declaration, or nil.
func (md *MetaData) Param(name string) *Parameter {
	for i := range md.Parameters {
		if md.Parameters[i].Name == name {
			return &md.Parameters[i]
		}
	}
	return nil
}

// IsTrue accepts the spellings ocf-shellfuncs' ocf_is_true accepts.
func IsTrue(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "yes", "true", "on", "y", "ja":
		return true
	}
	return false
}

func isBoolean(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "yes", "true", "on", "y", "ja", "0", "no", "false", "off", "n", "nein":
		return true
	}
	return false
}

// Validate checks params against the meta-data before the agent runs.
// Missing required parameters always fail (wrapping ErrMissingParam).
// With strict set (builtin agents, whose meta-data is authoritative),
// unknown parameters and values that do not fit the declared type fail
// too (wrapping ErrBadParam). All problems are reported together.
func (md *MetaData) Validate(params map[string]string, strict bool) error {
	var errs []error
	for i := range md.Parameters {
		p := &md.Parameters[i]
		v, ok := params[p.Name]
		if !ok {
			if p.IsRequired() {
				errs = append(errs, fmt.Errorf("%w %q (%s)", ErrMissingParam, p.Name, p.ShortDesc()))
			}
			continue
		}
		if p.IsRequired() && strings.TrimSpace(v) == "" {
			errs = append(errs, fmt.Errorf("%w %q: empty value", ErrMissingParam, p.Name))
			continue
		}
		if strict {
			if err := p.checkValue(v); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if strict {
		var unknown []string
		for k := range params {
			if md.Param(k) == nil {
				unknown = append(unknown, k)
			}
		}
		sort.Strings(unknown)
		for _, k := range unknown {
			errs = append(errs, fmt.Errorf("%w %q: %s does not take it", ErrBadParam, k, md.Name))
		}
	}
	return errors.Join(errs...)
}

func (p *Parameter) checkValue(v string) error {
	switch p.Content.Type {
	case "integer":
		if _, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil {
			return fmt.Errorf("%w %s=%q: not an integer", ErrBadParam, p.Name, v)
		}
	case "boolean":
		if !isBoolean(v) {
			return fmt.Errorf("%w %s=%q: not a boolean", ErrBadParam, p.Name, v)
		}
	case "duration":
		t := strings.TrimSpace(v)
		if _, err := strconv.ParseUint(t, 10, 63); err == nil {
			return nil
		}
		if d, err := time.ParseDuration(t); err != nil || d < 0 {
			return fmt.Errorf("%w %s=%q: not a duration (e.g. 200ms, 5s)", ErrBadParam, p.Name, v)
		}
	case "select":
		for _, o := range p.Content.Options {
			if o.Value == v {
				return nil
			}
		}
		var vals []string
		for _, o := range p.Content.Options {
			vals = append(vals, o.Value)
		}
		return fmt.Errorf("%w %s=%q: want one of %s", ErrBadParam, p.Name, v, strings.Join(vals, ", "))
	}
	return nil
}

// WithDefaults returns a copy of params with every declared default filled
// in for parameters that are absent. Builtin agents get this view; script
// agents apply their own defaults, as with pacemaker.
func (md *MetaData) WithDefaults(params map[string]string) map[string]string {
	out := make(map[string]string, len(params)+len(md.Parameters))
	for _, p := range md.Parameters {
		if p.Content.Default != nil {
			out[p.Name] = *p.Content.Default
		}
	}
	for k, v := range params {
		out[k] = v
	}
	return out
}

// ParamSpec is a compact way for builtin agents to declare a parameter.
type ParamSpec struct {
	Name     string
	Type     string // string, integer, boolean, select, duration
	Default  string // "" means no default
	Required bool
	Short    string
	Long     string
	Options  []string // for select
	Unique   bool
}

// NewMetaData builds the meta-data of a builtin agent.
func NewMetaData(name, short, long string, params []ParamSpec, actions []Action) *MetaData {
	md := &MetaData{
		Name:       name,
		Version:    "1.0",
		OCFVersion: "1.1",
		LongDescs:  []Desc{{Lang: "en", Text: long}},
		ShortDescs: []Desc{{Lang: "en", Text: short}},
		Actions:    actions,
	}
	for _, ps := range params {
		p := Parameter{
			Name:       ps.Name,
			LongDescs:  []Desc{{Lang: "en", Text: firstNonEmpty(ps.Long, ps.Short)}},
			ShortDescs: []Desc{{Lang: "en", Text: ps.Short}},
			Content:    Content{Type: ps.Type},
		}
		if p.Content.Type == "" {
			p.Content.Type = "string"
		}
		if ps.Required {
			p.Required = "1"
		} else {
			p.Required = "0"
		}
		if ps.Unique {
			p.Unique = "1"
		}
		if ps.Default != "" {
			d := ps.Default
			p.Content.Default = &d
		}
		for _, o := range ps.Options {
			p.Content.Options = append(p.Content.Options, Option{Value: o})
		}
		md.Parameters = append(md.Parameters, p)
	}
	return md
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
