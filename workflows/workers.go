package workflows

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"gorm.io/gorm"
)

// RegisterWorkers adds the engine's River workers to workers.
func (e *Engine) RegisterWorkers(workers *river.Workers) {
	river.AddWorker(workers, &dispatchWorker{engine: e})
	river.AddWorker(workers, &applyEventWorker{engine: e})
	river.AddWorker(workers, &reconcileWorker{engine: e})
	river.AddWorker(workers, &pollBuildWorker{engine: e})
	river.AddWorker(workers, &finalizeWorker{engine: e})
	river.AddWorker(workers, &cancelRunWorker{engine: e})
	river.AddWorker(workers, &purgeIdempotencyKeysWorker{engine: e})
	river.AddWorker(workers, &followStepsWorker{engine: e})
	river.AddWorker(workers, &publishWorker{engine: e})
}

// PeriodicJobs returns the engine's periodic River jobs (run by the leader):
// the reconciler, every Options.ReconcileInterval, and once at start; the
// purge of expired idempotency keys, hourly.
func (e *Engine) PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(
			river.PeriodicInterval(e.opts.ReconcileInterval),
			func() (river.JobArgs, *river.InsertOpts) { return ReconcileArgs{}, e.reconcileInsertOpts() },
			&river.PeriodicJobOpts{RunOnStart: true},
		),
		river.NewPeriodicJob(
			river.PeriodicInterval(purgeInterval),
			func() (river.JobArgs, *river.InsertOpts) { return PurgeIdempotencyKeysArgs{}, nil },
			nil,
		),
	}
}

// reconcileInsertOpts makes the periodic reconcile pass unique per period
// (Options.ReconcileInterval, at least River's minimum of one second) among
// active passes, rather than unique while any pass is active: a pass left
// running by a leader that died (kill -9) stays "running" until River's
// rescuer discards it (RescueStuckJobsAfter), and must not keep the new
// leader from reconciling meanwhile, since the builds whose webhooks were
// lost wait on those passes. Passes are idempotent (a read, then unique
// poll jobs), so two of different periods running together is harmless.
func (e *Engine) reconcileInsertOpts() *river.InsertOpts {
	unique := uniqueWhileActive()
	unique.ByPeriod = max(e.opts.ReconcileInterval, minUniquePeriod)
	return &river.InsertOpts{UniqueOpts: unique}
}

// minUniquePeriod is the shortest UniqueOpts.ByPeriod River accepts: a
// shorter one makes every insert fail (the e2e harness reconciles every
// 100 ms).
const minUniquePeriod = time.Second

// dispatchWorker dispatches a queued build to GitHub Actions.
type dispatchWorker struct {
	river.WorkerDefaults[DispatchBuildArgs]
	engine *Engine
}

// Work implements river.Worker.
// A failed attempt that will be retried is said in the build's log and in
// the server's log, with the time of the next try, so that an outage of
// GitHub shows where users and operators look.
func (w *dispatchWorker) Work(ctx context.Context, job *river.Job[DispatchBuildArgs]) error {
	err := w.engine.dispatchBuild(ctx, job.Args.BuildID, job.Attempt >= job.MaxAttempts)
	var snooze *river.JobSnoozeError
	if err == nil || errors.As(err, &snooze) || job.Attempt >= job.MaxAttempts || ctx.Err() != nil {
		return err
	}
	cause := err // without the "dispatch build <id>:" prefix the log does not need
	if inner := errors.Unwrap(err); inner != nil {
		cause = inner
	}
	next := time.Now().Add(w.delay(job.Attempt)).UTC()
	msg := fmt.Sprintf("Dispatch attempt %d of %d failed: %v; next try at %s", job.Attempt, job.MaxAttempts,
		cause, next.Format(time.RFC3339))
	if noteErr := w.engine.noteBuild(ctx, job.Args.BuildID, msg); noteErr != nil {
		return errors.Join(err, noteErr)
	}
	return err
}

// NextRetry waits at least Options.DispatchSettle, so that a run created by
// an attempt whose answer was lost is visible before the next attempt looks
// for it.
func (w *dispatchWorker) NextRetry(job *river.Job[DispatchBuildArgs]) time.Time {
	return time.Now().Add(w.delay(job.Attempt))
}

func (w *dispatchWorker) delay(attempt int) time.Duration {
	return max(w.engine.retryDelay(attempt), w.engine.opts.DispatchSettle)
}

// applyEventWorker applies a recorded webhook event.
type applyEventWorker struct {
	river.WorkerDefaults[ApplyEventArgs]
	engine *Engine
}

// Work implements river.Worker.
func (w *applyEventWorker) Work(ctx context.Context, job *river.Job[ApplyEventArgs]) error {
	if err := w.engine.applyEvent(ctx, job.Args, job.CreatedAt); err != nil {
		return err
	}
	if obs := w.engine.opts.Observer; obs != nil {
		obs.WebhookApplied(job.Args.Event.Event, w.engine.clock.Now().Sub(job.CreatedAt))
	}
	return nil
}

// NextRetry implements river.Worker.
func (w *applyEventWorker) NextRetry(job *river.Job[ApplyEventArgs]) time.Time {
	return time.Now().Add(w.engine.retryDelay(job.Attempt))
}

// reconcileWorker runs the periodic reconcile pass.
type reconcileWorker struct {
	river.WorkerDefaults[ReconcileArgs]
	engine *Engine
}

// Work implements river.Worker.
func (w *reconcileWorker) Work(ctx context.Context, _ *river.Job[ReconcileArgs]) error {
	return w.engine.reconcile(ctx)
}

// pollBuildWorker polls one stale build.
type pollBuildWorker struct {
	river.WorkerDefaults[PollBuildArgs]
	engine *Engine
}

// Work implements river.Worker.
func (w *pollBuildWorker) Work(ctx context.Context, job *river.Job[PollBuildArgs]) error {
	return w.engine.pollBuild(ctx, job.Args.BuildID)
}

// NextRetry implements river.Worker.
func (w *pollBuildWorker) NextRetry(job *river.Job[PollBuildArgs]) time.Time {
	return time.Now().Add(w.engine.retryDelay(job.Attempt))
}

// finalizeWorker fetches a completed build's log and artifact and sets its
// final status.
type finalizeWorker struct {
	river.WorkerDefaults[FinalizeBuildArgs]
	engine *Engine
}

// Work implements river.Worker.
func (w *finalizeWorker) Work(ctx context.Context, job *river.Job[FinalizeBuildArgs]) error {
	err := w.engine.finalizeBuild(ctx, job.Args)
	var snooze *river.JobSnoozeError
	if err != nil && !errors.As(err, &snooze) && job.Attempt >= job.MaxAttempts {
		// Out of retries: the build must still end, without its log.
		w.engine.log.Error("finalize: giving up", "build_id", job.Args.BuildID, "error", err)
		return w.engine.failBuild(ctx, job.Args.BuildID, ErrorOutcomeUnreadable, fmt.Sprintf("could not read the outcome from GitHub: %v", err), nil)
	}
	return err
}

// NextRetry implements river.Worker.
func (w *finalizeWorker) NextRetry(job *river.Job[FinalizeBuildArgs]) time.Time {
	return time.Now().Add(w.engine.retryDelay(job.Attempt))
}

// Timeout allows for downloading and storing a large job log.
func (w *finalizeWorker) Timeout(*river.Job[FinalizeBuildArgs]) time.Duration {
	return FinalizeTimeout
}

// cancelRunWorker cancels a workflow run on GitHub.
type cancelRunWorker struct {
	river.WorkerDefaults[CancelRunArgs]
	engine *Engine
}

// Work implements river.Worker.
func (w *cancelRunWorker) Work(ctx context.Context, job *river.Job[CancelRunArgs]) error {
	return w.engine.cancelRun(ctx, job.Args, job.Attempt >= job.MaxAttempts)
}

// NextRetry implements river.Worker.
func (w *cancelRunWorker) NextRetry(job *river.Job[CancelRunArgs]) time.Time {
	return time.Now().Add(w.engine.retryDelay(job.Attempt))
}

// retryDelay is the wait before retrying attempt n (1-based) of a job that
// failed: Options.RetryDelay doubled per attempt, capped at MaxRetryDelay.
func (e *Engine) retryDelay(attempt int) time.Duration {
	d := e.opts.RetryDelay
	for i := 1; i < attempt && d < e.opts.MaxRetryDelay; i++ {
		d *= 2
	}
	return min(d, e.opts.MaxRetryDelay)
}

// backoff is the wait before looking again for something GitHub has not
// made visible yet, after having waited for it so long: PollDelay at first,
// growing with the wait, capped at 15×PollDelay.
func (e *Engine) backoff(waited time.Duration) time.Duration {
	d := max(e.opts.PollDelay, waited/4)
	return min(d, 15*e.opts.PollDelay)
}

// forgeJobError turns a Forge failure into what River should do with the
// job: wait until a rate limit resets (a snooze: not counted as a failed
// attempt, nothing lost), or retry with backoff.
func (e *Engine) forgeJobError(err error) error {
	var limited *RateLimitError
	if errors.As(err, &limited) {
		wait := time.Until(limited.Until)
		if wait < 50*time.Millisecond {
			wait = 50 * time.Millisecond
		}
		e.log.Info("GitHub rate limit: waiting until it resets", "until", limited.Until, "secondary", limited.Secondary)
		return river.JobSnooze(wait)
	}
	return err
}

// insertTx inserts a River job inside tx.
func (e *Engine) insertTx(ctx context.Context, tx *gorm.DB, args river.JobArgs) error {
	opts, err := e.insertOptsTx(ctx, tx, args)
	if err != nil {
		return fmt.Errorf("insert %s job: %w", args.Kind(), err)
	}
	if _, err := e.inserter.InsertTx(ctx, tx, args, opts); err != nil {
		return fmt.Errorf("insert %s job: %w", args.Kind(), err)
	}
	return nil
}

// visibilityEntry is a cached RepositoryPrivate answer.
type visibilityEntry struct {
	private bool
	at      time.Time
}

// visibilityTTL is how long a repository's visibility is cached.
const visibilityTTL = 10 * time.Minute

// repoPrivate reports whether repo is private, cached for visibilityTTL so
// that successful builds do not each cost a GitHub request.
func (e *Engine) repoPrivate(ctx context.Context, repo string) (bool, error) {
	now := e.clock.Now()
	e.visibilityMu.Lock()
	c, ok := e.visibility[repo]
	e.visibilityMu.Unlock()
	if ok && now.Sub(c.at) < visibilityTTL {
		return c.private, nil
	}
	private, err := e.forge.RepositoryPrivate(ctx, repo)
	if err != nil {
		return false, fmt.Errorf("visibility of %s: %w", repo, err)
	}
	e.visibilityMu.Lock()
	e.visibility[repo] = visibilityEntry{private: private, at: now}
	e.visibilityMu.Unlock()
	return private, nil
}
