package workflows

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/riverqueue/river"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/templates"
)

// Reasons a build fails for, as stored and shown in its log.
const (
	reasonNoRun = "no workflow run appeared for this build"
)

// Error codes of failed builds: the API's error.code (models.Build.ErrorCode).
const (
	ErrorNotConfigured     = "not_configured"      // no repository to dispatch to
	ErrorDispatchRefused   = "dispatch_refused"    // GitHub refused the dispatch (4xx)
	ErrorWorkflowNotFound  = "workflow_not_found"  // no such repository, workflow or ref
	ErrorDispatchFailed    = "dispatch_failed"     // GitHub unreachable or failing through the last attempt
	ErrorNoRun             = "no_run"              // the dispatch was accepted but no run appeared
	ErrorRunVanished       = "run_vanished"        // the run no longer exists on GitHub
	ErrorQueueTimeout      = "queue_timeout"       // no runner picked the job up in time
	ErrorTimedOut          = "timed_out"           // the build ran out of time (DeskForge's or GitHub's limit)
	ErrorStepFailed        = "step_failed"         // a step of the job failed
	ErrorJobFailed         = "job_failed"          // the job failed without naming a step
	ErrorStartupFailure    = "startup_failure"     // the workflow could not start (invalid workflow file)
	ErrorActionRequired    = "action_required"     // the run waits for an approval on GitHub
	ErrorCancelledOnGitHub = "cancelled_on_github" // cancelled on GitHub, not through DeskForge
	ErrorNoArtifact        = "no_artifact"         // the job succeeded without uploading the installer
	ErrorOutcomeUnreadable = "outcome_unreadable"  // GitHub kept failing while the outcome was read
)

// dispatchBuild dispatches a queued build to GitHub Actions: one build, one
// run, always. Once a dispatch was attempted (dispatched_at is set before
// GitHub is called), every later attempt first looks for a run of the build
// by its display title, so a dispatch whose answer was lost (network error,
// crash, restart) is never repeated when GitHub did create the run. When
// GitHub accepted the dispatch without naming the run (GHES), the job keeps
// looking for the run by its title, snoozing with backoff, until
// Options.NoRunTimeout.
func (e *Engine) dispatchBuild(ctx context.Context, buildID string, finalAttempt bool) error {
	b, err := e.store.LoadBuild(ctx, buildID)
	if errors.Is(err, models.ErrNotFound) {
		e.log.Warn("dispatch: build no longer exists", "build_id", buildID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("dispatch build %s: %w", buildID, err)
	}
	if models.IsTerminal(b.Status) || b.RunID != nil {
		return nil
	}
	if !e.servesBuild(b) {
		return e.foreignBuild(ctx, b)
	}
	target, err := e.dispatchTarget(b)
	if err != nil {
		return e.failBuild(ctx, b.ID, ErrorNotConfigured, err.Error(), nil)
	}

	if b.DispatchedAt != nil {
		run, found, err := e.findRun(ctx, b, target)
		if err != nil {
			return e.dispatchError(ctx, b.ID, fmt.Errorf("look for its run: %w", err), finalAttempt)
		}
		if found {
			return e.recordFoundRun(ctx, b.ID, run)
		}
		if b.DispatchAcceptedAt != nil {
			// GitHub accepted the dispatch: the run will show up; never
			// dispatch a second time.
			waited := e.clock.Now().Sub(*b.DispatchAcceptedAt)
			if waited > e.opts.NoRunTimeout {
				return e.failBuild(ctx, b.ID, ErrorNoRun, reasonNoRun, nil)
			}
			return river.JobSnooze(e.backoff(waited))
		}
		if b.CancelRequested {
			return e.cancelUndispatched(ctx, b.ID)
		}
		// The earlier attempt got no answer and created no run (retries
		// wait at least Options.DispatchSettle): dispatch again.
	} else {
		ok, err := e.markDispatchAttempt(ctx, b.ID)
		if err != nil {
			return err
		}
		if !ok {
			return nil // cancelled meanwhile
		}
	}

	res, err := e.forge.DispatchWorkflow(ctx, DispatchRequest{
		Repo: target.repo, Workflow: target.workflow, Ref: target.ref, Inputs: e.dispatchInputs(b),
	})
	var invalid *InvalidError
	switch {
	case err == nil:
	case errors.As(err, &invalid):
		return e.failBuild(ctx, b.ID, ErrorDispatchRefused, fmt.Sprintf("GitHub refused to dispatch %s in %s at %s: %s%s", target.workflow, target.repo, target.ref, invalid.Message, refusalHint(invalid.Status)), nil)
	case errors.Is(err, ErrNotFound):
		return e.failBuild(ctx, b.ID, ErrorWorkflowNotFound, fmt.Sprintf("GitHub found no workflow %s in %s at ref %s (404): check the project's repository, workflow and ref, and that the token can see the repository (GitHub answers 404, not 403, for a private repository it hides)", target.workflow, target.repo, target.ref), nil)
	default:
		return e.dispatchError(ctx, b.ID, err, finalAttempt)
	}
	return e.recordDispatch(ctx, b.ID, target, res)
}

// dispatchError handles a dispatch attempt that GitHub did not answer
// usefully (network error, 5xx, rate limit): a rate limit snoozes the job
// until it resets (nothing failed), the last attempt fails the build with
// the reason, any other attempt is retried (the worker logs it).
func (e *Engine) dispatchError(ctx context.Context, buildID string, err error, finalAttempt bool) error {
	var limited *RateLimitError
	if errors.As(err, &limited) {
		if !limited.Local {
			kind := "primary"
			if limited.Secondary {
				kind = "secondary"
			}
			if noteErr := e.noteBuild(ctx, buildID, fmt.Sprintf("GitHub %s rate limit: the dispatch waits until %s (GitHub: %s)",
				kind, limited.Until.UTC().Format(time.RFC3339), limited.Message)); noteErr != nil {
				return noteErr
			}
		}
		return e.forgeJobError(fmt.Errorf("dispatch build %s: %w", buildID, err))
	}
	if finalAttempt {
		return e.failBuild(ctx, buildID, ErrorDispatchFailed, fmt.Sprintf("could not dispatch the workflow: %v", err), nil)
	}
	return fmt.Errorf("dispatch build %s: %w", buildID, err)
}

// refusalHint says what to check after GitHub refused a dispatch with
// status: the token's validity (401) or its permissions (403; a 403 that is
// a rate limit never gets here).
func refusalHint(status int) string {
	switch status {
	case 401:
		return " (check the server's GitHub credentials: DESKFORGE_GITHUB_TOKEN or the GitHub App's)"
	case 403:
		return " (the token needs write access to Actions on the repository)"
	}
	return ""
}

// dispatchTarget is where a build runs.
type dispatchTarget struct {
	repo, workflow, ref string
}

func (e *Engine) dispatchTarget(b models.Build) (dispatchTarget, error) {
	t := dispatchTarget{repo: b.Repository, workflow: b.Workflow, ref: b.Ref}
	if t.repo == "" {
		t.repo = e.opts.BuilderRepo
		if t.workflow == "" {
			t.workflow = e.opts.BuilderWorkflow
		}
		if t.ref == "" {
			t.ref = e.opts.BuilderRef
		}
	}
	if t.workflow == "" {
		t.workflow = e.opts.BuilderWorkflow
	}
	if t.ref == "" {
		t.ref = "main"
	}
	if t.repo == "" {
		return t, errors.New("the project has no repository and the server has no builder repository (DESKFORGE_BUILDER_REPO)")
	}
	return t, nil
}

// dispatchInputs are the template contract's inputs, strings only.
func (e *Engine) dispatchInputs(b models.Build) map[string]string {
	runner := b.Runner
	if runner == "" {
		runner = e.opts.Runners.Runner(b.Platform, b.Arch)
	}
	inputs := map[string]string{
		templates.InputBuildID:  b.ID,
		templates.InputPlatform: b.Platform,
		templates.InputArch:     b.Arch,
		templates.InputVersion:  b.Version,
		templates.InputRunner:   runner,
	}
	if b.Config != "" {
		inputs[templates.InputConfig] = b.Config
	}
	return inputs
}

// markDispatchAttempt records, before GitHub is called, that a dispatch is
// being attempted. It reports false when the build is no longer dispatchable
// (cancelled meanwhile).
func (e *Engine) markDispatchAttempt(ctx context.Context, buildID string) (bool, error) {
	now := e.clock.Now()
	res := e.store.Gorm(ctx).Model(&models.Build{}).
		Where("id = ? AND status = ? AND dispatched_at IS NULL AND cancel_requested = ?", buildID, models.StatusQueued, false).
		Updates(map[string]any{"dispatched_at": now, "updated_at": now})
	if res.Error != nil {
		return false, fmt.Errorf("dispatch build %s: mark attempt: %w", buildID, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// findRun looks for the workflow run of b by its display title. Should
// GitHub hold several (which the engine never causes), the oldest is the
// build's and the others are cancelled.
func (e *Engine) findRun(ctx context.Context, b models.Build, target dispatchTarget) (Run, bool, error) {
	notBefore := b.CreatedAt
	switch {
	case b.DispatchAcceptedAt != nil:
		notBefore = *b.DispatchAcceptedAt
	case b.DispatchedAt != nil:
		notBefore = *b.DispatchedAt
	}
	runs, err := e.listDispatchRuns(ctx, target.repo, target.workflow, b.CreatedAt.Add(-time.Minute), notBefore)
	if err != nil {
		return Run{}, false, err
	}
	var mine []Run
	for _, r := range runs {
		if templates.RunNameBuildID(r.DisplayTitle) == b.ID {
			if r.Repo == "" {
				r.Repo = target.repo
			}
			mine = append(mine, r)
		}
	}
	if len(mine) == 0 {
		return Run{}, false, nil
	}
	sort.Slice(mine, func(i, j int) bool {
		if !mine[i].CreatedAt.Equal(mine[j].CreatedAt) {
			return mine[i].CreatedAt.Before(mine[j].CreatedAt)
		}
		return mine[i].ID < mine[j].ID
	})
	return mine[0], true, nil
}

// recordDispatch stores GitHub's acceptance of a dispatch and, when GitHub
// named the run, the run. Without a run id (GHES) the job snoozes and looks
// the run up by its title.
func (e *Engine) recordDispatch(ctx context.Context, buildID string, target dispatchTarget, res DispatchResult) error {
	now := e.clock.Now()
	err := e.store.Tx(ctx, func(tx *gorm.DB) error {
		b, err := e.store.LockBuildTx(ctx, tx, buildID)
		if err != nil {
			return err
		}
		if res.RunID == 0 {
			if err := models.UpdateBuildTx(ctx, tx, b.ID, now, map[string]any{"dispatch_accepted_at": now}); err != nil {
				return err
			}
			return models.AppendLogTx(ctx, tx, b.ID, models.LogLine{Timestamp: now, Level: models.LevelInfo,
				Message: fmt.Sprintf("Dispatched workflow %s in %s at %s; looking up its run by title", target.workflow, target.repo, target.ref)})
		}
		// The run's workflow_run webhook may have been applied already
		// (GitHub sends it as it creates the run, before answering the
		// dispatch): attachRunTx records the run only if it is not.
		return e.attachRunTx(ctx, tx, b, Run{ID: res.RunID, Repo: target.repo, HTMLURL: res.HTMLURL, Status: "queued"}, now)
	})
	if err != nil {
		return fmt.Errorf("dispatch build %s: record dispatch: %w", buildID, err)
	}
	if res.RunID == 0 {
		return river.JobSnooze(e.opts.PollDelay)
	}
	e.log.Info("build dispatched", "build_id", buildID, "run_id", res.RunID)
	return nil
}

// recordFoundRun stores a run found by title for a build.
func (e *Engine) recordFoundRun(ctx context.Context, buildID string, run Run) error {
	now := e.clock.Now()
	err := e.store.Tx(ctx, func(tx *gorm.DB) error {
		b, err := e.store.LockBuildTx(ctx, tx, buildID)
		if err != nil {
			return err
		}
		return e.attachRunTx(ctx, tx, b, run, now)
	})
	if err != nil {
		return fmt.Errorf("dispatch build %s: record run %d: %w", buildID, run.ID, err)
	}
	return nil
}

// attachRunTx records, b being locked in tx, that GitHub accepted b's
// dispatch and that run is its workflow run. The run is recorded once: if
// a webhook or a poll recorded it first, nothing more changes; a build that
// ended (cancelled, timed out) before its run was known has the run
// cancelled, and so has a build that already has another run.
func (e *Engine) attachRunTx(ctx context.Context, tx *gorm.DB, b models.Build, run Run, now time.Time) error {
	if models.IsTerminal(b.Status) && b.RunID == nil {
		return e.insertTx(ctx, tx, CancelRunArgs{BuildID: b.ID, Repo: run.Repo, RunID: run.ID})
	}
	if b.DispatchAcceptedAt == nil {
		if err := models.UpdateBuildTx(ctx, tx, b.ID, now, map[string]any{"dispatch_accepted_at": now}); err != nil {
			return err
		}
	}
	return e.applyTx(ctx, tx, &b, observation{run: &run})
}

// recordRunTx attaches run, of the GitHub server host ("" for this
// engine's), to b (whose run is not known yet): run id, URL and the
// "Dispatched to workflow run" log entry. A build whose cancellation was
// requested meanwhile gets its run cancelled.
func (e *Engine) recordRunTx(ctx context.Context, tx *gorm.DB, b *models.Build, run Run, host string, now time.Time) error {
	runID := run.ID
	ref := e.runRef(host, e.repoOf(*b), runID)
	if err := e.takeRunIDTx(ctx, tx, *b, ref, now); err != nil {
		return err
	}
	fields := map[string]any{"run_id": runID, "run_html_url": run.HTMLURL, "forge_host": ref.Host}
	if run.Status != "" {
		fields["run_status"] = run.Status
	}
	if err := models.UpdateBuildTx(ctx, tx, b.ID, now, fields); err != nil {
		return err
	}
	b.RunID = &runID
	b.RunHTMLURL = run.HTMLURL
	if e.opts.Observer != nil && b.DispatchedAt != nil {
		e.opts.Observer.RunFound(*b, now)
	}
	msg := fmt.Sprintf("Dispatched to workflow run %d", runID)
	if run.HTMLURL != "" {
		msg += " (" + run.HTMLURL + ")"
	}
	if err := models.AppendLogTx(ctx, tx, b.ID, models.LogLine{Timestamp: now, Level: models.LevelInfo, Message: msg}); err != nil {
		return err
	}
	if b.CancelRequested {
		return e.insertTx(ctx, tx, CancelRunArgs{BuildID: b.ID, Repo: e.repoOf(*b), RunID: runID})
	}
	return nil
}

// cancelUndispatched cancels a build whose dispatch never reached GitHub.
func (e *Engine) cancelUndispatched(ctx context.Context, buildID string) error {
	now := e.clock.Now()
	return e.store.Tx(ctx, func(tx *gorm.DB) error {
		b, err := e.store.LockBuildTx(ctx, tx, buildID)
		if err != nil {
			return err
		}
		_, err = e.transitionTx(ctx, tx, &b, models.Transition{
			To: models.StatusCancelled, Reason: "cancelled before it was dispatched", At: now,
			Level: models.LevelWarning, Message: "Build cancelled before it was dispatched",
			Fields: map[string]any{"completed_at": now},
		}, now)
		return err
	})
}

// failBuild moves a build to failed with reason (logged as "Build failed:
// reason") and error code, unless it is already terminal. fields are set
// with it.
func (e *Engine) failBuild(ctx context.Context, buildID, code, reason string, fields map[string]any) error {
	now := e.clock.Now()
	err := e.store.Tx(ctx, func(tx *gorm.DB) error {
		b, err := e.store.LockBuildTx(ctx, tx, buildID)
		if err != nil {
			return err
		}
		return e.failBuildTx(ctx, tx, &b, code, reason, now, fields)
	})
	if err != nil {
		return fmt.Errorf("fail build %s: %w", buildID, err)
	}
	return nil
}

func (e *Engine) failBuildTx(ctx context.Context, tx *gorm.DB, b *models.Build, code, reason string, at time.Time, fields map[string]any) error {
	all := map[string]any{"completed_at": at, "failure_reason": reason, "error_code": code}
	for k, v := range fields {
		all[k] = v
	}
	changed, err := e.transitionTx(ctx, tx, b, models.Transition{
		To: models.StatusFailed, Reason: reason, At: at,
		Level: models.LevelError, Message: "Build failed: " + reason, Fields: all,
	}, e.clock.Now())
	if changed {
		e.log.Warn("build failed", "build_id", b.ID, "code", code, "reason", reason)
	}
	return err
}

// repoOf is the repository a build runs in.
func (e *Engine) repoOf(b models.Build) string {
	if b.Repository != "" {
		return b.Repository
	}
	return e.opts.BuilderRepo
}
