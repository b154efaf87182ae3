//go:build race

package ring

// raceEnabled: the race detector slows everything 5–10×, so timing bounds
// that hold for the real binary (a 200 ms token under load) are relaxed.
const raceEnabled = true
