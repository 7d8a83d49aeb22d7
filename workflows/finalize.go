package workflows

import (
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
	if (jobID == nil || needStep) && b.RunID != nil {
		// The run's event came before (or instead of) its job's: ask GitHub
		// for the job, and which step failed.
		jobs, err := e.forge.ListJobs(ctx, repo, *b.RunID)
		if errors.Is(err, ErrNotFound) {
			// A run without jobs lists none; a 404 means the run is gone.
			return e.failBuild(ctx, b.ID, runGoneReason(*b.RunID), nil)
		}
		if err != nil {
			return e.forgeJobError(fmt.Errorf("finalize build %s: list jobs: %w", b.ID, err))
		}
		if job := pickJob(jobs, b.JobID); job != nil {
			id := job.ID
			jobID = &id
			if step := failureFromSteps(job); step != "" && b.RunConclusion == "failure" {
				b.FailureReason = failureReason("failure", step)
			}
		}
	}

	// (1) The job log.
	var logFile *os.File
	logNote := ""
	if jobID != nil {
		f, err := e.fetchJobLog(ctx, repo, *jobID)
		switch {
		case errors.Is(err, ErrNotFound):
			waited := e.clock.Now().Sub(completedAt)
			if waited < e.opts.LogWaitTimeout {
				return river.JobSnooze(e.backoff(waited))
			}
			logNote = fmt.Sprintf("The log of job %d was not available on GitHub %s after the job completed", *jobID, e.opts.LogWaitTimeout)
		case err != nil:
			return e.forgeJobError(fmt.Errorf("finalize build %s: %w", b.ID, err))
		default:
			logFile = f
			defer func() {
				f.Close()
				os.Remove(f.Name())
			}()
		}
	}

	// (2) The outcome, and for a success its artifact.
	to, reason := models.StatusFailed, b.FailureReason
	fields := map[string]any{"completed_at": completedAt.UTC(), "logs_fetched": logFile != nil}
	if jobID != nil && b.JobID == nil {
		fields["job_id"] = *jobID
	}
	switch b.RunConclusion {
	case "success":
		asset, err := e.forge.FindReleaseAsset(ctx, repo, templates.ReleaseTag(b.Version), b.AssetName)
		switch {
		case errors.Is(err, ErrNotFound):
			reason = fmt.Sprintf("workflow succeeded but uploaded no artifact named %s", b.AssetName)
			if b.RunID != nil {
				if _, err := e.forge.GetRun(ctx, repo, *b.RunID); errors.Is(err, ErrNotFound) {
					reason = runGoneReason(*b.RunID) // and its release with it
				}
			}
		case err != nil:
			return e.forgeJobError(fmt.Errorf("finalize build %s: find artifact: %w", b.ID, err))
		case templates.AssetLabelBuildID(asset.Label) != b.ID:
			reason = foreignAssetReason(asset, templates.ReleaseTag(b.Version))
		default:
			private, err := e.repoPrivate(ctx, repo)
			if err != nil {
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
	case "cancelled":
		to = models.StatusCancelled
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
		lastError := ""
		if logFile != nil {
			if lastError, err = e.storeJobLogTx(ctx, tx, b.ID, logFile, completedAt); err != nil {
				return err
			}
		}
		if logNote != "" {
			if err := models.AppendLogTx(ctx, tx, b.ID, models.LogLine{Timestamp: now, Level: models.LevelWarning, Message: logNote}); err != nil {
				return err
			}
		}
		t := models.Transition{To: to, At: completedAt, Fields: fields}
		switch to {
		case models.StatusSuccess:
			t.Reason, t.Level, t.Message = "job succeeded", models.LevelSuccess, "Build completed successfully"
			if err := e.supersedeTx(ctx, tx, locked, now); err != nil {
				return err
			}
		case models.StatusCancelled:
			t.Reason, t.Level, t.Message = "run cancelled on GitHub", models.LevelWarning, "Build cancelled"
		default:
			if b.RunConclusion == "failure" && strings.HasPrefix(locked.FailureReason, "step ") && !strings.HasPrefix(reason, "step ") {
				// A job event named the failed step meanwhile.
				reason = locked.FailureReason
			}
			if lastError != "" && b.RunConclusion == "failure" {
				reason += ": " + truncate(lastError, 300)
			}
			fields["failure_reason"] = reason
			t.Reason, t.Level, t.Message = reason, models.LevelError, "Build failed: "+reason
		}
		changed, err := models.TransitionBuildTx(ctx, tx, &locked, t, now)
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
// completion time). It returns the last error entry's message.
func (e *Engine) storeJobLogTx(ctx context.Context, tx *gorm.DB, buildID string, r io.Reader, fallback time.Time) (string, error) {
	p := joblog.NewParser(r)
	batch := make([]models.LogLine, 0, logBatchSize)
	lastTS := time.Time{}
	lastError := ""
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
	return lastError, nil
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
