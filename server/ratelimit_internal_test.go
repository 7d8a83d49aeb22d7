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

// TestRateLimiterSharedByReplicas: with n live replicas each process allows
// 1/n of the burst and rate, existing buckets included, and goes back to
// the whole limit when the others are gone.
func TestRateLimiterSharedByReplicas(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rl := newRateLimiter(&RateLimits{Read: Rate{PerSecond: 3, Burst: 30}, Write: Rate{PerSecond: 1, Burst: 2},
		Now: func() time.Time { return now }})
	// takeAll takes until refused: how many were allowed, and the refusal.
	takeAll := func(caller string, write bool) (int, rateDecision) {
		for allowed := 0; ; allowed++ {
			if d := rl.take(caller, write); !d.allowed {
				return allowed, d
			}
		}
	}

	require.True(t, rl.take("key:a", false).allowed, "a bucket made before the others came")
	rl.replicas.Store(3)
	n, last := takeAll("key:a", false)
	require.Equal(t, 10, n, "the existing bucket (29 tokens left) is capped at a third of the burst")
	require.Equal(t, 10, last.limit)
	n, _ = takeAll("key:b", false)
	require.Equal(t, 10, n, "a new bucket: a third of the burst")
	n, _ = takeAll("key:w", true)
	require.Equal(t, 1, n, "a burst of 2 shared by 3: at least one request each")

	// A third of 3 a second: one token a second.
	now = now.Add(time.Second)
	n, _ = takeAll("key:b", false)
	require.Equal(t, 1, n)

	rl.replicas.Store(1)
	now = now.Add(10 * time.Second)
	n, _ = takeAll("key:b", false)
	require.Equal(t, 10, n, "what refilled at the shared rate before this process was alone again")
	now = now.Add(10 * time.Second)
	n, last = takeAll("key:b", false)
	require.Equal(t, 30, n, "alone: the whole burst, refilled at the whole rate")
	require.Equal(t, 30, last.limit)
}
