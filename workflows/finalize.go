package workflows

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/templates"
	"github.com/deskforge/deskforge/workflows/joblog"
)

// logBatchSize is how many parsed log entries are inserted per statement.
const logBatchSize = 500

// finalizeBuild completes a build whose job (or run) finished on GitHub.
//
// Order, so that a build is never seen as success without its artifact nor
// terminal without its log: (1) fetch the job log to a temporary file
// (snoozing while GitHub still answers 404, up to Options.LogWaitTimeout);
// (2) for a successful job, find the release asset and the repository's
// visibility; (3) in one transaction, append the parsed log entries, set
// the artifact fields and the final status, and append the final entry
// ("Build completed successfully" or "Build failed: <reason>"). A retry
// after a failure before (3) repeats the GitHub calls; (3) is atomic, so
// entries are never stored twice.
func (e *Engine) finalizeBuild(ctx context.Context, args FinalizeBuildArgs) error {
	b, err := e.store.LoadBuild(ctx, args.BuildID)
	if errors.Is(err, models.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("finalize build %s: %w", args.BuildID, err)
	}
	if models.IsTerminal(b.Status) || b.RunConclusion == "" {
		return nil
	}
	if !e.servesBuild(b) {
		return e.foreignBuild(ctx, b)
	}
	repo := e.repoOf(b)
	completedAt := args.CompletedAt
	if completedAt.IsZero() {
		completedAt = e.clock.Now()
	}

	jobID := b.JobID
	needStep := b.RunConclusion == "failure" && !strings.HasPrefix(b.FailureReason, "step ")
	needJob := jobID == nil || needStep || b.StartedAt == nil
	neverStarted := false
	var stepsJob *Job // the job whose steps the log lacks
	if (needJob || !stepsLogged(b)) && b.RunID != nil {
		// The run's event came before (or instead of) its job's, or the job
		// may never have started: ask GitHub for the job, and which step
		// failed. When only the job's last steps are missing from the log
		// (its completed event is applied after this), the answer is a
		// courtesy: an error leaves the log without them.
		jobs, err := e.forge.ListJobs(ctx, repo, *b.RunID)
		if err != nil && !needJob {
			e.log.Debug("finalize: job steps not read", "build_id", b.ID, "err", err)
			jobs, err = nil, nil
		}
		if errors.Is(err, ErrNotFound) {
			// A run without jobs lists none; a 404 means the run is gone.
			return e.failBuild(ctx, b.ID, ErrorRunVanished, runGoneReason(*b.RunID), nil)
		}
		if err != nil {
			if refused, failErr := e.refusedOutcome(ctx, b.ID, "list the jobs of workflow run "+fmt.Sprint(*b.RunID), err); refused {
				return failErr
			}
			return e.forgeJobError(fmt.Errorf("finalize build %s: list jobs: %w", b.ID, err))
		}
		if job := pickJob(jobs, b.JobID); job != nil {
			stepsJob = job
			id := job.ID
			jobID = &id
			if step := failureFromSteps(job); step != "" && b.RunConclusion == "failure" {
				b.FailureReason = failureReason("failure", step)
				b.ErrorStep = step
			}
			neverStarted = jobNeverStarted(job)
		}
	}

	// (1) The job log. A missing log never costs the build its outcome:
	// after Options.LogWaitTimeout, or at once when GitHub says it is gone,
	// the build ends without it and its log says why.
	var logFile *os.File
	logNote, logNoteLevel := "", models.LevelWarning
	switch {
	case jobID == nil:
	case neverStarted:
		// Cancelled or skipped before a runner picked it up: GitHub will
		// never have a log for it (404 forever).
		logNote, logNoteLevel = fmt.Sprintf("Job %d never started on a runner: it has no log", *jobID), models.LevelInfo
	default:
		f, err := e.fetchJobLog(ctx, repo, *jobID)
		waited := e.clock.Now().Sub(completedAt)
		var limited *RateLimitError
		var invalid *InvalidError
		switch {
		case err == nil:
			logFile = f
			defer func() {
				f.Close()
				os.Remove(f.Name())
			}()
		case errors.As(err, &limited):
			return e.forgeJobError(fmt.Errorf("finalize build %s: %w", b.ID, err))
		case errors.Is(err, ErrNotFound):
			if waited < e.opts.LogWaitTimeout {
				return river.JobSnooze(e.backoff(waited))
			}
			logNote = fmt.Sprintf("The log of job %d could not be fetched: GitHub still answered 404 (not found) %s after the job completed", *jobID, e.opts.LogWaitTimeout)
		case errors.As(err, &invalid):
			// 410 (expired), 403 (no access), other refusals: asking again
			// will not help.
			logNote = fmt.Sprintf("The log of job %d could not be fetched: GitHub answered %d (%s)", *jobID, invalid.Status, invalid.Message)
		case ctx.Err() != nil:
			return fmt.Errorf("finalize build %s: %w", b.ID, err)
		default:
			// 5xx, network failures, unreadable answers: worth a few more
			// tries while the log may still come.
			if waited < e.opts.LogWaitTimeout {
				e.log.Warn("finalize: job log not fetched, trying again", "build_id", b.ID, "job_id", *jobID, "error", err)
				return river.JobSnooze(e.backoff(waited))
			}
			cause := err
			if transient := (*TransientError)(nil); errors.As(err, &transient) {
				cause = transient // "GitHub answered 503: …", "GitHub unreachable: …"
			}
			logNote = fmt.Sprintf("The log of job %d could not be fetched: %v", *jobID, cause)
		}
	}
	if logNote != "" && logNoteLevel == models.LevelWarning {
		e.log.Warn("finalize: build ends without its job log", "build_id", b.ID, "reason", logNote)
	}

	// (2) The outcome, and for a success its artifact.
	to, reason := models.StatusFailed, b.FailureReason
	code, step := failureCode(b.RunConclusion, b.ErrorStep), b.ErrorStep
	fields := map[string]any{"completed_at": completedAt.UTC(), "logs_fetched": logFile != nil}
	if jobID != nil && b.JobID == nil {
		fields["job_id"] = *jobID
	}
	switch b.RunConclusion {
	case "success":
		asset, err := e.forge.FindReleaseAsset(ctx, repo, templates.ReleaseTag(b.Version), b.AssetName)
		asset = e.labelFor(asset, b.ID)
		switch {
		case errors.Is(err, ErrNotFound):
			reason = fmt.Sprintf("workflow succeeded but uploaded no artifact named %s", b.AssetName)
			code = ErrorNoArtifact
			if b.RunID != nil {
				if _, err := e.forge.GetRun(ctx, repo, *b.RunID); errors.Is(err, ErrNotFound) {
					reason = runGoneReason(*b.RunID) // and its release with it
					code = ErrorRunVanished
				}
			}
		case err != nil:
			if refused, failErr := e.refusedOutcome(ctx, b.ID, "list the releases of "+repo, err); refused {
				return failErr
			}
			return e.forgeJobError(fmt.Errorf("finalize build %s: find artifact: %w", b.ID, err))
		case templates.AssetLabelBuildID(asset.Label) != b.ID:
			if later := e.replacedBy(ctx, b, asset); later != "" {
				to, reason = models.StatusSuccess, ""
				fields["superseded_by"] = later
			} else {
				reason = foreignAssetReason(asset, templates.ReleaseTag(b.Version))
			}
		default:
			private, err := e.repoPrivate(ctx, repo)
			if err != nil {
				if refused, failErr := e.refusedOutcome(ctx, b.ID, "read repository "+repo, err); refused {
					return failErr
				}
				return e.forgeJobError(fmt.Errorf("finalize build %s: %w", b.ID, err))
			}
			to, reason = models.StatusSuccess, ""
			size := asset.Size
			assetID := asset.ID
			fields["artifact_asset_id"] = assetID
			fields["artifact_name"] = asset.Name
			fields["artifact_size"] = size
			fields["artifact_sha256"] = asset.SHA256
			fields["artifact_content_type"] = asset.ContentType
			// A draft release's browser_download_url needs credentials:
			// keep none, so downloads use the signed URL.
			if !asset.Draft {
				fields["artifact_download_url"] = asset.BrowserDownloadURL
			}
			fields["repo_private"] = private
		}
	}
	if to == models.StatusFailed && reason == "" {
		reason = failureReason(b.RunConclusion, "")
	}

	// (3) Log entries, final status and final entry in one transaction.
	now := e.clock.Now()
	err = e.store.Tx(ctx, func(tx *gorm.DB) error {
		locked, err := e.store.LockBuildTx(ctx, tx, b.ID)
		if err != nil {
			return err
		}
		if models.IsTerminal(locked.Status) {
			return nil
		}
		if stepsJob != nil {
			if err := e.logStepsTx(ctx, tx, &locked, stepsJob, fields); err != nil {
				return err
			}
			recordProgress(&locked, stepsJob, fields)
		}
		firstError := ""
		if logFile != nil {
			if firstError, err = e.storeJobLogTx(ctx, tx, b.ID, logFile, completedAt); err != nil {
				return err
			}
		}
		if logNote != "" {
			if err := models.AppendLogTx(ctx, tx, b.ID, models.LogLine{Timestamp: now, Level: logNoteLevel, Message: logNote}); err != nil {
				return err
			}
		}
		to := to
		if b.RunConclusion == "cancelled" {
			// cancelled means cancelled through DeskForge; a cancel nobody
			// asked DeskForge for (a job's timeout-minutes, GitHub's UI) is
			// a failure, with that explanation.
			to, reason, code = models.StatusCancelled, "", ""
			if !locked.CancelRequested {
				to, reason, code = models.StatusFailed, reasonCancelledOnGitHub, ErrorCancelledOnGitHub
			}
		}
		t := models.Transition{To: to, At: completedAt, Fields: fields}
		switch to {
		case models.StatusSuccess:
			t.Reason, t.Level, t.Message = "job succeeded", models.LevelSuccess, "Build completed successfully"
			if err := e.supersedeTx(ctx, tx, locked, fields, now); err != nil {
				return err
			}
		case models.StatusCancelled:
			t.Reason, t.Level, t.Message = "cancelled through DeskForge", models.LevelWarning, "Build cancelled"
		default:
			if b.RunConclusion == "failure" && strings.HasPrefix(locked.FailureReason, "step ") && !strings.HasPrefix(reason, "step ") {
				// A job event named the failed step meanwhile.
				reason, code = locked.FailureReason, ErrorStepFailed
				step = cmp.Or(step, locked.ErrorStep)
			}
			if firstError != "" && b.RunConclusion == "failure" {
				reason += ": " + truncate(firstError, 300)
			}
			fields["failure_reason"] = reason
			fields["error_code"] = code
			fields["error_step"] = step
			t.Reason, t.Level, t.Message = reason, models.LevelError, "Build failed: "+reason
		}
		changed, err := e.transitionTx(ctx, tx, &locked, t, now)
		if changed {
			e.log.Info("build finished", "build_id", b.ID, "status", to, "reason", reason)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("finalize build %s: %w", b.ID, err)
	}
	return nil
}

// refusedOutcome ends a build at once, failed with ErrorOutcomeUnreadable,
// when GitHub refused (401, 403 without a rate limit, 422: an
// *InvalidError) a call its outcome depends on: asking again will not
// change the answer, and River's retries would keep the build building for
// more than an hour. It reports false, doing nothing, for other errors.
func (e *Engine) refusedOutcome(ctx context.Context, buildID, what string, err error) (bool, error) {
	var invalid *InvalidError
	if !errors.As(err, &invalid) {
		return false, nil
	}
	return true, e.failBuild(ctx, buildID, ErrorOutcomeUnreadable,
		fmt.Sprintf("could not read the outcome from GitHub: GitHub refused to %s: %d %s", what, invalid.Status, invalid.Message), nil)
}

// fetchJobLog downloads a job's raw log into a temporary file (constant
// memory, and no transaction held while the network is read).
func (e *Engine) fetchJobLog(ctx context.Context, repo string, jobID int64) (*os.File, error) {
	rc, err := e.forge.JobLogs(ctx, repo, jobID)
	if err != nil {
		return nil, fmt.Errorf("fetch log of job %d: %w", jobID, err)
	}
	defer rc.Close()
	f, err := os.CreateTemp("", "deskforge-joblog-*.txt")
	if err != nil {
		return nil, fmt.Errorf("fetch log of job %d: %w", jobID, err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, &TransientError{Err: fmt.Errorf("fetch log of job %d: %w", jobID, err)}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("fetch log of job %d: %w", jobID, err)
	}
	return f, nil
}

// storeJobLogTx parses a raw job log and appends its entries in batches.
// Entries without a timestamp get the previous entry's (or the job's
// completion time). It returns the error that explains the failure best:
// the first error entry other than the runner's closing "Process completed
// with exit code N." (the compiler's own message), else the last one.
func (e *Engine) storeJobLogTx(ctx context.Context, tx *gorm.DB, buildID string, r io.Reader, fallback time.Time) (string, error) {
	p := joblog.NewParser(r)
	batch := make([]models.LogLine, 0, logBatchSize)
	lastTS := time.Time{}
	firstError, lastError := "", ""
	for {
		entry, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("parse job log of build %s: %w", buildID, err)
		}
		ts := entry.Timestamp
		if ts.IsZero() {
			ts = orTime(lastTS, fallback)
		}
		lastTS = ts
		if entry.Level == models.LevelError {
			lastError, _, _ = strings.Cut(entry.Message, "\n")
			if firstError == "" && !strings.HasPrefix(lastError, "Process completed with exit code") {
				firstError = lastError
			}
		}
		batch = append(batch, models.LogLine{Timestamp: ts, Level: entry.Level, Message: entry.Message})
		if len(batch) == logBatchSize {
			if err := models.AppendLogTx(ctx, tx, buildID, batch...); err != nil {
				return "", err
			}
			batch = batch[:0]
		}
	}
	if err := models.AppendLogTx(ctx, tx, buildID, batch...); err != nil {
		return "", err
	}
	return cmp.Or(firstError, lastError), nil
}

// reasonCancelledOnGitHub is why a build whose run was cancelled on GitHub,
// without DeskForge asking, failed.
const reasonCancelledOnGitHub = "the workflow run was cancelled on GitHub, not through DeskForge: " +
	"a job exceeded its timeout-minutes, or someone cancelled the run on GitHub"

// jobNeverStarted reports whether a completed job never got a runner (it
// was cancelled or skipped while queued): GitHub has no log for it, ever.
func jobNeverStarted(job *Job) bool {
	if job.Status != "completed" || job.RunnerName != "" {
		return false
	}
	for _, st := range job.Steps {
		if !st.StartedAt.IsZero() && st.Conclusion != "skipped" {
			return false
		}
	}
	return true
}

// truncate shortens s to at most n bytes at a rune boundary, with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && (s[n]&0xC0) == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// labelFor returns asset as the engine judges it: on a forge whose assets
// carry no label (AssetLabeller), the asset of the build's name counts as
// uploaded by the build (it gets the label the build's template would have
// given it); elsewhere asset is returned unchanged.
func (e *Engine) labelFor(asset Asset, buildID string) Asset {
	if l, ok := e.forge.(AssetLabeller); ok && !l.LabelsAssets() && asset.Label == "" && asset.Name != "" {
		asset.Label = templates.AssetLabel(asset.Name, buildID)
	}
	return asset
}

// stepsLogged reports whether b's log has the end of its job's last step:
// the job's completed event was applied. GitHub does not order its
// webhooks, and the run's completion may be applied first.
func stepsLogged(b models.Build) bool {
	return b.ProgressSteps > 0 && b.StepLogMark >= 2*b.ProgressSteps+1
}
