package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/deskforge/deskforge/models"
)

// Heartbeats of the replicas sharing a PostgreSQL database: every process
// records that it is alive every replicaBeat; a replica unheard of for
// replicaTTL no longer counts, and its row is dropped after replicaForget.
const (
	replicaBeat   = 10 * time.Second
	replicaTTL    = 35 * time.Second
	replicaForget = time.Hour
)

// replicaSharer is a per-process limit that the live replicas divide among
// themselves (the API's rate limits, the GitHub write pace).
type replicaSharer interface {
	SetReplicas(n int)
}

// replicaFollower keeps this process's heartbeat and tells its sharers
// how many replicas are alive.
type replicaFollower struct {
	store   *models.Store
	log     *slog.Logger
	self    models.Replica
	beat    time.Duration
	ttl     time.Duration
	sharers []replicaSharer
}

// followReplicas starts the heartbeat of this process on PostgreSQL,
// where several `serve` replicas may share the database, and returns the
// function that stops it and removes the process's row (so the others
// take back its share at once). On SQLite, which serves one process, it
// does nothing.
func followReplicas(ctx context.Context, db *models.DB, store *models.Store, listen string, log *slog.Logger, sharers ...replicaSharer) func() {
	if db.Dialect != models.DialectPostgres {
		return func() {}
	}
	host, _ := os.Hostname()
	f := &replicaFollower{store: store, log: log, beat: replicaBeat, ttl: replicaTTL, sharers: sharers,
		self: models.Replica{ID: models.NewID("rep"), Host: host + " " + listen, StartedAt: time.Now()}}
	return f.start(ctx)
}

// start beats at once (so that the limits are shared from the first
// request), then every f.beat until the returned function is called.
func (f *replicaFollower) start(ctx context.Context) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	current := f.tick(ctx, 1)
	go func() {
		defer close(done)
		t := time.NewTicker(f.beat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				current = f.tick(ctx, current)
			}
		}
	}()
	return func() {
		cancel()
		<-done
		rmCtx, rmCancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer rmCancel()
		if err := f.store.RemoveReplica(rmCtx, f.self.ID); err != nil {
			f.log.Warn("could not remove this replica's heartbeat; the others count it until it expires", "err", err)
		}
	}
}

// tick records a heartbeat and passes the number of live replicas on when
// it changed from current; it returns the number now in force. A failed
// beat keeps the current share (the database is what is failing).
func (f *replicaFollower) tick(ctx context.Context, current int) int {
	now := time.Now()
	f.self.SeenAt = now
	if err := f.store.BeatReplica(ctx, f.self, now.Add(-replicaForget)); err != nil {
		if ctx.Err() == nil {
			f.log.Warn("replica heartbeat failed", "err", err)
		}
		return current
	}
	n, err := f.store.LiveReplicas(ctx, now.Add(-f.ttl))
	if err != nil {
		if ctx.Err() == nil {
			f.log.Warn("counting live replicas failed", "err", err)
		}
		return current
	}
	if n != current {
		f.log.Info("live replicas changed: per-process limits are shared among them", "replicas", n)
	}
	for _, s := range f.sharers {
		s.SetReplicas(n)
	}
	return n
}
