package main

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
)

// shareRecorder remembers the last replica count it was told.
type shareRecorder struct{ n atomic.Int64 }

func (s *shareRecorder) SetReplicas(n int) { s.n.Store(int64(n)) }

// TestReplicasShareTheirLimits: two processes' heartbeats on one
// PostgreSQL database each tell their limits that two replicas share them;
// when one stops, its row goes and the other takes the whole limit back at
// its next beat; a replica that died without a word stops counting after
// the TTL.
func TestReplicasShareTheirLimits(t *testing.T) {
	t.Parallel()
	if !slices.Contains(dbtest.Dialects(), models.DialectPostgres) {
		t.Skipf("replicas share a PostgreSQL database: set %s", dbtest.EnvURL)
	}
	db1, db2 := dbtest.OpenReplicas(t, models.DialectPostgres)
	follower := func(db *models.DB, rec *shareRecorder) *replicaFollower {
		return &replicaFollower{store: models.NewStore(db), log: slog.New(slog.DiscardHandler),
			self: models.Replica{ID: models.NewID("rep"), Host: "test", StartedAt: time.Now()},
			beat: 50 * time.Millisecond, ttl: 500 * time.Millisecond, sharers: []replicaSharer{rec}}
	}
	var a, b shareRecorder
	stopA := follower(db1, &a).start(t.Context())
	defer stopA()
	stopB := follower(db2, &b).start(t.Context())
	require.Eventually(t, func() bool { return a.n.Load() == 2 && b.n.Load() == 2 }, 10*time.Second, 20*time.Millisecond)

	stopB()
	require.Eventually(t, func() bool { return a.n.Load() == 1 }, 10*time.Second, 20*time.Millisecond,
		"a replica that stopped gives its share back at once")

	// A replica killed mid-flight leaves its row: it counts until the TTL.
	dead := models.Replica{ID: models.NewID("rep"), Host: "killed", StartedAt: time.Now(), SeenAt: time.Now()}
	require.NoError(t, models.NewStore(db2).BeatReplica(context.Background(), dead, time.Now().Add(-time.Hour)))
	require.Eventually(t, func() bool { return a.n.Load() == 2 }, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return a.n.Load() == 1 }, 10*time.Second, 20*time.Millisecond,
		"the killed replica stops counting after the TTL")
}

// TestReplicasOnSQLiteDoNothing: SQLite serves one process; there is no
// heartbeat and nothing is shared.
func TestReplicasOnSQLiteDoNothing(t *testing.T) {
	t.Parallel()
	db := dbtest.Open(t, models.DialectSQLite)
	var rec shareRecorder
	followReplicas(t.Context(), db, models.NewStore(db), "127.0.0.1:0", slog.New(slog.DiscardHandler), &rec)()
	require.Zero(t, rec.n.Load())
	var rows int64
	require.NoError(t, db.Gorm.Model(&models.Replica{}).Count(&rows).Error)
	require.Zero(t, rows)
}
