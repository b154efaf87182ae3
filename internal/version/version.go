// Package version reports the build's version: the release set at link
// time (-ldflags "-X ringmaster/internal/version.release=v1.2.3") or the
// VCS revision Go embedded in the binary.
package version

import "runtime/debug"

// release is set by the linker for release builds.
var release = ""

// String is the human-readable version.
func String() string {
	if release != "" {
		return release
	}
	v := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+dirty"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			v += " " + rev + dirty
		}
	}
	return v
}
