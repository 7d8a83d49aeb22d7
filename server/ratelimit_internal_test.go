package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRateLimiterEvictsRefilledBuckets(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rl := newRateLimiter(&RateLimits{Read: Rate{PerSecond: 1, Burst: 10}, Write: Rate{PerSecond: 0.01, Burst: 10},
		MaxBuckets: 100, Now: func() time.Time { return now }})

	for i := range 50 {
		require.True(t, rl.take(fmt.Sprint("key:", i), false).allowed)
	}
	require.Equal(t, 50, rl.size())

	// A minute later every bucket refilled: the next new caller sweeps them.
	now = now.Add(rateSweepInterval)
	require.True(t, rl.take("key:new", false).allowed)
	require.Equal(t, 1, rl.size())

	// A drained bucket survives the sweep (forgetting it would forgive
	// it); at 0.01 a second it takes 1000 s to refill.
	for range 10 {
		rl.take("key:busy", true)
	}
	require.False(t, rl.take("key:busy", true).allowed)
	now = now.Add(rateSweepInterval)
	require.True(t, rl.take("key:third", false).allowed)
	require.Equal(t, 2, rl.size(), "the drained bucket and the new one")
	require.False(t, rl.take("key:busy", true).allowed)
}

func TestRateLimiterBoundedAtMaxBuckets(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rl := newRateLimiter(&RateLimits{Read: Rate{PerSecond: 0.001, Burst: 1}, Write: Rate{PerSecond: 0.001, Burst: 1},
		MaxBuckets: 10, Now: func() time.Time { return now }})
	for i := range 1000 {
		rl.take(fmt.Sprint("addr:", i), false)
		require.LessOrEqual(t, rl.size(), 10)
	}
}
