package workflows

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/templates"
)

// observation is what the engine learned about a build's run on GitHub, from
// a webhook or a poll. Either field may be nil.
type observation struct {
	run *Run
	job *Job
	// host is the GitHub server that reported it (a webhook's receiving
	// engine's ForgeHost); "" for this engine's own (a poll or a dispatch's
	// answer). A webhook may be applied by any process sharing the
	// database, whatever GitHub server that process talks to.
	host string
}

// applyEvent applies one recorded webhook event. The build is found by the
// run (forge host, repository, run id), else (workflow_run) by the build id
// in the run's display title; never by the run id alone.
// An event for an unknown run is ignored, except for a short grace period
// while some dispatch is still being recorded (GitHub may deliver the run's
// first events before the dispatch call has returned).
func (e *Engine) applyEvent(ctx context.Context, args ApplyEventArgs, enqueuedAt time.Time) error {
	ev := args.Event
	var obs observation
	var runID int64
	var title string
	repo := ev.Repo
	switch {
	case ev.Job != nil:
		obs.job = ev.Job
		runID = ev.Job.RunID
	case ev.Run != nil:
		run := *ev.Run
		if run.Repo == "" {
			run.Repo = ev.Repo
		}
		repo = run.Repo
		obs.run = &run
		runID = run.ID
		title = run.DisplayTitle
	}
	if runID == 0 || repo == "" {
		return e.markProcessed(ctx, args.DeliveryID)
	}
	ref := e.runRef(args.ForgeHost, repo, runID)
	obs.host = ref.Host
	now := e.clock.Now()
	unknown := false
	err := e.store.Tx(ctx, func(tx *gorm.DB) error {
		b, err := e.store.LockBuildByRunTx(ctx, tx, ref)
		if errors.Is(err, models.ErrNotFound) {
			if id := templates.RunNameBuildID(title); id != "" {
				b, err = e.store.LockBuildTx(ctx, tx, id)
				if err == nil && (!strings.EqualFold(repo, e.repoOf(b)) || (b.ForgeHost != "" && !strings.EqualFold(b.ForgeHost, ref.Host))) {
					err = models.ErrNotFound
				}
			}
		}
		if errors.Is(err, models.ErrNotFound) {
			unknown = true
			return nil
		}
		if err != nil {
			return err
		}
		if err := e.applyTx(ctx, tx, &b, obs); err != nil {
			return err
		}
		return models.MarkWebhookProcessedTx(ctx, tx, args.DeliveryID, now)
	})
	if err != nil {
		return fmt.Errorf("apply %s event of delivery %s: %w", ev.Event, args.DeliveryID, err)
	}
	if !unknown {
		return nil
	}
	if now.Sub(enqueuedAt) < 15*e.opts.PollDelay {
		n, err := e.store.BuildsAwaitingRun(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			return river.JobSnooze(e.opts.PollDelay)
		}
	}
	e.log.Debug("webhook for an unknown workflow run ignored", "delivery_id", args.DeliveryID, "event", ev.Event, "run", ref.String())
	return e.markProcessed(ctx, args.DeliveryID)
}

func (e *Engine) markProcessed(ctx context.Context, deliveryID string) error {
	return e.store.Tx(ctx, func(tx *gorm.DB) error {
		return models.MarkWebhookProcessedTx(ctx, tx, deliveryID, e.clock.Now())
	})
}

// applyTx applies an observation to b, locked in tx. Transitions are
// monotonic and idempotent: a terminal build never changes, a status never
// goes back, a step is logged once, and the outcome of a completed job is
// recorded once (the build turns terminal when its log and artifact are
// resolved, in finalizeBuild).
func (e *Engine) applyTx(ctx context.Context, tx *gorm.DB, b *models.Build, obs observation) error {
	if models.IsTerminal(b.Status) {
		return nil
	}
	if why := e.observationMismatch(*b, obs); why != "" {
		e.log.Warn("observation of another build's run ignored", "build_id", b.ID, "why", why)
		return nil
	}
	now := e.clock.Now()
	fields := map[string]any{}

	if run := obs.run; run != nil {
		switch {
		case b.RunID == nil:
			if err := e.recordRunTx(ctx, tx, b, *run, obs.host, now); err != nil {
				return err
			}
		case *b.RunID != run.ID:
			// A second run for one build: the engine never dispatches twice,
			// but should one exist, it must not run.
			e.log.Warn("second workflow run for a build: cancelling it", "build_id", b.ID, "run_id", run.ID, "build_run_id", *b.RunID)
			return e.insertTx(ctx, tx, CancelRunArgs{BuildID: b.ID, Repo: e.repoOf(*b), RunID: run.ID})
		}
		if runStatusRank(run.Status) > runStatusRank(b.RunStatus) {
			fields["run_status"] = run.Status
			b.RunStatus = run.Status
		}
	}

	job := obs.job
	if job != nil && b.JobID != nil && *b.JobID != job.ID {
		job = nil // another job of the run: the build follows its first job
	}
	if job != nil {
		if b.JobID == nil {
			id := job.ID
			fields["job_id"] = id
			b.JobID = &id
		}
		switch job.Status {
		case "in_progress":
			if err := e.startBuildingTx(ctx, tx, b, job, now); err != nil {
				return err
			}
		case "completed":
			if job.RunnerName != "" {
				if err := e.startBuildingTx(ctx, tx, b, job, now); err != nil {
					return err
				}
			}
		}
		if err := e.logStepsTx(ctx, tx, b, job, fields); err != nil {
			return err
		}
		recordProgress(b, job, fields)
		if job.Status == "completed" {
			if err := e.completeTx(ctx, tx, b, job.Conclusion, failureFromSteps(job), job.CompletedAt, fields); err != nil {
				return err
			}
		}
	}
	if run := obs.run; run != nil && run.Status == "completed" && (job == nil || job.Status != "completed") {
		if err := e.completeTx(ctx, tx, b, run.Conclusion, "", run.UpdatedAt, fields); err != nil {
			return err
		}
	}
	if len(fields) == 0 {
		return nil
	}
	return models.UpdateBuildTx(ctx, tx, b.ID, now, fields)
}

// startBuildingTx moves a queued build to building: its job runs.
func (e *Engine) startBuildingTx(ctx context.Context, tx *gorm.DB, b *models.Build, job *Job, now time.Time) error {
	if b.Status != models.StatusQueued {
		return nil
	}
	at := job.StartedAt
	if at.IsZero() {
		at = now
	}
	runner := job.RunnerName
	label := b.Runner
	if len(job.Labels) > 0 {
		label = job.Labels[0]
	}
	switch {
	case runner == "":
		runner = label
	case label != "" && label != runner:
		runner += " (" + label + ")"
	}
	if runner == "" {
		runner = "a GitHub runner"
	}
	_, err := e.transitionTx(ctx, tx, b, models.Transition{
		To: models.StatusBuilding, Reason: "job in progress", At: at,
		Level: models.LevelInfo, Message: "Job started on " + runner,
		Fields: map[string]any{"started_at": at.UTC(), "runner_name": job.RunnerName},
	}, now)
	if err != nil {
		return err
	}
	b.StartedAt = &at
	e.log.Info("build started", "build_id", b.ID, "runner", runner)
	return e.insertTx(ctx, tx, FollowStepsArgs{BuildID: b.ID})
}

// logStepsTx appends a log entry for each step start and finish of job not
// logged yet. Steps run in order, so "step n started" (2n) and "step n
// finished" (2n+1) form a sequence, and the highest one logged is all the
// engine needs to remember.
func (e *Engine) logStepsTx(ctx context.Context, tx *gorm.DB, b *models.Build, job *Job, fields map[string]any) error {
	type phase struct {
		mark int
		line models.LogLine
	}
	var phases []phase
	steps := orderedSteps(job)
	for i, st := range steps {
		started, ended, level := stepMessages(i+1, len(steps), st)
		skipped := st.Status == "completed" && st.Conclusion == "skipped"
		if !skipped && (st.Status == "in_progress" || st.Status == "completed") {
			phases = append(phases, phase{2 * st.Number, models.LogLine{
				Timestamp: orTime(st.StartedAt, st.CompletedAt, e.clock.Now()), Level: models.LevelInfo, Message: started,
			}})
		}
		if st.Status == "completed" {
			phases = append(phases, phase{2*st.Number + 1, models.LogLine{
				Timestamp: orTime(st.CompletedAt, st.StartedAt, e.clock.Now()), Level: level, Message: ended,
			}})
		}
	}
	sort.SliceStable(phases, func(i, j int) bool { return phases[i].mark < phases[j].mark })
	var lines []models.LogLine
	mark := b.StepLogMark
	for _, p := range phases {
		if p.mark > mark {
			lines = append(lines, p.line)
			mark = p.mark
		}
	}
	if len(lines) == 0 {
		return nil
	}
	if err := models.AppendLogTx(ctx, tx, b.ID, lines...); err != nil {
		return err
	}
	b.StepLogMark = mark
	fields["step_log_mark"] = mark
	return nil
}

// completeTx records that the build's job (or run) completed with
// conclusion and enqueues its finalization, once.
func (e *Engine) completeTx(ctx context.Context, tx *gorm.DB, b *models.Build, conclusion, failedStep string, at time.Time, fields map[string]any) error {
	if b.RunConclusion != "" {
		// Already known (say, from the run's event); a job event may still
		// name the step that failed.
		if failedStep != "" && b.RunConclusion == "failure" && b.FailureReason != failureReason("failure", failedStep) {
			b.FailureReason = failureReason("failure", failedStep)
			fields["failure_reason"] = b.FailureReason
			b.ErrorStep = failedStep
			fields["error_step"] = failedStep
		}
		return nil
	}
	if conclusion == "" {
		conclusion = "neutral"
	}
	b.RunConclusion = conclusion
	fields["run_conclusion"] = conclusion
	fields["run_status"] = "completed"
	if reason := failureReason(conclusion, failedStep); reason != "" {
		fields["failure_reason"] = reason
		b.FailureReason = reason
	}
	if failedStep != "" {
		fields["error_step"] = failedStep
		b.ErrorStep = failedStep
	}
	return e.insertTx(ctx, tx, FinalizeBuildArgs{BuildID: b.ID, CompletedAt: at.UTC()})
}

// failureFromSteps names the first step that failed.
func failureFromSteps(job *Job) string {
	for _, st := range job.Steps {
		if st.Conclusion == "failure" || st.Conclusion == "timed_out" {
			return st.Name
		}
	}
	return ""
}

// failureCode is the error code of a build whose job concluded so (see
// the Error* constants); step is the failed step, if known.
func failureCode(conclusion, step string) string {
	switch conclusion {
	case "failure":
		if step != "" {
			return ErrorStepFailed
		}
		return ErrorJobFailed
	case "timed_out":
		return ErrorTimedOut
	case "startup_failure":
		return ErrorStartupFailure
	case "action_required":
		return ErrorActionRequired
	case "cancelled":
		return ErrorCancelledOnGitHub
	}
	return ErrorJobFailed
}

// failureReason says why a job with conclusion failed ("" for success and
// cancelled).
func failureReason(conclusion, failedStep string) string {
	switch conclusion {
	case "success", "cancelled":
		return ""
	case "failure":
		if failedStep != "" {
			return fmt.Sprintf("step %q failed", failedStep)
		}
		return "the workflow job failed"
	case "timed_out":
		return "the workflow job timed out on GitHub"
	case "startup_failure":
		return "the workflow run failed to start (startup_failure): check the workflow file"
	case "action_required":
		return "the workflow run needs approval on GitHub (action_required)"
	}
	return fmt.Sprintf("the workflow job concluded %q", conclusion)
}

// runStatusRank orders GitHub run/job statuses so that a late event never
// moves the recorded one back.
func runStatusRank(s string) int {
	switch s {
	case "requested", "pending", "waiting", "queued":
		return 1
	case "in_progress":
		return 2
	case "completed":
		return 3
	}
	return 0
}

func orTime(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}
