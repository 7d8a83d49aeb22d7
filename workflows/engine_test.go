package workflows

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/templates"
)

const sampleLog = "\ufeff2024-01-20T10:01:00.1234567Z ##[group]Run cargo build\n" +
	"2024-01-20T10:01:01.0000000Z \x1b[32mCompiling\x1b[0m app v1.2.3\n" +
	"2024-01-20T10:01:02.0000000Z ##[endgroup]\n" +
	"2024-01-20T10:01:03.0000000Z ##[warning]unused variable\n" +
	"2024-01-20T10:01:04.0000000Z Finished release\n"

const failingLog = "2024-01-20T10:01:00.0000000Z ##[group]Run cargo build\n" +
	"2024-01-20T10:01:01.0000000Z error[E0308]: mismatched types\n" +
	"  --> src/main.rs:3:5\n" +
	"2024-01-20T10:01:02.0000000Z ##[error]Process completed with exit code 101.\n"

func isSnooze(err error) bool {
	var s *river.JobSnoozeError
	return errors.As(err, &s)
}

// step builds a job step.
func step(n int, name, status, conclusion string, at time.Time) Step {
	s := Step{Number: n, Name: name, Status: status, Conclusion: conclusion, StartedAt: at}
	if status == "completed" {
		s.CompletedAt = at.Add(time.Second)
	}
	return s
}

func TestDispatchRecordsRunAndInputs(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, dialect)
			b, runID := tb.dispatched(t)

			require.Len(t, tb.forge.dispatches, 1)
			req := tb.forge.dispatches[0]
			require.Equal(t, DispatchRequest{Repo: "acme/app", Workflow: "deskforge.yml", Ref: "main", Inputs: map[string]string{
				"build_id": b.ID, "platform": "mac", "arch": "arm64", "version": "1.2.3", "runner": "macos-15", "config": `{"name":"App"}`,
			}}, req)
			require.Equal(t, models.StatusQueued, b.Status)
			require.NotNil(t, b.DispatchedAt)
			require.NotNil(t, b.DispatchAcceptedAt)
			require.Contains(t, b.RunHTMLURL, fmt.Sprint(runID))
			require.Equal(t, 0, tb.forge.count("ListDispatchRuns"), "a first attempt has nothing to look for")
			msgs := messages(tb.logs(t, b.ID))
			require.Equal(t, []string{"info: Build queued", fmt.Sprintf("info: Dispatched to workflow run %d (%s)", runID, b.RunHTMLURL)}, msgs)

			// A second run of the job (River retry after a lost commit) changes nothing.
			require.NoError(t, tb.engine.dispatchBuild(tb.ctx, b.ID, false))
			require.Len(t, tb.forge.dispatches, 1)
		})
	}
}

func TestDispatchFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		wantStatus string
		wantReason string
	}{
		{"invalid input", &InvalidError{Status: 422, Message: "Unexpected inputs provided: [\"bogus\"]"}, models.StatusFailed, "Unexpected inputs provided"},
		{"unknown workflow", fmt.Errorf("dispatch: %w", ErrNotFound), models.StatusFailed, "found no workflow deskforge.yml in acme/app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, models.DialectSQLite)
			b := tb.newBuild(t)
			tb.forge.fail("DispatchWorkflow", tt.err)
			require.NoError(t, tb.engine.dispatchBuild(tb.ctx, b.ID, false))
			b = tb.build(t, b.ID)
			require.Equal(t, tt.wantStatus, b.Status)
			require.Contains(t, b.FailureReason, tt.wantReason)
			require.NotNil(t, b.CompletedAt)
			logs := tb.logs(t, b.ID)
			last := logs[len(logs)-1]
			require.Equal(t, models.LevelError, last.Level)
			require.True(t, strings.HasPrefix(last.Message, "Build failed: "), last.Message)
			require.Contains(t, last.Message, tt.wantReason)
		})
	}
}

func TestDispatchRateLimitSnoozesUntilReset(t *testing.T) {
	t.Parallel()
	tb := setup(t, models.DialectSQLite)
	b := tb.newBuild(t)
	tb.forge.fail("DispatchWorkflow", &RateLimitError{Until: time.Now().Add(40 * time.Second), Secondary: true})
	err := tb.engine.dispatchBuild(tb.ctx, b.ID, true)
	var snooze *river.JobSnoozeError
	require.ErrorAs(t, err, &snooze)
	require.InDelta(t, 40, snooze.Duration.Seconds(), 2)
	require.Equal(t, models.StatusQueued, tb.build(t, b.ID).Status, "a rate limit is not a failure, even on the last attempt")

	// After the reset: look for a run (none), then dispatch once.
	require.NoError(t, tb.engine.dispatchBuild(tb.ctx, b.ID, false))
	require.Equal(t, 1, tb.forge.count("ListDispatchRuns"))
	require.Len(t, tb.forge.dispatches, 1)
	require.NotNil(t, tb.build(t, b.ID).RunID)
}

func TestDispatchLostAnswerFindsRunInsteadOfDispatchingAgain(t *testing.T) {
	t.Parallel()
	tb := setup(t, models.DialectSQLite)
	b := tb.newBuild(t)
	tb.forge.dispatchErrAfterCreate = &TransientError{Err: errors.New("connection reset")}
	err := tb.engine.dispatchBuild(tb.ctx, b.ID, false)
	var transient *TransientError
	require.ErrorAs(t, err, &transient)
	require.Nil(t, tb.build(t, b.ID).RunID)

	require.NoError(t, tb.engine.dispatchBuild(tb.ctx, b.ID, false))
	require.Len(t, tb.forge.dispatches, 1, "one build, one run")
	got := tb.build(t, b.ID)
	require.NotNil(t, got.RunID)
	require.NotNil(t, got.DispatchAcceptedAt)
}

func TestDispatchFinalTransientFailureFailsBuild(t *testing.T) {
	t.Parallel()
	tb := setup(t, models.DialectSQLite)
	b := tb.newBuild(t)
	tb.forge.fail("DispatchWorkflow", &TransientError{Status: 502, Err: errors.New("bad gateway")})
	require.NoError(t, tb.engine.dispatchBuild(tb.ctx, b.ID, true))
	got := tb.build(t, b.ID)
	require.Equal(t, models.StatusFailed, got.Status)
	require.Contains(t, got.FailureReason, "could not dispatch")
}

func TestDispatchGHESFindsRunByTitle(t *testing.T) {
	t.Parallel()
	tb := setup(t, models.DialectSQLite)
	tb.forge.noDetails = true
	b := tb.newBuild(t)
	require.True(t, isSnooze(tb.engine.dispatchBuild(tb.ctx, b.ID, false)))
	got := tb.build(t, b.ID)
	require.Nil(t, got.RunID)
	require.NotNil(t, got.DispatchAcceptedAt)

	require.NoError(t, tb.engine.dispatchBuild(tb.ctx, b.ID, false))
	got = tb.build(t, b.ID)
	require.NotNil(t, got.RunID)
	require.Len(t, tb.forge.dispatches, 1)
	msgs := messages(tb.logs(t, b.ID))
	require.Contains(t, msgs[len(msgs)-1], fmt.Sprintf("Dispatched to workflow run %d", *got.RunID))
}

func TestDispatchGHESRunNeverAppears(t *testing.T) {
	t.Parallel()
	tb, b := setupGHESRunLost(t)
	tb.clock.advance(5 * time.Minute)
	require.True(t, isSnooze(tb.engine.dispatchBuild(tb.ctx, b.ID, false)))
	tb.clock.advance(6 * time.Minute)
	require.NoError(t, tb.engine.dispatchBuild(tb.ctx, b.ID, false))
	got := tb.build(t, b.ID)
	require.Equal(t, models.StatusFailed, got.Status)
	require.Equal(t, reasonNoRun, got.FailureReason)
	require.Len(t, tb.forge.dispatches, 1, "an accepted dispatch is never repeated")
}

func TestCancelBeforeDispatchNeverDispatches(t *testing.T) {
	t.Parallel()
	tb := setup(t, models.DialectSQLite)
	b := tb.newBuild(t)
	got, err := tb.engine.CancelBuild(tb.ctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, models.StatusCancelled, got.Status)
	require.NotNil(t, got.CompletedAt)
	require.NoError(t, tb.engine.dispatchBuild(tb.ctx, b.ID, false))
	require.Empty(t, tb.forge.dispatches)
	require.Equal(t, []string{">queued", "queued>cancelled"}, tb.transitions(t, b.ID))

	_, err = tb.engine.CancelBuild(tb.ctx, b.ID)
	require.ErrorIs(t, err, models.ErrConflict)
}

func TestCancelRequestedDuringFailedDispatchCancels(t *testing.T) {
	t.Parallel()
	tb := setup(t, models.DialectSQLite)
	b := tb.newBuild(t)
	tb.forge.fail("DispatchWorkflow", &TransientError{Status: 500, Err: errors.New("boom")})
	require.Error(t, tb.engine.dispatchBuild(tb.ctx, b.ID, false))
	got, err := tb.engine.CancelBuild(tb.ctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, models.StatusQueued, got.Status, "a dispatch was attempted: wait and see")
	require.NoError(t, tb.engine.dispatchBuild(tb.ctx, b.ID, false))
	require.Equal(t, models.StatusCancelled, tb.build(t, b.ID).Status)
	require.Empty(t, tb.forge.dispatches)
}

func TestSuccessPath(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, dialect)
			b, runID := tb.dispatched(t)
			start := tb.clock.Now().Add(30 * time.Second)

			// in_progress with the first step running.
			_, job := tb.forge.setRun(runID, func(r *Run, j *Job) {
				r.Status, j.Status, j.RunnerName, j.StartedAt = "in_progress", "in_progress", "GitHub Actions 7", start
				j.Steps = []Step{step(1, "Set up job", "in_progress", "", start)}
			})
			apply := func(j Job) {
				t.Helper()
				err := tb.store.Tx(tb.ctx, func(tx *gorm.DB) error {
					locked, err := tb.store.LockBuildTx(tb.ctx, tx, b.ID)
					require.NoError(t, err)
					return tb.engine.applyTx(tb.ctx, tx, &locked, observation{job: &j})
				})
				require.NoError(t, err)
			}
			apply(job)
			apply(job) // duplicate
			got := tb.build(t, b.ID)
			require.Equal(t, models.StatusBuilding, got.Status)
			require.Equal(t, start, got.StartedAt.UTC())

			_, job = tb.forge.setRun(runID, func(r *Run, j *Job) {
				j.Steps = []Step{
					step(1, "Set up job", "completed", "success", start),
					step(2, "Build", "completed", "success", start.Add(time.Minute)),
					step(3, "Post cache", "completed", "skipped", start.Add(2*time.Minute)),
				}
				j.Status, j.Conclusion, j.CompletedAt = "completed", "success", start.Add(14*time.Minute)
				r.Status, r.Conclusion = "completed", "success"
			})
			queuedLate := job
			queuedLate.Status, queuedLate.Steps = "queued", nil
			apply(job)
			apply(queuedLate) // late event: ignored
			apply(job)        // duplicate completed: one finalize only
			require.Equal(t, models.StatusBuilding, tb.build(t, b.ID).Status, "success waits for the artifact")

			tb.forge.mu.Lock()
			tb.forge.logs[job.ID] = sampleLog
			tb.forge.assets["acme/app|v1.2.3|app-1.2.3-mac-arm64.dmg"] = Asset{ID: 77, Name: "app-1.2.3-mac-arm64.dmg", Label: templates.AssetLabel("app-1.2.3-mac-arm64.dmg", b.ID), Size: 1234,
				ContentType: "application/x-apple-diskimage", SHA256: strings.Repeat("ab", 32), BrowserDownloadURL: "https://github.com/acme/app/releases/download/v1.2.3/app.dmg"}
			tb.forge.mu.Unlock()
			finals := tb.inserter.take(FinalizeBuildArgs{}.Kind())
			require.Len(t, finals, 1)
			require.NoError(t, tb.engine.finalizeBuild(tb.ctx, finals[0].(FinalizeBuildArgs)))

			got = tb.build(t, b.ID)
			require.Equal(t, models.StatusSuccess, got.Status)
			require.Equal(t, start.Add(14*time.Minute), got.CompletedAt.UTC())
			require.Equal(t, int64(77), *got.ArtifactAssetID)
			require.Equal(t, int64(1234), *got.ArtifactSize)
			require.Equal(t, strings.Repeat("ab", 32), got.ArtifactSHA256)
			require.Equal(t, "app-1.2.3-mac-arm64.dmg", got.ArtifactName)
			require.False(t, got.RepoPrivate)
			require.True(t, got.LogsFetched)
			require.Equal(t, []string{">queued", "queued>building", "building>success"}, tb.transitions(t, b.ID))

			msgs := messages(tb.logs(t, b.ID))
			require.Equal(t, []string{
				"info: Build queued",
				fmt.Sprintf("info: Dispatched to workflow run %d (%s)", runID, got.RunHTMLURL),
				"info: Job started on GitHub Actions 7 (macos-15)",
				"info: Step 1/1 started: Set up job", // the first event listed one step
				"info: Step 1/3 finished (1 s)",
				"info: Step 2/3 started: Build",
				"info: Step 2/3 finished (1 s)",
				"info: Step 3/3 skipped: Post cache",
				"info: Run cargo build",
				"info: Compiling app v1.2.3",
				"warning: unused variable",
				"info: Finished release",
				"success: Build completed successfully",
			}, msgs)

			// Finalizing again (a duplicate job) changes nothing.
			require.NoError(t, tb.engine.finalizeBuild(tb.ctx, finals[0].(FinalizeBuildArgs)))
			require.Len(t, tb.logs(t, b.ID), len(msgs))

			// The download goes to browser_download_url (public repository).
			u, err := tb.engine.ArtifactURL(tb.ctx, got)
			require.NoError(t, err)
			require.Equal(t, got.ArtifactDownloadURL, u)
		})
	}
}

// TestRunCompletedBeforeItsJob: GitHub does not order its webhooks, and
// the run's completed event may be applied (and the build finalized)
// before its job's. The log still has every step, each once: finalization
// reads the job's steps that no event logged.
func TestRunCompletedBeforeItsJob(t *testing.T) {
	t.Parallel()
	for _, firstEvent := range []string{"none", "in_progress"} {
		t.Run(firstEvent, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, models.DialectSQLite)
			b, runID := tb.dispatched(t)
			start := tb.clock.Now().Add(30 * time.Second)
			if firstEvent == "in_progress" {
				_, job := tb.forge.setRun(runID, func(r *Run, j *Job) {
					r.Status, j.Status, j.RunnerName, j.StartedAt = "in_progress", "in_progress", "GitHub Actions 7", start
					j.Steps = []Step{step(1, "Set up job", "in_progress", "", start), step(2, "Build", "queued", "", time.Time{}), step(3, "Post cache", "queued", "", time.Time{})}
				})
				require.NoError(t, tb.engine.applyEvent(tb.ctx, jobEvent("acme/app", job), tb.clock.Now()))
			}
			run, job := tb.forge.setRun(runID, func(r *Run, j *Job) {
				j.Status, j.RunnerName, j.StartedAt = "completed", "GitHub Actions 7", start
				j.Steps = []Step{
					step(1, "Set up job", "completed", "success", start),
					step(2, "Build", "completed", "success", start.Add(time.Minute)),
					step(3, "Post cache", "completed", "skipped", start.Add(2*time.Minute)),
				}
				j.Conclusion, j.CompletedAt = "success", start.Add(14*time.Minute)
				r.Status, r.Conclusion, r.UpdatedAt = "completed", "success", start.Add(14*time.Minute)
			})
			tb.forge.mu.Lock()
			tb.forge.logs[job.ID] = sampleLog
			tb.forge.assets["acme/app|v1.2.3|app-1.2.3-mac-arm64.dmg"] = Asset{ID: 77, Name: "app-1.2.3-mac-arm64.dmg", Label: templates.AssetLabel("app-1.2.3-mac-arm64.dmg", b.ID), Size: 1234}
			tb.forge.mu.Unlock()
			require.NoError(t, tb.engine.applyEvent(tb.ctx, ApplyEventArgs{DeliveryID: "d-run", Event: WebhookEvent{Event: "workflow_run", Repo: "acme/app", Run: &run}}, tb.clock.Now()))
			require.NoError(t, tb.runFinalize(t))
			require.NoError(t, tb.engine.applyEvent(tb.ctx, jobEvent("acme/app", job), tb.clock.Now())) // late: the build ended

			got := tb.build(t, b.ID)
			require.Equal(t, models.StatusSuccess, got.Status)
			require.Equal(t, 3, got.ProgressSteps)
			var steps []string
			for _, m := range messages(tb.logs(t, b.ID)) {
				if strings.Contains(m, "Step ") {
					steps = append(steps, m)
				}
			}
			require.Equal(t, []string{
				"info: Step 1/3 started: Set up job",
				"info: Step 1/3 finished (1 s)",
				"info: Step 2/3 started: Build",
				"info: Step 2/3 finished (1 s)",
				"info: Step 3/3 skipped: Post cache",
			}, steps)
		})
	}
}

func TestFailurePathLogsErrorsAndReason(t *testing.T) {
	t.Parallel()
	tb := setup(t, models.DialectSQLite)
	b, runID := tb.dispatched(t)
	start := tb.clock.Now()
	_, job := tb.forge.setRun(runID, func(r *Run, j *Job) {
		r.Status, r.Conclusion = "completed", "failure"
		j.Status, j.Conclusion, j.RunnerName, j.StartedAt, j.CompletedAt = "completed", "failure", "GitHub Actions 3", start, start.Add(time.Minute)
		j.Steps = []Step{step(1, "Set up job", "completed", "success", start), step(2, "Build installer", "completed", "failure", start)}
		tb.forge.logs[j.ID] = failingLog
	})
	// Only the completed event arrived (in_progress dropped).
	require.NoError(t, tb.engine.applyEvent(tb.ctx, ApplyEventArgs{DeliveryID: "d1", Event: WebhookEvent{Event: "workflow_job", Action: "completed", Repo: "acme/app", Job: &job}}, tb.clock.Now()))
	require.NoError(t, tb.runFinalize(t))

	got := tb.build(t, b.ID)
	require.Equal(t, models.StatusFailed, got.Status)
	require.Equal(t, `step "Build installer" failed: error[E0308]: mismatched types`, got.FailureReason, "the compiler's error, not the exit code")
	require.Equal(t, []string{">queued", "queued>building", "building>failed"}, tb.transitions(t, b.ID))
	logs := tb.logs(t, b.ID)
	var errs []string
	for _, e := range logs {
		if e.Level == models.LevelError {
			errs = append(errs, e.Message)
		}
	}
	require.Equal(t, []string{
		"Step 2/2 failed (1 s): Build installer (failure)",
		"error[E0308]: mismatched types\n  --> src/main.rs:3:5",
		"Process completed with exit code 101.",
		`Build failed: step "Build installer" failed: error[E0308]: mismatched types`,
	}, errs)
	require.Equal(t, "error[E0308]: mismatched types\n  --> src/main.rs:3:5", logs[len(logs)-3].Message)
}

func TestFinalizeWithoutAssetFails(t *testing.T) {
	t.Parallel()
	tb := setup(t, models.DialectSQLite)
	b, runID := tb.dispatched(t)
	_, job := tb.forge.setRun(runID, func(r *Run, j *Job) {
		j.Status, j.Conclusion, j.RunnerName, j.StartedAt, j.CompletedAt = "completed", "success", "r1", time.Now(), time.Now()
		tb.forge.logs[j.ID] = sampleLog
	})
	require.NoError(t, tb.engine.applyEvent(tb.ctx, ApplyEventArgs{DeliveryID: "d", Event: WebhookEvent{Event: "workflow_job", Repo: "acme/app", Job: &job}}, tb.clock.Now()))
	require.NoError(t, tb.runFinalize(t))
	got := tb.build(t, b.ID)
	require.Equal(t, models.StatusFailed, got.Status)
	require.Equal(t, "workflow succeeded but uploaded no artifact named app-1.2.3-mac-arm64.dmg", got.FailureReason)
	_, err := tb.engine.ArtifactURL(tb.ctx, got)
	require.ErrorIs(t, err, ErrNotReady)
}

func TestFinalizeWaitsForLogThenGivesUp(t *testing.T) {
	t.Parallel()
	tb := setup(t, models.DialectSQLite)
	b, runID := tb.dispatched(t)
	_, job := tb.forge.setRun(runID, func(r *Run, j *Job) {
		j.Status, j.Conclusion, j.RunnerName, j.StartedAt, j.CompletedAt = "completed", "failure", "r1", tb.clock.Now(), tb.clock.Now()
	})
	require.NoError(t, tb.engine.applyEvent(tb.ctx, ApplyEventArgs{DeliveryID: "d", Event: WebhookEvent{Event: "workflow_job", Repo: "acme/app", Job: &job}}, tb.clock.Now()))
	args := tb.inserter.take(FinalizeBuildArgs{}.Kind())[0].(FinalizeBuildArgs)
	require.True(t, isSnooze(tb.engine.finalizeBuild(tb.ctx, args)), "404 right after completion: wait")
	tb.clock.advance(3 * time.Minute)
	require.NoError(t, tb.engine.finalizeBuild(tb.ctx, args))
	got := tb.build(t, b.ID)
	require.Equal(t, models.StatusFailed, got.Status)
	require.Equal(t, ErrorJobFailed, got.ErrorCode)
	require.False(t, got.LogsFetched)
	msgs := messages(tb.logs(t, b.ID))
	require.Equal(t, "warning: The log of job "+fmt.Sprint(job.ID)+" could not be fetched: GitHub still answered 404 (not found) 2m0s after the job completed", msgs[len(msgs)-2])
	require.Equal(t, "error: Build failed: the workflow job failed", msgs[len(msgs)-1])
}

func TestCancelDispatchedBuild(t *testing.T) {
	t.Parallel()
	tb := setup(t, models.DialectSQLite)
	b, runID := tb.dispatched(t)
	got, err := tb.engine.CancelBuild(tb.ctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, models.StatusQueued, got.Status)
	require.True(t, got.CancelRequested)
	jobs := tb.inserter.take(CancelRunArgs{}.Kind())
	require.Equal(t, []river.JobArgs{CancelRunArgs{BuildID: b.ID, Repo: "acme/app", RunID: runID}}, jobs)
	require.NoError(t, tb.engine.cancelRun(tb.ctx, jobs[0].(CancelRunArgs), false))
	require.Equal(t, []int64{runID}, tb.forge.cancelled)

	// GitHub confirms through the run's completion (webhook or poll).
	tb.forge.setRun(runID, func(r *Run, j *Job) {
		r.Status, r.Conclusion, r.UpdatedAt = "completed", "cancelled", tb.clock.Now()
		j.Status, j.Conclusion = "completed", "cancelled"
	})
	tb.clock.advance(2 * time.Minute)
	require.NoError(t, tb.engine.pollBuild(tb.ctx, b.ID))
	tb.forge.mu.Lock()
	tb.forge.logs[runID*10] = sampleLog
	tb.forge.mu.Unlock()
	require.NoError(t, tb.runFinalize(t))
	got = tb.build(t, b.ID)
	require.Equal(t, models.StatusCancelled, got.Status)
	require.Equal(t, []string{">queued", "queued>cancelled"}, tb.transitions(t, b.ID))

	// Cancelling a completed run is a no-op (409 from GitHub).
	require.NoError(t, tb.engine.cancelRun(tb.ctx, CancelRunArgs{BuildID: b.ID, Repo: "acme/app", RunID: runID}, false))
}

func TestReconcilePollsStaleBuilds(t *testing.T) {
	t.Parallel()
	tb := setup(t, models.DialectSQLite)
	b, runID := tb.dispatched(t)
	fresh := tb.newBuild(t)
	tb.clock.advance(61 * time.Second)
	tb.db.Gorm.Model(&models.Build{}).Where("id = ?", fresh.ID).Update("updated_at", tb.clock.Now())

	require.NoError(t, tb.engine.reconcile(tb.ctx))
	polls := tb.inserter.take(PollBuildArgs{}.Kind())
	require.Equal(t, []river.JobArgs{PollBuildArgs{BuildID: b.ID}}, polls)

	start := tb.clock.Now()
	tb.forge.setRun(runID, func(r *Run, j *Job) {
		r.Status, j.Status, j.RunnerName, j.StartedAt = "in_progress", "in_progress", "r9", start
	})
	require.NoError(t, tb.engine.pollBuild(tb.ctx, b.ID))
	got := tb.build(t, b.ID)
	require.Equal(t, models.StatusBuilding, got.Status)
	require.Equal(t, tb.clock.Now(), got.UpdatedAt.UTC(), "a poll makes the build fresh")
	require.NoError(t, tb.engine.reconcile(tb.ctx))
	require.Empty(t, tb.inserter.take(PollBuildArgs{}.Kind()))
}

func TestPollTimeouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		setRun     func(r *Run, j *Job)
		wait       time.Duration
		wantReason string
	}{
		{"building too long", func(r *Run, j *Job) {
			r.Status, j.Status, j.RunnerName, j.StartedAt = "in_progress", "in_progress", "r", time.Now().UTC()
		}, 7 * time.Hour, "timed out: still building after 6h0m0s"},
		{"queued too long", func(r *Run, j *Job) {}, 25 * time.Hour, "stayed queued for 24h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, models.DialectSQLite)
			b, runID := tb.dispatched(t)
			tb.forge.setRun(runID, tt.setRun)
			require.NoError(t, tb.engine.pollBuild(tb.ctx, b.ID))
			require.Empty(t, tb.inserter.take(CancelRunArgs{}.Kind()))
			tb.clock.advance(tt.wait)
			require.NoError(t, tb.engine.pollBuild(tb.ctx, b.ID))
			got := tb.build(t, b.ID)
			require.Equal(t, models.StatusFailed, got.Status)
			require.Contains(t, got.FailureReason, tt.wantReason)
			require.Equal(t, []river.JobArgs{CancelRunArgs{BuildID: b.ID, Repo: "acme/app", RunID: runID}}, tb.inserter.take(CancelRunArgs{}.Kind()))
		})
	}
}

func TestPollGHESNoRunTimeout(t *testing.T) {
	t.Parallel()
	tb, b := setupGHESRunLost(t)
	tb.clock.advance(11 * time.Minute)
	require.NoError(t, tb.engine.pollBuild(tb.ctx, b.ID))
	got := tb.build(t, b.ID)
	require.Equal(t, models.StatusFailed, got.Status)
	require.Equal(t, reasonNoRun, got.FailureReason)
}

func TestApplyEventMatchesByTitleAndIgnoresUnknownRuns(t *testing.T) {
	t.Parallel()
	tb := setup(t, models.DialectSQLite)
	tb.forge.noDetails = true
	b := tb.newBuild(t)
	require.True(t, isSnooze(tb.engine.dispatchBuild(tb.ctx, b.ID, false)))

	// A workflow_job event for the not-yet-known run: retried shortly while a dispatch awaits its run.
	jobEv := WebhookEvent{Event: "workflow_job", Action: "queued", Repo: "acme/app", Job: &Job{ID: 5, RunID: 1001, Status: "queued"}}
	require.True(t, isSnooze(tb.engine.applyEvent(tb.ctx, ApplyEventArgs{DeliveryID: "j", Event: jobEv}, tb.clock.Now())))

	run := tb.forge.runs[1001]
	ev := WebhookEvent{Event: "workflow_run", Action: "requested", Repo: "acme/app", Run: run}
	require.NoError(t, tb.engine.applyEvent(tb.ctx, ApplyEventArgs{DeliveryID: "r", Event: ev}, tb.clock.Now()))
	got := tb.build(t, b.ID)
	require.NotNil(t, got.RunID)
	require.Equal(t, int64(1001), *got.RunID)

	// The dispatch job, waking up, sees the run and stops.
	require.NoError(t, tb.engine.dispatchBuild(tb.ctx, b.ID, false))
	require.Len(t, tb.forge.dispatches, 1)

	// A run nobody knows (another tool's): ignored once no dispatch awaits a run.
	other := WebhookEvent{Event: "workflow_run", Repo: "acme/app", Run: &Run{ID: 999, DisplayTitle: "CI on main", Status: "queued"}}
	require.NoError(t, tb.engine.applyEvent(tb.ctx, ApplyEventArgs{DeliveryID: "o", Event: other}, tb.clock.Now()))
	stray := WebhookEvent{Event: "workflow_job", Repo: "acme/app", Job: &Job{ID: 6, RunID: 998, Status: "queued"}}
	require.NoError(t, tb.engine.applyEvent(tb.ctx, ApplyEventArgs{DeliveryID: "s", Event: stray}, tb.clock.Now()))
}

func TestSecondRunOfABuildIsCancelled(t *testing.T) {
	t.Parallel()
	tb := setup(t, models.DialectSQLite)
	b, runID := tb.dispatched(t)
	dup := &Run{ID: runID + 500, DisplayTitle: "deskforge " + b.ID + " mac-arm64 v1.2.3", Status: "queued"}
	require.NoError(t, tb.engine.applyEvent(tb.ctx, ApplyEventArgs{DeliveryID: "x", Event: WebhookEvent{Event: "workflow_run", Repo: "acme/app", Run: dup}}, tb.clock.Now()))
	require.Equal(t, []river.JobArgs{CancelRunArgs{BuildID: b.ID, Repo: "acme/app", RunID: runID + 500}}, tb.inserter.take(CancelRunArgs{}.Kind()))
	require.Equal(t, runID, *tb.build(t, b.ID).RunID)
}

func TestRecordWebhookDedupesDeliveries(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, dialect)
			ev := &WebhookEvent{Event: "workflow_job", Action: "queued", Repo: "acme/app", Job: &Job{ID: 1, RunID: 2, Status: "queued"}}
			fresh, err := tb.engine.RecordWebhook(tb.ctx, Delivery{ID: "guid-1", Event: "workflow_job", HookID: "7"}, ev)
			require.NoError(t, err)
			require.True(t, fresh)
			fresh, err = tb.engine.RecordWebhook(tb.ctx, Delivery{ID: "guid-1", Event: "workflow_job", HookID: "7"}, ev)
			require.NoError(t, err)
			require.False(t, fresh)
			require.Len(t, tb.inserter.take(ApplyEventArgs{}.Kind()), 1)

			fresh, err = tb.engine.RecordWebhook(tb.ctx, Delivery{ID: "guid-2", Event: "ping"}, nil)
			require.NoError(t, err)
			require.True(t, fresh)
			require.Empty(t, tb.inserter.take(ApplyEventArgs{}.Kind()))
			var d models.WebhookDelivery
			require.NoError(t, tb.db.Gorm.Where("delivery_id = ?", "guid-2").Take(&d).Error)
			require.NotNil(t, d.ProcessedAt)

			_, err = tb.engine.RecordWebhook(tb.ctx, Delivery{}, nil)
			require.ErrorIs(t, err, models.ErrInvalid)
		})
	}
}

func TestRetryDelayAndBackoff(t *testing.T) {
	t.Parallel()
	e := NewEngine(nil, nil, nil, nil, Options{})
	require.Equal(t, time.Second, e.retryDelay(1))
	require.Equal(t, 8*time.Second, e.retryDelay(4))
	require.Equal(t, 5*time.Minute, e.retryDelay(40))
	require.Equal(t, 2*time.Second, e.backoff(0))
	require.Equal(t, 30*time.Second, e.backoff(time.Hour))
}

func TestArtifactURLByVisibilityAndDraft(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		private, draft bool
		wantSigned     bool
	}{
		{"public, published: browser_download_url", false, false, false},
		{"public, draft: signed URL", false, true, true},
		{"private: signed URL", true, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, models.DialectSQLite)
			tb.forge.private = tt.private
			b, runID := tb.dispatched(t)
			_, job := tb.forge.setRun(runID, func(r *Run, j *Job) {
				j.Status, j.Conclusion, j.RunnerName, j.StartedAt, j.CompletedAt = "completed", "success", "r", tb.clock.Now(), tb.clock.Now()
				tb.forge.logs[j.ID] = sampleLog
				tb.forge.assets["acme/app|v1.2.3|app-1.2.3-mac-arm64.dmg"] = Asset{ID: 5, Name: "app-1.2.3-mac-arm64.dmg", Label: templates.AssetLabel("app-1.2.3-mac-arm64.dmg", b.ID), Size: 1,
					BrowserDownloadURL: "https://github.com/acme/app/releases/download/v1.2.3/app-1.2.3-mac-arm64.dmg", Draft: tt.draft}
			})
			require.NoError(t, tb.engine.applyEvent(tb.ctx, ApplyEventArgs{DeliveryID: "d", Event: WebhookEvent{Event: "workflow_job", Repo: "acme/app", Job: &job}}, tb.clock.Now()))
			require.NoError(t, tb.runFinalize(t))
			got := tb.build(t, b.ID)
			require.Equal(t, models.StatusSuccess, got.Status)
			u, err := tb.engine.ArtifactURL(tb.ctx, got)
			require.NoError(t, err)
			require.Equal(t, tt.wantSigned, strings.HasPrefix(u, "https://signed.example/5"), u)
		})
	}
}

func TestRunListingsAreShared(t *testing.T) {
	t.Parallel()
	tb := setup(t, models.DialectSQLite)
	tb.engine.opts.PollDelay = time.Minute
	since := time.Now().Add(-time.Minute)
	for i := 0; i < 5; i++ {
		_, err := tb.engine.listDispatchRuns(tb.ctx, "acme/app", "deskforge.yml", since.Add(time.Duration(i)*time.Second), since)
		require.NoError(t, err)
	}
	require.Equal(t, 1, tb.forge.count("ListDispatchRuns"), "one listing serves builds created in the same minute")
	// A build accepted after that listing started needs a new one.
	_, err := tb.engine.listDispatchRuns(tb.ctx, "acme/app", "deskforge.yml", since, time.Now().Add(time.Second))
	require.NoError(t, err)
	require.Equal(t, 2, tb.forge.count("ListDispatchRuns"))
	// Errors are not kept.
	tb.forge.fail("ListDispatchRuns", &TransientError{Status: 502, Err: errors.New("bad gateway")})
	_, err = tb.engine.listDispatchRuns(tb.ctx, "acme/app", "other.yml", since, since)
	require.Error(t, err)
	_, err = tb.engine.listDispatchRuns(tb.ctx, "acme/app", "other.yml", since, since)
	require.NoError(t, err)
	require.Equal(t, 4, tb.forge.count("ListDispatchRuns"))
}

func TestRecordWebhookConcurrentBurst(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, dialect)
			const distinct = 40
			var wg sync.WaitGroup
			var mu sync.Mutex
			freshCount := 0
			for i := 0; i < 2*distinct; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id := fmt.Sprintf("guid-%d", i%distinct)
					ev := &WebhookEvent{Event: "workflow_job", Action: "queued", Job: &Job{ID: int64(i), RunID: 7, Status: "queued"}}
					fresh, err := tb.engine.RecordWebhook(tb.ctx, Delivery{ID: id, Event: "workflow_job"}, ev)
					require.NoError(t, err)
					if fresh {
						mu.Lock()
						freshCount++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			require.Equal(t, distinct, freshCount, "each delivery id is new exactly once")
			require.Len(t, tb.inserter.take(ApplyEventArgs{}.Kind()), distinct)
			var n int64
			require.NoError(t, tb.db.Gorm.Model(&models.WebhookDelivery{}).Count(&n).Error)
			require.Equal(t, int64(distinct), n)
		})
	}
}

// setupGHESRunLost dispatches a build on a server without run details
// (GHES), then loses the run GitHub created (another workflow file, say), so
// the build never finds it by title.
func setupGHESRunLost(t *testing.T) (*testBundle, models.Build) {
	t.Helper()
	tb := setup(t, models.DialectSQLite)
	tb.forge.noDetails = true
	b := tb.newBuild(t)
	require.True(t, isSnooze(tb.engine.dispatchBuild(tb.ctx, b.ID, false)))
	tb.forge.mu.Lock()
	tb.forge.runs = map[int64]*Run{}
	tb.forge.mu.Unlock()
	return tb, b
}

// webhookFirstForge applies the new run's workflow_run webhook before the
// dispatch's answer reaches the engine, as GitHub's webhook may be applied
// (by another worker) while the dispatching job is still waiting on the
// answer.
type webhookFirstForge struct {
	*fakeForge
	apply func(Run)
}

func (f webhookFirstForge) DispatchWorkflow(ctx context.Context, req DispatchRequest) (DispatchResult, error) {
	res, err := f.fakeForge.DispatchWorkflow(ctx, req)
	if err == nil {
		f.fakeForge.mu.Lock()
		run := *f.fakeForge.runs[res.RunID]
		f.fakeForge.mu.Unlock()
		f.apply(run)
	}
	return res, err
}

// TestDispatchAnswerAfterTheRunsWebhook: when the run's webhook recorded
// the run first, the dispatch's answer records nothing more: the build has
// one run and says "Dispatched to workflow run" once (TestTwoDemosOnOnePostgres
// saw it twice once workers applied webhooks sooner).
func TestDispatchAnswerAfterTheRunsWebhook(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, dialect)
			var e *Engine
			forge := webhookFirstForge{fakeForge: tb.forge, apply: func(run Run) {
				args := ApplyEventArgs{DeliveryID: "delivery-" + fmt.Sprint(run.ID),
					Event: WebhookEvent{Event: "workflow_run", Action: "requested", Repo: run.Repo, Run: &run}}
				require.NoError(t, e.applyEvent(tb.ctx, args, tb.clock.Now()))
			}}
			e = NewEngine(tb.store, forge, tb.clock, slog.New(slog.DiscardHandler), Options{
				PublicURL: "http://deskforge.test", BuilderRepo: "acme/builder"})
			e.SetInserter(tb.inserter)
			b := tb.newBuild(t)

			require.NoError(t, e.dispatchBuild(tb.ctx, b.ID, false))
			got := tb.build(t, b.ID)
			require.NotNil(t, got.RunID)
			require.NotNil(t, got.DispatchAcceptedAt)
			require.Equal(t, []string{"info: Build queued", fmt.Sprintf("info: Dispatched to workflow run %d (%s)", *got.RunID, got.RunHTMLURL)},
				messages(tb.logs(t, b.ID)))
			require.Empty(t, tb.inserter.take(CancelRunArgs{}.Kind()), "the one run is not taken for a second")
		})
	}
}
