//go:build race

package e2e

// raceEnabled: the suite runs with -race, so the gateway is built with it.
const raceEnabled = true
