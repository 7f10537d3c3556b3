//go:build !race

package natsbroker

const raceEnabled = false
