package ghsim

import (
	"sync"
	"time"
)

// Clock tells the simulator the time. It has the same method set as
// workflows.Clock, so one FakeClock can drive both the engine and the
// simulator in a test.
type Clock interface {
	Now() time.Time
}

// RealClock is the wall clock, in UTC.
type RealClock struct{}

// Now returns the current time in UTC.
func (RealClock) Now() time.Time { return time.Now().UTC() }

// FakeClock is a Clock that only moves when told to. It is safe for
// concurrent use.
type FakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewFakeClock returns a FakeClock reading t0 (converted to UTC).
func NewFakeClock(t0 time.Time) *FakeClock {
	return &FakeClock{now: t0.UTC()}
}

// Now returns the clock's current time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (a negative d is ignored: simulated
// time never goes back).
func (c *FakeClock) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t if t is later than the current time.
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t.UTC()
	}
	c.mu.Unlock()
}
