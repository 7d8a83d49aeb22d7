//go:build !race

package e2e

// raceEnabled tells whether the race detector is on (go test -race).
const raceEnabled = false
