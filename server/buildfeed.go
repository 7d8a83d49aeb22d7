package server

import (
	"context"
	"log/slog"
	"sync"

	"github.com/deskforge/deskforge/models"
)

// feedBuffer is how many updates a build stream may fall behind its feed
// before it is closed (its client then resumes by Last-Event-ID).
const feedBuffer = 64

// buildFeeds shares the database reads of the streams that follow one build
// in this process: one reader per followed build, woken by the build's
// changes, reads the build and its new log entries once and hands them to
// every stream of the build. Without it each stream read the same rows:
// with 1,000 clients on 100 builds, ten times the reads, all queued on
// SQLite's single connection with the engine's writes (BENCHMARKS.md).
//
// A stream gets updates (shared, read-only) through a bounded channel; a stream that falls
// feedBuffer updates behind (a client not reading) has its channel closed,
// so a slow client never holds up the reader or the other streams.
type buildFeeds struct {
	store   *models.Store
	changes Subscriber
	log     *slog.Logger

	mu    sync.Mutex
	feeds map[string]*buildFeed
}

// buildFeed is the reader of one build and its streams' channels.
type buildFeed struct {
	subs   map[chan *buildUpdate]struct{}
	cancel context.CancelFunc
}

// buildUpdate is the build as read after a change, with the log entries
// appended since the feed's previous update, in order.
type buildUpdate struct {
	build   models.Build
	entries []models.BuildLogEntry
}

// join subscribes to the updates of build id, starting its reader if this
// is its first stream; leave ends the subscription (and the reader with the
// last one).
func (f *buildFeeds) join(id string) (updates <-chan *buildUpdate, leave func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	feed := f.feeds[id]
	if feed == nil {
		ctx, cancel := context.WithCancel(context.Background())
		feed = &buildFeed{subs: map[chan *buildUpdate]struct{}{}, cancel: cancel}
		f.feeds[id] = feed
		wake, stop := f.changes.Subscribe(models.EventFilter{BuildID: id})
		go func() {
			defer stop()
			f.read(ctx, id, feed, wake)
		}()
	}
	ch := make(chan *buildUpdate, feedBuffer)
	feed.subs[ch] = struct{}{}
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(feed.subs, ch)
		if len(feed.subs) == 0 && f.feeds[id] == feed {
			delete(f.feeds, id)
			feed.cancel()
		}
	}
}

// read runs a build's reader until its last stream leaves. Its first read
// only sets where it starts: each stream catches up on its own first.
func (f *buildFeeds) read(ctx context.Context, id string, feed *buildFeed, wake <-chan struct{}) {
	cursor := int64(-1)
	for {
		b, err := f.store.GetBuildSummary(ctx, id)
		if err == nil && cursor < 0 {
			cursor = b.LogSeq
		}
		var entries []models.BuildLogEntry
		for err == nil && cursor < b.LogSeq {
			var chunk []models.BuildLogEntry
			chunk, err = f.store.ReadLog(ctx, models.LogQuery{BuildID: id, After: cursor, Limit: logEventChunk})
			if len(chunk) == 0 {
				break
			}
			for _, e := range chunk {
				if e.Seq <= b.LogSeq {
					entries = append(entries, e)
					cursor = e.Seq
				}
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.log.Warn("build event feed: read failed; waiting for the next change", "build_id", id, "err", err)
		} else {
			f.broadcast(feed, &buildUpdate{build: b, entries: entries})
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		}
	}
}

// broadcast hands u to every stream of feed; a stream whose channel is full
// is dropped (its channel closed).
func (f *buildFeeds) broadcast(feed *buildFeed, u *buildUpdate) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range feed.subs {
		select {
		case ch <- u:
		default:
			delete(feed.subs, ch)
			close(ch)
		}
	}
}
