package workflows

import (
	"context"
	"sync"
	"time"
)

// runListings shares the listings of a workflow's dispatch runs between
// builds looking for their runs by title (GHES, or after a dispatch whose
// answer was lost). A burst of N builds waiting for their runs then costs
// one listing per repository and workflow every PollDelay/2, not N.
type runListings struct {
	mu sync.Mutex
	m  map[string]*runListing
}

// runListing is one listing, in flight or done.
type runListing struct {
	since   time.Time // created>= filter
	started time.Time // when the request was sent
	done    chan struct{}
	runs    []Run
	err     error
}

// listDispatchRuns lists repo/workflow's dispatch runs created since (or
// earlier), from a listing started at or after notBefore: a listing that is
// in flight or finished within PollDelay/2 is shared, else a new one is made.
// since is rounded down to the minute, so builds created within the same
// minute share listings.
func (e *Engine) listDispatchRuns(ctx context.Context, repo, workflow string, since, notBefore time.Time) ([]Run, error) {
	since = since.Truncate(time.Minute)
	key := repo + "\x00" + workflow
	now := time.Now()
	lr := &e.listings
	lr.mu.Lock()
	if lr.m == nil {
		lr.m = map[string]*runListing{}
	}
	l := lr.m[key]
	reuse := l != nil && !l.since.After(since) && !l.started.Before(notBefore) && now.Sub(l.started) < e.opts.PollDelay/2
	if !reuse {
		l = &runListing{since: since, started: now, done: make(chan struct{})}
		lr.m[key] = l
		lr.mu.Unlock()
		l.runs, l.err = e.forge.ListDispatchRuns(ctx, repo, workflow, since)
		close(l.done)
	} else {
		lr.mu.Unlock()
	}
	select {
	case <-l.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if l.err != nil {
		// Failures are not shared beyond the callers already waiting.
		lr.mu.Lock()
		if lr.m[key] == l {
			delete(lr.m, key)
		}
		lr.mu.Unlock()
	}
	return l.runs, l.err
}
