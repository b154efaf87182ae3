package cib

import (
	"fmt"
	"io"
	"strings"
)

// WriteStatus writes a status section on its own (<status>...</status>);
// the controller uses it to carry node states in its sync messages.
func WriteStatus(w io.Writer, s *Status) error {
	var b strings.Builder
	s.element().write(&b, 0)
	_, err := io.WriteString(w, b.String())
	return err
}

// ParseStatus reads a <status> element written by WriteStatus. Id-refs in
// transient attribute sets are resolved within the element only.
func ParseStatus(r io.Reader) (*Status, error) {
	root, err := ParseElement(r)
	if err != nil {
		return nil, err
	}
	if root.Name != "status" {
		return nil, fmt.Errorf("%w: root element is <%s>, want <status>", ErrInvalid, root.Name)
	}
	idx := map[string]*Element{}
	indexIDs(root, idx, 0)
	p := &converter{ids: idx}
	return p.status(root)
}

// ConfigElement returns a copy of the verbatim <configuration> element (nil
// for a CIB built without one); the controller edits it (adding <node>
// entries) and re-parses the result with FromElement.
func (c *CIB) ConfigElement() *Element { return c.configXML.Clone() }
