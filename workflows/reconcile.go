package workflows

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
)

// reconcileBatch bounds how many stale builds one reconcile pass enqueues.
const reconcileBatch = 1000

// reconcile is the periodic pass (River runs it on the leader only): every
// build that is neither terminal nor updated for Options.StaleAfter gets a
// poll job (one per build at a time).
func (e *Engine) reconcile(ctx context.Context) error {
	ids, err := e.store.StaleBuildIDs(ctx, e.clock.Now().Add(-e.opts.StaleAfter), reconcileBatch)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	for start := 0; start < len(ids); start += 100 {
		chunk := ids[start:min(start+100, len(ids))]
		err := e.store.Tx(ctx, func(tx *gorm.DB) error {
			for _, id := range chunk {
				if err := e.insertTx(ctx, tx, PollBuildArgs{BuildID: id}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
	}
	if len(ids) > 0 {
		e.log.Debug("reconcile: polling stale builds", "count", len(ids))
	}
	return nil
}

// pollBuild reads a stale build's run and job on GitHub (conditional
// requests: an unchanged run costs no rate limit) and applies what changed
// through the same code as webhooks. It then enforces the engine's
// timeouts: no run Options.NoRunTimeout after the dispatch was accepted,
// queued longer than Options.MaxQueueDuration, building longer than
// Options.MaxBuildDuration (the last two also cancel the run).
func (e *Engine) pollBuild(ctx context.Context, buildID string) error {
	b, err := e.store.LoadBuild(ctx, buildID)
	if errors.Is(err, models.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("poll build %s: %w", buildID, err)
	}
	if models.IsTerminal(b.Status) {
		return nil
	}
	if !e.servesBuild(b) {
		return e.foreignBuild(ctx, b)
	}
	now := e.clock.Now()

	switch {
	case b.RunConclusion != "":
		// Completed on GitHub; finalization is pending or was lost.
		return e.store.Tx(ctx, func(tx *gorm.DB) error {
			if err := e.insertTx(ctx, tx, FinalizeBuildArgs{BuildID: b.ID}); err != nil {
				return err
			}
			return models.UpdateBuildTx(ctx, tx, b.ID, now, map[string]any{})
		})
	case b.RunID == nil:
		return e.pollUndispatched(ctx, b, now)
	}

	repo := e.repoOf(b)
	run, err := e.forge.GetRun(ctx, repo, *b.RunID)
	if errors.Is(err, ErrNotFound) {
		return e.failBuild(ctx, b.ID, ErrorRunVanished, runGoneReason(*b.RunID), nil)
	}
	if err != nil {
		if code, reason := e.overdue(b, now.Add(-overdueGrace)); code != "" && ctx.Err() == nil {
			// GitHub keeps failing (5xx, 401, unreachable) well past the
			// engine's own limit: the build ends on that limit, not when
			// GitHub answers again. Within overdueGrace of the limit a
			// failed poll proves nothing (the run may have started: a
			// dropped webhook and one 5xx must not fail a running build),
			// and the next poll that succeeds decides.
			return e.timeOut(ctx, b.ID, code, fmt.Sprintf("%s; GitHub could not be asked about the run: %v", reason, err))
		}
		return e.forgeJobError(fmt.Errorf("poll build %s: %w", b.ID, err))
	}
	if run.Repo == "" {
		run.Repo = repo
	}
	obs := observation{run: &run}
	if why := e.observationMismatch(b, obs); why != "" {
		// The id was given to another run (a restarted simulator): this
		// build's run is gone.
		return e.failBuild(ctx, b.ID, ErrorRunVanished, runGoneReason(*b.RunID)+" ("+why+")", nil)
	}
	if runStatusRank(run.Status) > 1 || b.Status != models.StatusQueued || b.JobID == nil {
		jobs, err := e.forge.ListJobs(ctx, repo, *b.RunID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return e.forgeJobError(fmt.Errorf("poll build %s: %w", b.ID, err))
		}
		obs.job = pickJob(jobs, b.JobID)
	}

	err = e.store.Tx(ctx, func(tx *gorm.DB) error {
		locked, err := e.store.LockBuildTx(ctx, tx, b.ID)
		if err != nil {
			return err
		}
		if err := e.applyTx(ctx, tx, &locked, obs); err != nil {
			return err
		}
		if models.IsTerminal(locked.Status) || locked.RunConclusion != "" {
			return nil
		}
		if code, reason := e.overdue(locked, now); code != "" {
			return e.timeOutTx(ctx, tx, &locked, code, reason, now)
		}
		// Polled: the build is not stale any more.
		return models.UpdateBuildTx(ctx, tx, b.ID, now, map[string]any{})
	})
	if err != nil {
		return fmt.Errorf("poll build %s: %w", b.ID, err)
	}
	return nil
}

// pollUndispatched handles a stale build without a known run: its dispatch
// job is still at work (rate limit, retries), or GitHub accepted the
// dispatch without naming the run (GHES) and the run has not been found.
func (e *Engine) pollUndispatched(ctx context.Context, b models.Build, now time.Time) error {
	if b.DispatchAcceptedAt != nil {
		if now.Sub(*b.DispatchAcceptedAt) > e.opts.NoRunTimeout {
			if b.CancelRequested {
				return e.cancelUndispatched(ctx, b.ID)
			}
			return e.failBuild(ctx, b.ID, ErrorNoRun, reasonNoRun, nil)
		}
		// The dispatch job looks for the run meanwhile; the poll joins in
		// only late (should that job have given up).
		target, err := e.dispatchTarget(b)
		if err == nil && now.Sub(*b.DispatchAcceptedAt) > e.opts.NoRunTimeout/2 {
			run, found, err := e.findRun(ctx, b, target)
			if err != nil {
				return e.forgeJobError(fmt.Errorf("poll build %s: %w", b.ID, err))
			}
			if found {
				return e.recordFoundRun(ctx, b.ID, run)
			}
		}
	}
	return e.store.Tx(ctx, func(tx *gorm.DB) error {
		// Read again under the lock: b was read before this transaction,
		// and a dispatch job may have recorded its run meanwhile (then a
		// second job would find that run and log it a second time).
		locked, err := e.store.LockBuildTx(ctx, tx, b.ID)
		if err != nil {
			return err
		}
		if locked.Status == models.StatusQueued && locked.RunID == nil && locked.DispatchAcceptedAt == nil {
			// Its dispatch job is still at work, and then this insert is
			// dropped (one pending dispatch per build), or it is gone: River
			// discards a job it rescues from a dead process (kill -9) on
			// its last attempt. Dispatching is idempotent (a dispatch
			// attempted before looks for its run first), so the build gets
			// a dispatch job again rather than staying queued forever.
			if err := e.insertTx(ctx, tx, DispatchBuildArgs{BuildID: b.ID}); err != nil {
				return err
			}
		}
		return models.UpdateBuildTx(ctx, tx, b.ID, now, map[string]any{})
	})
}

// overdueGrace is how long past its limit a build whose polls fail waits
// for GitHub to answer before it ends on the limit.
const overdueGrace = 10 * time.Minute

// overdue tells whether a build with a run has outlived the engine's own
// limits: building longer than Options.MaxBuildDuration, or queued longer
// than Options.MaxQueueDuration since GitHub accepted the dispatch. It
// returns the error code and reason to fail it with, or "" and "".
func (e *Engine) overdue(b models.Build, now time.Time) (code, reason string) {
	switch {
	case b.RunID == nil:
	case b.Status == models.StatusBuilding && b.StartedAt != nil && now.Sub(*b.StartedAt) > e.opts.MaxBuildDuration:
		return ErrorTimedOut, fmt.Sprintf("timed out: still building after %s (maximum build duration)", e.opts.MaxBuildDuration)
	case b.Status == models.StatusQueued && b.DispatchAcceptedAt != nil && now.Sub(*b.DispatchAcceptedAt) > e.opts.MaxQueueDuration:
		return ErrorQueueTimeout, fmt.Sprintf("timed out: workflow run %d stayed queued for %s without a runner picking it up (runner %q)",
			*b.RunID, e.opts.MaxQueueDuration, e.dispatchInputs(b)["runner"])
	}
	return "", ""
}

// timeOut fails an overdue build with code and reason and cancels its run
// (see timeOutTx), unless it ended meanwhile.
func (e *Engine) timeOut(ctx context.Context, buildID, code, reason string) error {
	err := e.store.Tx(ctx, func(tx *gorm.DB) error {
		b, err := e.store.LockBuildTx(ctx, tx, buildID)
		if err != nil {
			return err
		}
		if models.IsTerminal(b.Status) || b.RunID == nil {
			return nil
		}
		return e.timeOutTx(ctx, tx, &b, code, reason, e.clock.Now())
	})
	if err != nil {
		return fmt.Errorf("time out build %s: %w", buildID, err)
	}
	return nil
}

// timeOutTx fails a build that exceeded a time limit and cancels its run.
func (e *Engine) timeOutTx(ctx context.Context, tx *gorm.DB, b *models.Build, code, reason string, now time.Time) error {
	if err := e.failBuildTx(ctx, tx, b, code, reason, now, nil); err != nil {
		return err
	}
	return e.insertTx(ctx, tx, CancelRunArgs{BuildID: b.ID, Repo: e.repoOf(*b), RunID: *b.RunID})
}

// pickJob chooses the build's job among a run's jobs: the one already
// followed, else the first.
func pickJob(jobs []Job, followed *int64) *Job {
	if len(jobs) == 0 {
		return nil
	}
	if followed != nil {
		for i := range jobs {
			if jobs[i].ID == *followed {
				return &jobs[i]
			}
		}
	}
	return &jobs[0]
}
