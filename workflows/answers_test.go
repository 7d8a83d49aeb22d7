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
	"gorm.io/gorm"

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

// The answers of workflows/github/ANSWERS.md, as the GitHub client hands
// them to the engine (workflows/github's TestDocumentedAnswersThroughTheClient
// checks that each HTTP answer becomes this error), each ending the build
// right: terminal, with a clear reason, and not retried when asking again
// cannot help.

// dispatchRefusals are GitHub's refusals of a dispatch: none will change
// by asking again.
var dispatchRefusals = []struct {
	name string
	err  error
	code string
	want string // in the failure reason
}{
	{"422 no workflow_dispatch trigger", &InvalidError{Status: 422, Message: "Workflow does not have 'workflow_dispatch' trigger"},
		ErrorDispatchRefused, "GitHub refused to dispatch deskforge.yml in acme/app at main: Workflow does not have 'workflow_dispatch' trigger"},
	{"422 unknown ref", &InvalidError{Status: 422, Message: "No ref found for: main"},
		ErrorDispatchRefused, "GitHub refused to dispatch deskforge.yml in acme/app at main: No ref found for: main"},
	{"422 unexpected inputs", &InvalidError{Status: 422, Message: `Unexpected inputs provided: ["config"]`},
		ErrorDispatchRefused, `Unexpected inputs provided: ["config"]`},
	{"422 required input missing", &InvalidError{Status: 422, Message: "Required input 'signing' not provided"},
		ErrorDispatchRefused, "Required input 'signing' not provided"},
	{"403 token cannot write", &InvalidError{Status: 403, Message: "Resource not accessible by personal access token"},
		ErrorDispatchRefused, "Resource not accessible by personal access token (the token needs write access to Actions on the repository)"},
	{"401 bad credentials", &InvalidError{Status: 401, Message: "Bad credentials"},
		ErrorDispatchRefused, "Bad credentials (check the server's GitHub credentials"},
	{"404 workflow or repository", ErrNotFound,
		ErrorWorkflowNotFound, "GitHub found no workflow deskforge.yml in acme/app at ref main (404): check the project's repository, workflow and ref, and that the token can see the repository"},
}

// TestDispatchRefusalsFailAtOnce: a refused dispatch fails the build on the
// first attempt with GitHub's reason; it is neither retried nor looked for.
func TestDispatchRefusalsFailAtOnce(t *testing.T) {
	t.Parallel()
	for _, tt := range dispatchRefusals {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, models.DialectSQLite)
			b := tb.newBuild(t)
			tb.forge.fail("DispatchWorkflow", fmt.Errorf("dispatch deskforge.yml in acme/app at main: %w", tt.err))
			w := &dispatchWorker{engine: tb.engine}
			require.NoError(t, w.Work(tb.ctx, riverJob(DispatchBuildArgs{BuildID: b.ID}, 1, 25)), "no retry")

			got := tb.build(t, b.ID)
			require.Equal(t, models.StatusFailed, got.Status)
			require.Equal(t, tt.code, got.ErrorCode)
			require.Contains(t, got.FailureReason, tt.want)
			require.NotNil(t, got.CompletedAt)
			require.Equal(t, 1, tb.forge.count("DispatchWorkflow"))
			require.Zero(t, tb.forge.count("ListDispatchRuns"), "a refused dispatch created no run to look for")
			msgs := messages(tb.logs(t, b.ID))
			require.Equal(t, "error: Build failed: "+got.FailureReason, msgs[len(msgs)-1])
			require.Empty(t, tb.inserter.take(CancelRunArgs{}.Kind()))
		})
	}
}

// TestDispatchAnswersThatPass: a rate limit (403 or 429, primary or
// secondary) only delays the dispatch, saying so, and costs no attempt;
// 5xx and an unreachable GitHub are retried a bounded number of times, the
// last one failing the build. None dispatches twice once GitHub accepted.
func TestDispatchAnswersThatPass(t *testing.T) {
	t.Parallel()
	limit := func(secondary bool) error {
		return &RateLimitError{Until: time.Now().Add(time.Minute), Secondary: secondary, Message: "You have exceeded a secondary rate limit."}
	}
	t.Run("rate limits wait", func(t *testing.T) {
		t.Parallel()
		for _, secondary := range []bool{false, true} {
			tb := setup(t, models.DialectSQLite)
			b := tb.newBuild(t)
			tb.forge.fail("DispatchWorkflow", limit(secondary))
			w := &dispatchWorker{engine: tb.engine}
			err := w.Work(tb.ctx, riverJob(DispatchBuildArgs{BuildID: b.ID}, 1, 25))
			require.True(t, isSnooze(err), "a snooze, not a failed attempt: %v", err)
			got := tb.build(t, b.ID)
			require.Equal(t, models.StatusQueued, got.Status)
			kind := map[bool]string{false: "primary", true: "secondary"}[secondary]
			require.Contains(t, messages(tb.logs(t, b.ID)), "warning: GitHub "+kind+" rate limit: the dispatch waits until "+
				limitUntil(t, tb, b.ID)+" (GitHub: You have exceeded a secondary rate limit.)")

			// The limit lifted: the snoozed job runs again (same attempt).
			require.NoError(t, w.Work(tb.ctx, riverJob(DispatchBuildArgs{BuildID: b.ID}, 1, 25)))
			got = tb.build(t, b.ID)
			require.NotNil(t, got.RunID)
			require.Equal(t, 2, tb.forge.count("DispatchWorkflow"))
			require.Len(t, tb.forge.runs, 1, "one run")
		}
	})
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"500", &TransientError{Status: 500, Err: errors.New("Server Error")}},
		{"502", &TransientError{Status: 502, Err: errors.New("Server Error")}},
		{"503", &TransientError{Status: 503, Err: errors.New("Service Unavailable")}},
		{"garbage 200", &TransientError{Status: 200, Err: errors.New("decode: invalid character")}},
	} {
		t.Run(tt.name+" retried, bounded", func(t *testing.T) {
			t.Parallel()
			tb := setup(t, models.DialectSQLite)
			b := tb.newBuild(t)
			const maxAttempts = 5
			for range maxAttempts {
				tb.forge.fail("DispatchWorkflow", tt.err)
			}
			w := &dispatchWorker{engine: tb.engine}
			for attempt := 1; attempt <= maxAttempts; attempt++ {
				err := w.Work(tb.ctx, riverJob(DispatchBuildArgs{BuildID: b.ID}, attempt, maxAttempts))
				if attempt < maxAttempts {
					require.Error(t, err, "attempt %d is retried", attempt)
					require.Equal(t, models.StatusQueued, tb.build(t, b.ID).Status)
				} else {
					require.NoError(t, err)
				}
			}
			got := tb.build(t, b.ID)
			require.Equal(t, models.StatusFailed, got.Status)
			require.Equal(t, ErrorDispatchFailed, got.ErrorCode)
			require.Contains(t, got.FailureReason, "could not dispatch the workflow: ")
			require.Equal(t, maxAttempts, tb.forge.count("DispatchWorkflow"), "one dispatch per attempt, no more")
			require.Positive(t, tb.forge.count("ListDispatchRuns"), "a retry first looks for a run the lost answer may have created (listings are shared)")
			require.Empty(t, tb.forge.runs)
		})
	}
}

// limitUntil is the time the build's rate-limit entry names.
func limitUntil(t *testing.T, tb *testBundle, buildID string) string {
	t.Helper()
	for _, m := range messages(tb.logs(t, buildID)) {
		if _, rest, ok := strings.Cut(m, "the dispatch waits until "); ok {
			until, _, _ := strings.Cut(rest, " ")
			return until
		}
	}
	t.Fatal("no rate-limit entry")
	return ""
}

// TestCancelAnswers: whatever GitHub answers a cancel, the cancel job ends
// (bounded), and a refusal is said in the build's log; the build itself
// ends with its run, as GitHub reports it.
func TestCancelAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		err       error
		completed bool   // the run completed before the cancel arrived (409)
		final     bool   // the cancel job's last attempt
		retried   bool   // the job returns an error for River to retry
		note      string // warning entry in the build's log ("" = none)
	}{
		{name: "202 accepted"},
		{name: "409 already completed", completed: true},
		{name: "404 run gone", err: ErrNotFound},
		{name: "403 token cannot write", err: &InvalidError{Status: 403, Message: "Resource not accessible by personal access token"},
			note: "GitHub refused to cancel workflow run %d: Resource not accessible by personal access token (the token needs write access to Actions on the repository)"},
		{name: "401 bad credentials", err: &InvalidError{Status: 401, Message: "Bad credentials"},
			note: "GitHub refused to cancel workflow run %d: Bad credentials (check the server's GitHub credentials: DESKFORGE_GITHUB_TOKEN or the GitHub App's)"},
		{name: "503 retried", err: &TransientError{Status: 503, Err: errors.New("Service Unavailable")}, retried: true},
		{name: "503 on the last attempt", err: &TransientError{Status: 503, Err: errors.New("Service Unavailable")}, final: true,
			note: "Could not cancel workflow run %d: GitHub answered 503: Service Unavailable"},
		{name: "rate limit on the last attempt waits", err: &RateLimitError{Until: time.Now().Add(time.Minute), Secondary: true}, final: true, retried: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, models.DialectSQLite)
			b, runID := tb.dispatched(t)
			_, err := tb.engine.CancelBuild(tb.ctx, b.ID)
			require.NoError(t, err)
			cancels := tb.inserter.take(CancelRunArgs{}.Kind())
			require.Len(t, cancels, 1)
			if tt.completed {
				tb.forge.setRun(runID, func(r *Run, j *Job) { r.Status, r.Conclusion = "completed", "success" })
			}
			if tt.err != nil {
				tb.forge.fail("CancelRun", tt.err)
			}
			before := len(tb.logs(t, b.ID))
			err = tb.engine.cancelRun(tb.ctx, cancels[0].(CancelRunArgs), tt.final)
			if tt.retried {
				require.Error(t, err)
			} else {
				require.NoError(t, err, "the cancel job is done")
			}
			added := messages(tb.logs(t, b.ID)[before:])
			if tt.note == "" {
				require.Empty(t, added)
			} else {
				require.Equal(t, []string{"warning: " + fmt.Sprintf(tt.note, runID)}, added)
			}
			if tt.err == nil && !tt.completed {
				require.Equal(t, []int64{runID}, tb.forge.cancelled)
			}

			// The build ends with its run: cancelled when GitHub cancelled
			// it, else as the run concluded (the user asked, GitHub refused).
			conclusion := "success"
			if tt.err == nil && !tt.completed {
				conclusion = "cancelled"
			}
			args := tb.completeJob(t, runID, conclusion, true)
			tb.forge.mu.Lock()
			tb.forge.logs[runID*10] = sampleLog
			tb.forge.assets["acme/app|v1.2.3|app-1.2.3-mac-arm64.dmg"] = Asset{ID: 5, Name: "app-1.2.3-mac-arm64.dmg", Label: templates.AssetLabel("app-1.2.3-mac-arm64.dmg", b.ID), Size: 10}
			tb.forge.mu.Unlock()
			require.NoError(t, tb.engine.finalizeBuild(tb.ctx, args))
			got := tb.build(t, b.ID)
			require.True(t, models.IsTerminal(got.Status), got.Status)
			if conclusion == "cancelled" {
				require.Equal(t, models.StatusCancelled, got.Status)
			} else {
				require.Equal(t, models.StatusSuccess, got.Status, "GitHub ran it to the end: its outcome stands")
			}
		})
	}
}

// TestRefusedOutcomeEndsAtOnce: when GitHub refuses (401, 403) a read the
// outcome depends on, the completed build fails at once saying so, instead
// of staying building through River's retries (over an hour).
func TestRefusedOutcomeEndsAtOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		method string
		err    error
		want   string
	}{
		{"list releases 403", "FindReleaseAsset", &InvalidError{Status: 403, Message: "Resource not accessible by integration"},
			"could not read the outcome from GitHub: GitHub refused to list the releases of acme/app: 403 Resource not accessible by integration"},
		{"list releases 401", "FindReleaseAsset", &InvalidError{Status: 401, Message: "Bad credentials"},
			"GitHub refused to list the releases of acme/app: 401 Bad credentials"},
		{"list jobs 401", "ListJobs", &InvalidError{Status: 401, Message: "Bad credentials"},
			"GitHub refused to list the jobs of workflow run %d: 401 Bad credentials"},
		{"repository 403", "RepositoryPrivate", &InvalidError{Status: 403, Message: "Must have push access"},
			"GitHub refused to read repository acme/app: 403 Must have push access"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, models.DialectSQLite)
			b, runID := tb.dispatched(t)
			tb.forge.mu.Lock()
			tb.forge.logs[runID*10] = sampleLog
			tb.forge.assets["acme/app|v1.2.3|app-1.2.3-mac-arm64.dmg"] = Asset{ID: 5, Name: "app-1.2.3-mac-arm64.dmg", Label: templates.AssetLabel("app-1.2.3-mac-arm64.dmg", b.ID), Size: 10}
			tb.forge.mu.Unlock()
			var args FinalizeBuildArgs
			if tt.method == "ListJobs" {
				// Only the run's event arrived: finalize must ask for the job.
				now := tb.clock.Now()
				tb.forge.setRun(runID, func(r *Run, j *Job) {
					r.Status, r.Conclusion, r.UpdatedAt = "completed", "success", now
					j.Status, j.Conclusion, j.CompletedAt, j.RunnerName = "completed", "success", now, "GitHub Actions 2"
				})
				require.NoError(t, tb.store.Tx(tb.ctx, func(tx *gorm.DB) error {
					return models.UpdateBuildTx(tb.ctx, tx, b.ID, now, map[string]any{"run_conclusion": "success", "run_status": "completed"})
				}))
				args = FinalizeBuildArgs{BuildID: b.ID, CompletedAt: now}
			} else {
				args = tb.completeJob(t, runID, "success", true)
			}
			tb.forge.fail(tt.method, fmt.Errorf("wrapped: %w", tt.err))
			require.NoError(t, tb.engine.finalizeBuild(tb.ctx, args), "no retry")
			got := tb.build(t, b.ID)
			require.Equal(t, models.StatusFailed, got.Status)
			require.Equal(t, ErrorOutcomeUnreadable, got.ErrorCode)
			want := tt.want
			if strings.Contains(want, "%d") {
				want = fmt.Sprintf(want, runID)
			}
			require.Contains(t, got.FailureReason, want)
			msgs := messages(tb.logs(t, b.ID))
			require.Equal(t, "error: Build failed: "+got.FailureReason, msgs[len(msgs)-1])
		})
	}
}

// TestOverdueWhileGitHubFails: a build past the engine's own limits ends on
// them even while GitHub keeps failing (5xx, 401, unreachable) when it is
// polled; before its limit, a failing poll only retries.
func TestOverdueWhileGitHubFails(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"503", &TransientError{Status: 503, Err: errors.New("Service Unavailable")}},
		{"401", &InvalidError{Status: 401, Message: "Bad credentials"}},
		{"unreachable", &TransientError{Err: errors.New("dial tcp: connection refused")}},
	} {
		for _, building := range []bool{true, false} {
			t.Run(fmt.Sprint(tt.name, " building=", building), func(t *testing.T) {
				t.Parallel()
				tb := setup(t, models.DialectSQLite)
				b, runID := tb.dispatched(t)
				limit, code := tb.engine.opts.MaxQueueDuration, ErrorQueueTimeout
				if building {
					limit, code = tb.engine.opts.MaxBuildDuration, ErrorTimedOut
					tb.applyJob(t, b.ID, Job{ID: runID * 10, RunID: runID, Status: "in_progress", RunnerName: "GitHub Actions 1", StartedAt: tb.clock.Now()})
					require.Equal(t, models.StatusBuilding, tb.build(t, b.ID).Status)
				}

				tb.clock.advance(limit / 2)
				tb.forge.fail("GetRun", tt.err)
				require.Error(t, tb.engine.pollBuild(tb.ctx, b.ID), "within its limit: retried")
				require.False(t, models.IsTerminal(tb.build(t, b.ID).Status))

				tb.clock.advance(limit/2 + time.Minute)
				tb.forge.fail("GetRun", tt.err)
				require.Error(t, tb.engine.pollBuild(tb.ctx, b.ID), "just past its limit, GitHub failing: retried (the run may have moved on)")
				require.False(t, models.IsTerminal(tb.build(t, b.ID).Status))

				tb.clock.advance(overdueGrace)
				tb.forge.fail("GetRun", tt.err)
				require.NoError(t, tb.engine.pollBuild(tb.ctx, b.ID))
				got := tb.build(t, b.ID)
				require.Equal(t, models.StatusFailed, got.Status)
				require.Equal(t, code, got.ErrorCode)
				require.Contains(t, got.FailureReason, "timed out: ")
				require.Contains(t, got.FailureReason, "; GitHub could not be asked about the run: ")
				cancels := tb.inserter.take(CancelRunArgs{}.Kind())
				require.Len(t, cancels, 1, "the run is cancelled when GitHub answers again")
				require.Equal(t, runID, cancels[0].(CancelRunArgs).RunID)
			})
		}
	}
}

// TestRunGoneOnGitHub: GitHub answers 404 for a run that was deleted (the
// run and jobs operations list only 200; a deleted run's id answers 404):
// the build fails saying its run no longer exists, whether a poll or the
// finalization finds out.
func TestRunGoneOnGitHub(t *testing.T) {
	t.Parallel()
	for _, via := range []string{"poll", "finalize"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, models.DialectSQLite)
			b, runID := tb.dispatched(t)
			if via == "poll" {
				tb.forge.fail("GetRun", fmt.Errorf("get run: %w", ErrNotFound))
				require.NoError(t, tb.engine.pollBuild(tb.ctx, b.ID))
			} else {
				now := tb.clock.Now()
				require.NoError(t, tb.store.Tx(tb.ctx, func(tx *gorm.DB) error {
					return models.UpdateBuildTx(tb.ctx, tx, b.ID, now, map[string]any{"run_conclusion": "success", "run_status": "completed"})
				}))
				tb.forge.fail("ListJobs", fmt.Errorf("list jobs: %w", ErrNotFound))
				require.NoError(t, tb.engine.finalizeBuild(tb.ctx, FinalizeBuildArgs{BuildID: b.ID, CompletedAt: now}))
			}
			got := tb.build(t, b.ID)
			require.Equal(t, models.StatusFailed, got.Status)
			require.Equal(t, ErrorRunVanished, got.ErrorCode)
			require.Equal(t, runGoneReason(runID), got.FailureReason)
		})
	}
}
