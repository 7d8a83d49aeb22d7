package workflows

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/riverqueue/river"
	"golang.org/x/time/rate"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
)

// Live step progress. GitHub sends workflow_job webhooks when a job starts
// and when it completes, not per step, so while a build is building the
// engine follows its job's steps on the jobs endpoint: one FollowStepsArgs
// job per building build, snoozing Options.StepPollInterval between reads.
// The reads are conditional (If-None-Match): an unchanged job answers 304,
// which costs no rate limit. A process-wide limiter caps them at
// Options.StepPollsPerMinute; over the cap a build's turn is skipped. What is
// read goes through applyTx like a webhook, so the two paths share
// logStepsTx's StepLogMark and never log a step twice.

// FollowStepsArgs follows the steps of a building build's job until it
// completes. It is inserted when the build starts building.
type FollowStepsArgs struct {
	BuildID string `json:"build_id" river:"unique"`
}

// Kind implements river.JobArgs.
func (FollowStepsArgs) Kind() string { return "follow_steps" }

// InsertOpts implements river.JobArgsWithInsertOpts: one follower per build,
// yielding to the jobs that move builds (as polls do).
func (FollowStepsArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 3, Priority: 3, UniqueOpts: uniqueWhileActive()}
}

// followStepsWorker runs FollowStepsArgs.
type followStepsWorker struct {
	river.WorkerDefaults[FollowStepsArgs]
	engine *Engine
}

// Work implements river.Worker. The first read waits one interval after the
// build started: the job_started webhook (or poll) that started it carried
// the steps of that moment.
func (w *followStepsWorker) Work(ctx context.Context, job *river.Job[FollowStepsArgs]) error {
	if wait := w.engine.opts.StepPollInterval - time.Since(job.CreatedAt); wait > 0 {
		return river.JobSnooze(wait)
	}
	return w.engine.followSteps(ctx, job.Args.BuildID)
}

// newStepLimiter returns the process-wide limiter of step reads.
func newStepLimiter(perMinute int) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(float64(perMinute)/60), max(1, perMinute/60))
}

// followSteps reads the steps of a building build's job once and applies
// what changed. It returns a snooze until the next read while the build is
// building, nil when there is nothing more to follow. Following is best
// effort: a failed read is logged and tried again at the next turn (the
// reconciler and webhooks still move the build).
func (e *Engine) followSteps(ctx context.Context, buildID string) error {
	b, err := e.store.LoadBuild(ctx, buildID)
	if errors.Is(err, models.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("follow steps of build %s: %w", buildID, err)
	}
	if b.Status != models.StatusBuilding || b.RunConclusion != "" || b.RunID == nil {
		return nil
	}
	if !e.servesBuild(b) {
		return e.foreignBuild(ctx, b)
	}
	next := river.JobSnooze(e.opts.StepPollInterval)
	if !e.stepLimiter.Allow() {
		return next
	}
	jobs, err := e.forge.ListJobs(ctx, e.repoOf(b), *b.RunID)
	if err != nil {
		var limited *RateLimitError
		if errors.As(err, &limited) {
			return river.JobSnooze(max(time.Until(limited.Until), e.opts.StepPollInterval))
		}
		e.log.Debug("follow steps: reading the job failed", "build_id", b.ID, "err", err)
		return next
	}
	job := pickJob(jobs, b.JobID)
	if job == nil {
		return next
	}
	if job.Status != "completed" && !stepsAdvanced(b, job) {
		return next
	}
	err = e.store.Tx(ctx, func(tx *gorm.DB) error {
		locked, err := e.store.LockBuildTx(ctx, tx, b.ID)
		if err != nil {
			return err
		}
		return e.applyTx(ctx, tx, &locked, observation{job: job})
	})
	if err != nil {
		return fmt.Errorf("follow steps of build %s: %w", b.ID, err)
	}
	if job.Status == "completed" {
		return nil
	}
	return next
}

// stepsAdvanced reports whether job shows a step event (start or finish)
// that b has not logged yet, or other progress.
func stepsAdvanced(b models.Build, job *Job) bool {
	for _, st := range job.Steps {
		mark := 0
		switch st.Status {
		case "in_progress":
			mark = 2 * st.Number
		case "completed":
			mark = 2*st.Number + 1
		}
		if mark > b.StepLogMark {
			return true
		}
	}
	p := jobProgress(job)
	return p.Step != b.ProgressStep || p.Steps != b.ProgressSteps
}

// Progress is where a running job is: step Step of Steps (by position in
// the job's step list, 1-based), named Name. The zero value means unknown.
type Progress struct {
	Step  int
	Steps int
	Name  string
}

// orderedSteps returns job's steps by number (GitHub's numbers may have gaps).
func orderedSteps(job *Job) []Step {
	steps := make([]Step, 0, len(job.Steps))
	for _, st := range job.Steps {
		if st.Number > 0 {
			steps = append(steps, st)
		}
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].Number < steps[j].Number })
	return steps
}

// jobProgress is the step running in job, or the last one that ran.
func jobProgress(job *Job) Progress {
	steps := orderedSteps(job)
	var p Progress
	for i, st := range steps {
		ran := st.Status == "in_progress" || (st.Status == "completed" && st.Conclusion != "skipped")
		if ran {
			p = Progress{Step: i + 1, Steps: len(steps), Name: st.Name}
		}
	}
	return p
}

// recordProgress sets b's progress from job in fields. Progress only moves
// forward: a late webhook showing an earlier step changes nothing.
func recordProgress(b *models.Build, job *Job, fields map[string]any) {
	p := jobProgress(job)
	if p.Steps == 0 || p.Step < b.ProgressStep || (p.Step == b.ProgressStep && p.Steps == b.ProgressSteps && p.Name == b.ProgressName) {
		return
	}
	b.ProgressStep, b.ProgressSteps, b.ProgressName = p.Step, p.Steps, p.Name
	fields["progress_step"], fields["progress_steps"], fields["progress_name"] = p.Step, p.Steps, p.Name
}

// stepMessages returns the log messages of a step's start and of its end
// ("Step 3/12 started: Build installer", "Step 3/12 finished (42 s)"), and
// the end's level.
func stepMessages(pos, total int, st Step) (started, ended, level string) {
	n := fmt.Sprintf("Step %d/%d", pos, total)
	started = n + " started: " + st.Name
	took := ""
	if !st.StartedAt.IsZero() && !st.CompletedAt.IsZero() {
		took = fmt.Sprintf(" (%d s)", int64(st.CompletedAt.Sub(st.StartedAt).Round(time.Second)/time.Second))
	}
	level = models.LevelInfo
	switch st.Conclusion {
	case "failure", "timed_out":
		level, ended = models.LevelError, fmt.Sprintf("%s failed%s: %s (%s)", n, took, st.Name, st.Conclusion)
	case "cancelled":
		level, ended = models.LevelWarning, n+" cancelled: "+st.Name
	case "skipped":
		ended = n + " skipped: " + st.Name
	default:
		ended = n + " finished" + took
	}
	return started, ended, level
}
