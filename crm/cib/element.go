package cib

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxDepth bounds element nesting so that hostile input cannot exhaust the
// stack of the recursive converters; real CIBs nest about eight levels deep.
const maxDepth = 64

// Attr is one XML attribute. Attributes are kept in document order so that a
// CIB written back out (crm simulate -O) differs from its input only where the
// simulation changed it.
type Attr struct {
	Name  string
	Value string
}

// Attrs is an ordered attribute list with map-like helpers.
type Attrs []Attr

// Get returns the value of name and whether it is present.
func (a Attrs) Get(name string) (string, bool) {
	for _, at := range a {
		if at.Name == name {
			return at.Value, true
		}
	}
	return "", false
}

// Value returns the value of name, or "" when absent.
func (a Attrs) Value(name string) string {
	v, _ := a.Get(name)
	return v
}

// Set replaces the value of name in place, or appends it when absent.
func (a *Attrs) Set(name, value string) {
	for i := range *a {
		if (*a)[i].Name == name {
			(*a)[i].Value = value
			return
		}
	}
	*a = append(*a, Attr{Name: name, Value: value})
}

// Del removes name if present.
func (a *Attrs) Del(name string) {
	out := (*a)[:0]
	for _, at := range *a {
		if at.Name != name {
			out = append(out, at)
		}
	}
	*a = out
}

// Clone returns an independent copy.
func (a Attrs) Clone() Attrs {
	if a == nil {
		return nil
	}
	return append(Attrs(nil), a...)
}

// Element is a generic XML element. Character data is dropped because the CIB
// schema carries all information in attributes and child elements.
type Element struct {
	Name     string
	Attrs    Attrs
	Children []*Element
}

// ID is a shorthand for the "id" attribute.
func (e *Element) ID() string { return e.Attrs.Value("id") }

// Child returns the first child with the given name, or nil.
func (e *Element) Child(name string) *Element {
	for _, c := range e.Children {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Clone returns a deep copy of e.
func (e *Element) Clone() *Element {
	if e == nil {
		return nil
	}
	c := &Element{Name: e.Name, Attrs: e.Attrs.Clone()}
	for _, ch := range e.Children {
		c.Children = append(c.Children, ch.Clone())
	}
	return c
}

// ParseElement reads one XML document into an element tree.
func ParseElement(r io.Reader) (*Element, error) {
	d := xml.NewDecoder(r)
	d.Strict = true
	var stack []*Element
	var root *Element
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxDepth {
				return nil, fmt.Errorf("%w: elements nested deeper than %d", ErrSyntax, maxDepth)
			}
			el := &Element{Name: qualified(t.Name)}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" {
					continue
				}
				el.Attrs = append(el.Attrs, Attr{Name: qualified(a.Name), Value: a.Value})
			}
			if len(stack) == 0 {
				if root != nil {
					return nil, fmt.Errorf("%w: more than one root element", ErrSyntax)
				}
				root = el
			} else {
				parent := stack[len(stack)-1]
				parent.Children = append(parent.Children, el)
			}
			stack = append(stack, el)
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, fmt.Errorf("%w: unbalanced end element", ErrSyntax)
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 && strings.TrimSpace(string(t)) != "" {
				return nil, fmt.Errorf("%w: text outside the root element", ErrSyntax)
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("%w: empty document", ErrSyntax)
	}
	if len(stack) != 0 {
		return nil, fmt.Errorf("%w: unterminated element <%s>", ErrSyntax, stack[len(stack)-1].Name)
	}
	return root, nil
}

func qualified(n xml.Name) string {
	if n.Space != "" && n.Space != "xmlns" {
		// Namespaced names do not occur in CIBs; keep the local part.
		return n.Local
	}
	return n.Local
}

// Write serialises e with two-space indentation starting at the given depth.
func (e *Element) Write(w io.Writer, depth int) error {
	var b strings.Builder
	e.write(&b, depth)
	_, err := io.WriteString(w, b.String())
	return err
}

func (e *Element) write(b *strings.Builder, depth int) {
	b.WriteString(strings.Repeat("  ", depth))
	b.WriteByte('<')
	b.WriteString(e.Name)
	for _, a := range e.Attrs {
		b.WriteByte(' ')
		b.WriteString(a.Name)
		b.WriteString(`="`)
		b.WriteString(EscapeAttr(a.Value))
		b.WriteByte('"')
	}
	if len(e.Children) == 0 {
		b.WriteString("/>\n")
		return
	}
	b.WriteString(">\n")
	for _, c := range e.Children {
		c.write(b, depth+1)
	}
	b.WriteString(strings.Repeat("  ", depth))
	b.WriteString("</")
	b.WriteString(e.Name)
	b.WriteString(">\n")
}

// EscapeAttr escapes an attribute value the way libxml2 does when it
// serialises a document; the operation digests depend on this exact form.
func EscapeAttr(s string) string {
	if !strings.ContainsAny(s, "<>&\"\n\r\t") {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		case '\n':
			b.WriteString("&#10;")
		case '\r':
			b.WriteString("&#13;")
		case '\t':
			b.WriteString("&#9;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
