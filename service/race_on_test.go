//go:build race

package service

// raceEnabled: the race detector slows streaming 50 MiB twentyfold.
const raceEnabled = true
