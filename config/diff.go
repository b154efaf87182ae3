package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Change is one setting that differs between two configurations, named by
// its dotted key ("totem.token", "node[1].ring0_addr", "node" when the
// node list grew or shrank), with both values as text.
type Change struct {
	Key      string
	Old, New string
}

// Diff lists the settings of b that differ from a, in file order. The
// daemon's reload uses it to say which changes wait for a restart.
func Diff(a, b *Config) []Change {
	var out []Change
	diffStruct(reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem(), "", &out)
	return out
}

func diffStruct(a, b reflect.Value, prefix string, out *[]Change) {
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		key := prefix + name
		av, bv := a.Field(i), b.Field(i)
		switch {
		case f.Type.Kind() == reflect.Struct:
			diffStruct(av, bv, key+".", out)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			if av.Len() != bv.Len() {
				*out = append(*out, Change{Key: key, Old: strconv.Itoa(av.Len()) + " entries", New: strconv.Itoa(bv.Len()) + " entries"})
				continue
			}
			for j := range av.Len() {
				diffStruct(av.Index(j), bv.Index(j), key+"["+strconv.Itoa(j)+"].", out)
			}
		default:
			if !reflect.DeepEqual(av.Interface(), bv.Interface()) {
				*out = append(*out, Change{Key: key, Old: show(av), New: show(bv)})
			}
		}
	}
}

// show renders a value as an operator writes it (pointers followed, nil
// as "unset").
func show(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "unset"
		}
		v = v.Elem()
	}
	if v.Kind() == reflect.String {
		return strconv.Quote(v.String())
	}
	return fmt.Sprint(v.Interface())
}
