package workflows

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/templates"
)

// completeJob makes the build's run and job complete on the fake GitHub
// with conclusion, the job having run (runner, steps) or not, and applies
// the job's event; it returns the finalize job's args.
func (tb *testBundle) completeJob(t *testing.T, runID int64, conclusion string, ran bool) FinalizeBuildArgs {
	t.Helper()
	now := tb.clock.Now()
	_, job := tb.forge.setRun(runID, func(r *Run, j *Job) {
		r.Status, r.Conclusion, r.UpdatedAt = "completed", conclusion, now
		j.Status, j.Conclusion, j.CompletedAt = "completed", conclusion, now
		if ran {
			j.RunnerName, j.StartedAt = "GitHub Actions 3", now.Add(-time.Minute)
			stepConclusion := conclusion
			if conclusion == "failure" {
				j.Steps = append(j.Steps, step(1, "Set up job", "completed", "success", now.Add(-time.Minute)))
			}
			j.Steps = append(j.Steps, step(2, "Build installer", "completed", stepConclusion, now.Add(-30*time.Second)))
		}
	})
	require.NoError(t, tb.engine.applyEvent(tb.ctx, ApplyEventArgs{DeliveryID: fmt.Sprint("d", runID, conclusion), Event: WebhookEvent{Event: "workflow_job", Repo: "acme/app", Job: &job}}, now))
	finals := tb.inserter.take(FinalizeBuildArgs{}.Kind())
	require.Len(t, finals, 1)
	return finals[0].(FinalizeBuildArgs)
}

// TestJobThatNeverStartedFinishesAtOnce: a job cancelled before a runner
// picked it up has no log, ever; the build ends without waiting for one.
func TestJobThatNeverStartedFinishesAtOnce(t *testing.T) {
	t.Parallel()
	tb := setup(t, models.DialectSQLite)
	b, runID := tb.dispatched(t)
	_, err := tb.engine.CancelBuild(tb.ctx, b.ID)
	require.NoError(t, err)
	args := tb.completeJob(t, runID, "cancelled", false)

	require.NoError(t, tb.engine.finalizeBuild(tb.ctx, args), "no snooze: there is no log to wait for")
	got := tb.build(t, b.ID)
	require.Equal(t, models.StatusCancelled, got.Status)
	require.Equal(t, args.CompletedAt, got.CompletedAt.UTC(), "ends when GitHub completed the run")
	require.Zero(t, tb.forge.count("JobLogs"), "never asks for a log that cannot exist")
	msgs := messages(tb.logs(t, b.ID))
	require.Equal(t, fmt.Sprintf("info: Job %d never started on a runner: it has no log", runID*10), msgs[len(msgs)-2])
	require.Equal(t, "warning: Build cancelled", msgs[len(msgs)-1])
}

// TestJobLogAnswersNeverCostTheOutcome: whatever GitHub answers for the job
// log, the build ends with its outcome and artifact, and its log says why
// the job's log is missing; only 404 and transient failures are waited on,
// and no longer than LogWaitTimeout.
func TestJobLogAnswersNeverCostTheOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		err      error
		waits    bool // snoozes until LogWaitTimeout
		wantNote string
	}{
		{"410 expired", &InvalidError{Status: 410, Message: "Gone"}, false, "GitHub answered 410 (Gone)"},
		{"403 without rate limit", &InvalidError{Status: 403, Message: "Resource not accessible by integration"}, false, "GitHub answered 403 (Resource not accessible by integration)"},
		{"422 other refusal", &InvalidError{Status: 422, Message: "Unprocessable"}, false, "GitHub answered 422"},
		{"500", &TransientError{Status: 500, Err: errors.New("Server Error")}, true, "GitHub answered 500: Server Error"},
		{"unreachable", &TransientError{Err: errors.New("connection refused")}, true, "GitHub unreachable: connection refused"},
		{"404 forever", ErrNotFound, true, "GitHub still answered 404 (not found) 2m0s after the job completed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, models.DialectSQLite)
			b, runID := tb.dispatched(t)
			tb.forge.mu.Lock()
			tb.forge.assets["acme/app|v1.2.3|app-1.2.3-mac-arm64.dmg"] = Asset{ID: 5, Name: "app-1.2.3-mac-arm64.dmg", Label: templates.AssetLabel("app-1.2.3-mac-arm64.dmg", b.ID), Size: 10}
			tb.forge.mu.Unlock()
			args := tb.completeJob(t, runID, "success", true)
			completed := tb.clock.Now()
			for range 40 {
				tb.forge.fail("JobLogs", fmt.Errorf("get log: %w", tt.err))
			}
			err := tb.engine.finalizeBuild(tb.ctx, args)
			if tt.waits {
				for isSnooze(err) {
					tb.clock.advance(20 * time.Second)
					err = tb.engine.finalizeBuild(tb.ctx, args)
				}
			}
			require.NoError(t, err)
			got := tb.build(t, b.ID)
			require.Equal(t, models.StatusSuccess, got.Status, "the log is not the outcome")
			require.Equal(t, int64(5), *got.ArtifactAssetID)
			require.False(t, got.LogsFetched)
			if tt.waits {
				require.GreaterOrEqual(t, tb.clock.Now().Sub(completed), 2*time.Minute)
				require.Less(t, tb.clock.Now().Sub(completed), 2*time.Minute+time.Minute, "gives up soon after LogWaitTimeout")
			} else {
				require.Equal(t, completed, tb.clock.Now(), "no wait for an answer that will not change")
			}
			msgs := messages(tb.logs(t, b.ID))
			note := msgs[len(msgs)-2]
			require.True(t, strings.HasPrefix(note, fmt.Sprintf("warning: The log of job %d could not be fetched: ", runID*10)), note)
			require.Contains(t, note, tt.wantNote)
			require.Equal(t, "success: Build completed successfully", msgs[len(msgs)-1])
		})
	}
}

// TestCancelledOnGitHub: a run cancelled on GitHub without DeskForge asking
// (a job's timeout-minutes, GitHub's UI) fails with the reason; cancelled
// is only for builds cancelled through DeskForge.
func TestCancelledOnGitHub(t *testing.T) {
	t.Parallel()
	for _, asked := range []bool{false, true} {
		t.Run(fmt.Sprint("asked=", asked), func(t *testing.T) {
			t.Parallel()
			tb := setup(t, models.DialectSQLite)
			b, runID := tb.dispatched(t)
			if asked {
				_, err := tb.engine.CancelBuild(tb.ctx, b.ID)
				require.NoError(t, err)
			}
			tb.forge.mu.Lock()
			tb.forge.logs[runID*10] = sampleLog
			tb.forge.mu.Unlock()
			require.NoError(t, tb.engine.finalizeBuild(tb.ctx, tb.completeJob(t, runID, "cancelled", true)))
			got := tb.build(t, b.ID)
			msgs := messages(tb.logs(t, b.ID))
			if asked {
				require.Equal(t, models.StatusCancelled, got.Status)
				require.Empty(t, got.ErrorCode)
				require.Equal(t, "warning: Build cancelled", msgs[len(msgs)-1])
				return
			}
			require.Equal(t, models.StatusFailed, got.Status)
			require.Equal(t, ErrorCancelledOnGitHub, got.ErrorCode)
			require.Equal(t, reasonCancelledOnGitHub, got.FailureReason)
			require.Equal(t, "error: Build failed: "+reasonCancelledOnGitHub, msgs[len(msgs)-1])
		})
	}
}

// TestFailureNamesStepAndFirstCompilerError: error.step is the failed step
// and the reason quotes the compiler's first error, not the runner's
// closing "exit code" line.
func TestFailureNamesStepAndFirstCompilerError(t *testing.T) {
	t.Parallel()
	tb := setup(t, models.DialectSQLite)
	b, runID := tb.dispatched(t)
	tb.forge.mu.Lock()
	tb.forge.logs[runID*10] = failingLog
	tb.forge.mu.Unlock()
	require.NoError(t, tb.engine.finalizeBuild(tb.ctx, tb.completeJob(t, runID, "failure", true)))
	got := tb.build(t, b.ID)
	require.Equal(t, models.StatusFailed, got.Status)
	require.Equal(t, ErrorStepFailed, got.ErrorCode)
	require.Equal(t, "Build installer", got.ErrorStep)
	require.Equal(t, `step "Build installer" failed: error[E0308]: mismatched types`, got.FailureReason)
}

// TestDispatchAttemptsAreLoggedAndTheLastFails: with GitHub unreachable,
// each failed attempt of the dispatch job (including the later ones, which
// first look for the run) leaves a warning in the build's log naming the
// next try, and the last attempt fails the build with the reason.
func TestDispatchAttemptsAreLoggedAndTheLastFails(t *testing.T) {
	t.Parallel()
	tb := setup(t, models.DialectSQLite)
	b := tb.newBuild(t)
	down := &TransientError{Err: errors.New("dial tcp: connection refused")}
	tb.forge.fail("DispatchWorkflow", down)
	tb.forge.fail("ListDispatchRuns", down, down, down)
	w := &dispatchWorker{engine: tb.engine}
	const maxAttempts = 4
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		job := riverJob(DispatchBuildArgs{BuildID: b.ID}, attempt, maxAttempts)
		err := w.Work(tb.ctx, job)
		if attempt < maxAttempts {
			require.Error(t, err, "attempt %d", attempt)
		} else {
			require.NoError(t, err)
		}
	}
	got := tb.build(t, b.ID)
	require.Equal(t, models.StatusFailed, got.Status)
	require.Equal(t, ErrorDispatchFailed, got.ErrorCode)
	require.Contains(t, got.FailureReason, "could not dispatch the workflow: look for its run: ")
	require.Contains(t, got.FailureReason, "connection refused")
	var warnings []string
	for _, m := range messages(tb.logs(t, b.ID)) {
		if strings.HasPrefix(m, "warning: Dispatch attempt ") {
			warnings = append(warnings, m)
		}
	}
	require.Len(t, warnings, maxAttempts-1)
	for i, m := range warnings {
		require.Contains(t, m, fmt.Sprintf("Dispatch attempt %d of %d failed: ", i+1, maxAttempts))
		require.Contains(t, m, "connection refused; next try at ")
	}
}

// riverJob is a job as River hands it to a worker on attempt n of max.
func riverJob[T river.JobArgs](args T, attempt, maxAttempts int) *river.Job[T] {
	return &river.Job[T]{JobRow: &rivertype.JobRow{Kind: args.Kind(), Attempt: attempt, MaxAttempts: maxAttempts}, Args: args}
}
