package wire

import (
	"math"
	"testing"
)

// FuzzParse: Parse (the text `ringctl cmap set` takes) rejects, never
// panics on, any text for any type byte; what it accepts has the asked
// type, fits MaxValueSize, and reads back equal from its own String form.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"1650", "-1", "0x10", "255", "256", "1e300", "NaN", "-Inf", "abc", "0xzz", "deadbeef", " 7 ", ""} {
		for _, t := range []Type{TypeI8, TypeU8, TypeU32, TypeI64, TypeU64, TypeFloat, TypeDouble, TypeString, TypeBinary} {
			f.Add(uint8(t), s)
		}
	}
	f.Add(uint8(0), "1")
	f.Add(uint8(200), "1")
	f.Fuzz(func(t *testing.T, typ uint8, s string) {
		v, err := Parse(Type(typ), s)
		if err != nil {
			return
		}
		if !Type(typ).Valid() {
			t.Fatalf("accepted unknown type %d", typ)
		}
		if v.Type() != Type(typ) {
			t.Fatalf("asked %v, got %v", Type(typ), v.Type())
		}
		if _, err := checkSize(v); err != nil {
			t.Fatalf("accepted an oversized value: %v", err)
		}
		back, err := Parse(v.Type(), v.String())
		if err != nil {
			t.Fatalf("%v %q: its String %q does not parse: %v", v.Type(), s, v.String(), err)
		}
		if f, ok := v.Float(); ok && math.IsNaN(f) {
			return
		}
		if !back.Equal(v) {
			t.Fatalf("%v %q: read back %v, want %v", v.Type(), s, back, v)
		}
	})
}
