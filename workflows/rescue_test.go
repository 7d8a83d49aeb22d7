package workflows

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/templates"
)

// TestBuildJobsAreRescuedInTime: River rescues a job left running by a
// dead process only once RescueStuckJobsAfter and the job's own timeout
// have both passed; every job a build waits on to end has a timeout of at
// most RescueStuckJobsAfter, so a kill -9 delays a build by
// RescueStuckJobsAfter at most (a 15-minute finalize timeout kept builds
// building for 15 minutes after a replica was killed). The effective
// timeout is River's: the worker's own, else the client's JobTimeout.
func TestBuildJobsAreRescuedInTime(t *testing.T) {
	t.Parallel()
	timeouts := map[string]time.Duration{
		DispatchBuildArgs{}.Kind(): (&dispatchWorker{}).Timeout(&river.Job[DispatchBuildArgs]{}),
		ApplyEventArgs{}.Kind():    (&applyEventWorker{}).Timeout(&river.Job[ApplyEventArgs]{}),
		ReconcileArgs{}.Kind():     (&reconcileWorker{}).Timeout(&river.Job[ReconcileArgs]{}),
		PollBuildArgs{}.Kind():     (&pollBuildWorker{}).Timeout(&river.Job[PollBuildArgs]{}),
		FinalizeBuildArgs{}.Kind(): (&finalizeWorker{}).Timeout(&river.Job[FinalizeBuildArgs]{}),
		CancelRunArgs{}.Kind():     (&cancelRunWorker{}).Timeout(&river.Job[CancelRunArgs]{}),
	}
	for kind, d := range timeouts {
		effective := cmp.Or(d, JobTimeout)
		require.Positive(t, effective, "%s: River never rescues a job without a timeout", kind)
		require.LessOrEqual(t, effective, RescueStuckJobsAfter, "%s is rescued only after its timeout", kind)
	}
}

// TestFinalizeLeftRunningByDeadProcessIsRescued: a process died (kill -9)
// while finalizing a build whose run had completed; the finalize job stays
// marked running in the database and the build building. A live River
// client on the same database runs it again once RescueStuckJobsAfter has
// passed, and the build ends. PostgreSQL only: the rescue is River's
// leader-side maintenance on the shared database.
func TestFinalizeLeftRunningByDeadProcessIsRescued(t *testing.T) {
	t.Parallel()
	if !slices.Contains(dbtest.Dialects(), models.DialectPostgres) {
		t.Skipf("needs PostgreSQL: set %s", dbtest.EnvURL)
	}
	tb := setup(t, models.DialectPostgres)
	b, runID := tb.dispatched(t)
	start := tb.clock.Now()
	_, job := tb.forge.setRun(runID, func(r *Run, j *Job) {
		j.Status, j.Conclusion, j.RunnerName = "completed", "success", "GitHub Actions 7"
		j.StartedAt, j.CompletedAt = start, start.Add(time.Minute)
		j.Steps = []Step{step(1, "Build", "completed", "success", start)}
		r.Status, r.Conclusion = "completed", "success"
	})
	tb.forge.mu.Lock()
	tb.forge.logs[job.ID] = sampleLog
	tb.forge.assets["acme/app|v1.2.3|app-1.2.3-mac-arm64.dmg"] = Asset{ID: 77, Name: "app-1.2.3-mac-arm64.dmg",
		Label: templates.AssetLabel("app-1.2.3-mac-arm64.dmg", b.ID), Size: 1234}
	tb.forge.mu.Unlock()
	require.NoError(t, tb.store.Tx(tb.ctx, func(tx *gorm.DB) error {
		locked, err := tb.store.LockBuildTx(tb.ctx, tx, b.ID)
		if err != nil {
			return err
		}
		return tb.engine.applyTx(tb.ctx, tx, &locked, observation{job: &job})
	}))
	got := tb.build(t, b.ID)
	require.Equal(t, models.StatusBuilding, got.Status)
	require.Equal(t, "success", got.RunConclusion)
	finals := tb.inserter.take(FinalizeBuildArgs{}.Kind())
	require.Len(t, finals, 1)

	workers := river.NewWorkers()
	tb.engine.RegisterWorkers(workers)
	client, err := river.NewClient[*sql.Tx](tb.db.RiverDriver(), &river.Config{
		Queues:               map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 4}},
		Workers:              workers,
		JobTimeout:           JobTimeout,
		RescueStuckJobsAfter: RescueStuckJobsAfter,
	})
	require.NoError(t, err)
	tb.engine.SetInserter(tb.store.Jobs())
	inserted, err := client.Insert(tb.ctx, finals[0], nil)
	require.NoError(t, err)
	// The dead process took the job RescueStuckJobsAfter and half a minute
	// ago and never finished it.
	res := tb.db.Gorm.Exec(`UPDATE river_job SET state = 'running', attempt = 1, attempted_at = now() - ?::interval,
		attempted_by = ARRAY['dead-process'] WHERE id = ?`,
		fmt.Sprintf("%d seconds", int((RescueStuckJobsAfter+30*time.Second)/time.Second)), inserted.Job.ID)
	require.NoError(t, res.Error)
	require.EqualValues(t, 1, res.RowsAffected)

	ctx, cancel := context.WithCancel(tb.ctx)
	defer cancel()
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() {
		stopCtx, stop := context.WithTimeout(context.Background(), 30*time.Second)
		defer stop()
		_ = client.Stop(stopCtx)
	})
	// River elects a leader and rescues at once; the generous deadline is
	// for a loaded machine, not a measurement.
	require.Eventually(t, func() bool {
		return models.IsTerminal(tb.build(t, b.ID).Status)
	}, 2*time.Minute, 200*time.Millisecond, "the build is still %s: its finalize job was not rescued", tb.build(t, b.ID).Status)
	got = tb.build(t, b.ID)
	require.Equal(t, models.StatusSuccess, got.Status)
	require.True(t, got.LogsFetched)

	// River records the job's completion after its work (in batches).
	var (
		state   string
		attempt int
	)
	require.Eventually(t, func() bool {
		require.NoError(t, tb.db.Gorm.Raw(`SELECT state::text, attempt FROM river_job WHERE id = ?`, inserted.Job.ID).Row().Scan(&state, &attempt))
		return state == "completed"
	}, time.Minute, 100*time.Millisecond, "the rescued finalize job is not recorded completed")
	require.Equal(t, 2, attempt, "run again by the live client after the rescue")
}

// TestPollGivesAnUndispatchedBuildItsDispatchJobAgain: River discards a job
// it rescues from a dead process on its last attempt; a dispatch job lost
// that way would leave its build queued forever. A poll of a stale build
// without a run and without an accepted dispatch inserts a dispatch job
// (River drops it while the build's dispatch job is still pending or
// running: one pending dispatch per build), and that dispatch, attempted
// before, finds the run instead of dispatching twice. A build whose
// dispatch GitHub accepted (GHES) waits for its run: no new dispatch.
func TestPollGivesAnUndispatchedBuildItsDispatchJobAgain(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, dialect)
			b := tb.newBuild(t)
			// The dead process's attempt reached GitHub, which created the
			// run; the answer was lost with the process, whose job River
			// then discarded.
			tb.forge.dispatchErrAfterCreate = &TransientError{Err: errors.New("process killed")}
			require.Error(t, tb.engine.dispatchBuild(tb.ctx, b.ID, false))
			require.Nil(t, tb.build(t, b.ID).RunID)
			tb.clock.advance(RescueStuckJobsAfter)
			require.NoError(t, tb.engine.pollBuild(tb.ctx, b.ID))
			jobs := tb.inserter.take(DispatchBuildArgs{}.Kind())
			require.Equal(t, []river.JobArgs{DispatchBuildArgs{BuildID: b.ID}}, jobs)
			require.Equal(t, tb.clock.Now(), tb.build(t, b.ID).UpdatedAt.UTC(), "a poll makes the build fresh")

			// The new dispatch job finds that run instead of dispatching again.
			require.NoError(t, tb.engine.dispatchBuild(tb.ctx, jobs[0].(DispatchBuildArgs).BuildID, false))
			require.NotNil(t, tb.build(t, b.ID).RunID)
			require.Len(t, tb.forge.dispatches, 1, "one build, one run")

			accepted := tb.newBuild(t)
			at := tb.clock.Now()
			require.NoError(t, tb.db.Gorm.Model(&models.Build{}).Where("id = ?", accepted.ID).
				Updates(map[string]any{"dispatched_at": at, "dispatch_accepted_at": at}).Error)
			tb.clock.advance(2 * time.Minute)
			require.NoError(t, tb.engine.pollBuild(tb.ctx, accepted.ID))
			require.Empty(t, tb.inserter.take(DispatchBuildArgs{}.Kind()))
		})
	}
}

// TestReconcileNotBlockedByDeadLeadersPass: a reconcile pass left running
// by a leader that died stays "running" until River's rescuer discards it
// (RescueStuckJobsAfter). Unique only while active, it would keep the next
// leader from inserting any pass meanwhile, and the builds whose webhooks
// were lost would wait; the periodic job's insert options make it unique
// per ReconcileInterval instead, so the next interval's pass is inserted.
func TestReconcileNotBlockedByDeadLeadersPass(t *testing.T) {
	t.Parallel()
	if !slices.Contains(dbtest.Dialects(), models.DialectPostgres) {
		t.Skipf("needs PostgreSQL: set %s", dbtest.EnvURL)
	}
	tb := setup(t, models.DialectPostgres)
	e := NewEngine(tb.store, tb.forge, nil, nil, Options{ReconcileInterval: time.Second})
	client, err := river.NewClient[*sql.Tx](tb.db.RiverDriver(), &river.Config{})
	require.NoError(t, err)
	deadPass := func(opts *river.InsertOpts) {
		t.Helper()
		dead, err := client.Insert(tb.ctx, ReconcileArgs{}, opts)
		require.NoError(t, err)
		require.False(t, dead.UniqueSkippedAsDuplicate)
		res := tb.db.Gorm.Exec(`UPDATE river_job SET state = 'running', attempt = 1, attempted_at = now(),
			attempted_by = ARRAY['dead-leader'] WHERE id = ?`, dead.Job.ID)
		require.NoError(t, res.Error)
		require.EqualValues(t, 1, res.RowsAffected)
	}

	// Unique while active only (ReconcileArgs' own options): blocked.
	deadPass(nil)
	blocked, err := client.Insert(tb.ctx, ReconcileArgs{}, nil)
	require.NoError(t, err)
	require.True(t, blocked.UniqueSkippedAsDuplicate, "the dead leader's pass blocks a pass unique while active")

	deadPass(e.reconcileInsertOpts())
	// The periodic job's options: a later interval's pass is inserted.
	require.Eventually(t, func() bool {
		next, err := client.Insert(tb.ctx, ReconcileArgs{}, e.reconcileInsertOpts())
		require.NoError(t, err)
		return !next.UniqueSkippedAsDuplicate
	}, 30*time.Second, 100*time.Millisecond, "no reconcile pass could be inserted while the dead leader's one is running")
	var active int
	require.NoError(t, tb.db.Gorm.Raw(`SELECT count(*) FROM river_job WHERE kind = ? AND state IN ('available', 'running')`,
		ReconcileArgs{}.Kind()).Row().Scan(&active))
	require.Equal(t, 3, active, "the two dead leader's passes and the new one")

	// River refuses a unique period under a second: the options of an
	// engine that reconciles more often than that must still insert.
	fast := NewEngine(tb.store, tb.forge, nil, nil, Options{ReconcileInterval: 100 * time.Millisecond})
	_, err = client.Insert(tb.ctx, ReconcileArgs{}, fast.reconcileInsertOpts())
	require.NoError(t, err, "a reconcile interval under a second")
}
