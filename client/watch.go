package client

import (
	"context"
	"fmt"
	"time"
)

// WatchOptions tune Watch.
type WatchOptions struct {
	// Logs asks for the build's log entries too.
	Logs bool
	// Level keeps log entries of this level and above (see LogOptions).
	Level string
	// After skips log entries up to this sequence number.
	After int64
	// Interval is the pause between two polls (default 2 s).
	Interval time.Duration
	// MaxFailures is how many polls in a row may fail with a transient
	// error (network, 502, 503, 429) before Watch gives up (default 5).
	MaxFailures int
}

// Update is what changed in a watched build since the previous update.
type Update struct {
	// Build is the build when its status or progress changed (always set
	// in the first update), else nil.
	Build *Build
	// Logs are new log entries, in order; each entry is delivered once.
	Logs []LogEntry
}

// watchLogPage is how many log entries one poll asks for at most.
const watchLogPage = 1000

// Watch follows a build until it reaches a final status, calling fn with
// each change, and returns the final build. Log entries (opts.Logs) are
// delivered in order, each once, and the last update includes every entry
// written before the build became final. It stops early when ctx ends
// (returning ctx's error; the build goes on on the server), when fn returns
// an error, or after opts.MaxFailures failed polls in a row.
//
// It polls GET /builds/:id and GET /builds/:id/logs?after= every
// opts.Interval; callers see changes only, so an event stream can take the
// polling's place without changing them.
func (c *Client) Watch(ctx context.Context, id string, opts WatchOptions, fn func(Update) error) (*Build, error) {
	type page struct {
		build *Build
		logs  []LogEntry
		next  int64
	}
	var last *Build
	after := opts.After
	fetch := func() (page, error) {
		b, logs, next, err := c.poll(ctx, id, opts, after)
		return page{b, logs, next}, err
	}
	err := pollUntil(ctx, opts, fetch, func(p page) (bool, error) {
		after = p.next
		u := Update{Logs: p.logs}
		if last == nil || changed(last, p.build) {
			u.Build = p.build
		}
		last = p.build
		if u.Build != nil || len(u.Logs) > 0 {
			if err := fn(u); err != nil {
				return false, err
			}
		}
		return IsFinal(p.build.Status), nil
	})
	return last, err
}

// pollUntil calls fetch every opts.Interval (default 2 s) and hands what it
// read to handle, until handle says done or fails, ctx ends, or fetch fails
// with an error that is not transient or opts.MaxFailures (default 5) times
// in a row; after a failure it waits twice as long each time, up to 30 s.
// It is the loop of Watch and WatchRelease.
func pollUntil[T any](ctx context.Context, opts WatchOptions, fetch func() (T, error), handle func(T) (done bool, err error)) error {
	if opts.Interval <= 0 {
		opts.Interval = 2 * time.Second
	}
	if opts.MaxFailures <= 0 {
		opts.MaxFailures = 5
	}
	failures := 0
	for {
		v, err := fetch()
		if err == nil {
			failures = 0
			if done, err := handle(v); done || err != nil {
				return err
			}
		} else {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failures++
			if !IsTransient(err) || failures >= opts.MaxFailures {
				return err
			}
		}
		wait := opts.Interval
		if failures > 0 {
			wait = min(opts.Interval<<failures, 30*time.Second)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// poll reads the build, then its new log entries (in that order, so that
// the entries of a build seen final are all read).
func (c *Client) poll(ctx context.Context, id string, opts WatchOptions, after int64) (*Build, []LogEntry, int64, error) {
	b, err := c.GetBuild(ctx, id)
	if err != nil {
		return nil, nil, after, err
	}
	if !opts.Logs {
		return b, nil, after, nil
	}
	var logs []LogEntry
	for {
		page, err := c.BuildLogs(ctx, id, LogOptions{After: after, Limit: watchLogPage, Level: opts.Level})
		if err != nil {
			return nil, nil, after, fmt.Errorf("follow build %s: %w", id, err)
		}
		logs = append(logs, page.Logs...)
		after = page.NextAfter
		if len(page.Logs) < watchLogPage {
			return b, logs, after, nil
		}
	}
}

// changed reports whether b differs from prev in what a watcher shows.
func changed(prev, b *Build) bool {
	if prev.Status != b.Status {
		return true
	}
	if (prev.Progress == nil) != (b.Progress == nil) {
		return true
	}
	return prev.Progress != nil && *prev.Progress != *b.Progress
}
