//go:build !race

package cpg_test

// raceEnabled: the test binary runs under the race detector.
const raceEnabled = false
