package e2e

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/client"
	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/templates"
	"github.com/deskforge/deskforge/workflows"
	"github.com/deskforge/deskforge/workflows/ghsim"
)

// The engine against the answers GitHub gives beyond the happy path
// (issue 8): each test runs DeskForge, River, go-github and the simulator
// answering as GitHub documents, and checks the build's final status, its
// log and how long it took. The clock is real here (River and go-github
// wait on it), so the time bounds are derived from the configured
// timeouts, with slack for a loaded machine.

// hasEntry reports whether a log holds an entry of level containing text.
func hasEntry(logs []client.LogEntry, level, text string) bool {
	for _, l := range logs {
		if l.Level == level && strings.Contains(l.Message, text) {
			return true
		}
	}
	return false
}

// runOf returns the simulator's run of a build.
func (h *harness) runOf(buildID string) ghsim.RunInfo {
	h.t.Helper()
	for _, repo := range []string{builderRepo, appRepo} {
		for _, r := range h.sim.Runs(repo) {
			if templates.RunNameBuildID(r.DisplayTitle) == buildID {
				return r
			}
		}
	}
	h.t.Fatalf("no run for build %s", buildID)
	return ghsim.RunInfo{}
}

// TestSecondaryLimitWithoutRetryAfterFreezesNothing (issue 8, 1): GitHub
// refuses with a secondary limit that names no Retry-After and an
// x-ratelimit-reset an hour away. The build says it waits, and once GitHub
// lifts the limit, it and a build triggered after it succeed within a few
// of the configured waits: go-github v62 alone would have refused every
// call of the process until the reset, an hour later.
func TestSecondaryLimitWithoutRetryAfterFreezesNothing(t *testing.T) {
	t.Parallel()
	const wait = time.Second
	h := newHarness(t, config{webhooks: true, secondaryWait: wait, maxSecondaryWait: 4 * wait,
		faults: ghsim.Faults{SecondaryNoRetry: 1}})
	first := h.trigger("linux", "x64", "3.0.0")
	require.Eventually(t, func() bool { return h.sim.Counters().Total.RateLimited >= 2 }, 30*time.Second, 10*time.Millisecond)
	h.sim.SetFaults(ghsim.Faults{}) // GitHub lifts the limit
	lifted := time.Now()
	second := h.trigger("linux", "x64", "3.0.1")

	final := h.waitTerminal(60*time.Second, first.ID, second.ID)
	took := time.Since(lifted)
	for id, b := range final {
		require.Equal(t, "success", b.Status, id)
	}
	require.Less(t, took, 8*wait+20*time.Second, "no wait beyond what GitHub asks (the limit's reset was an hour away)")
	logs := h.logs(first.ID)
	require.True(t, hasEntry(logs, "warning", "GitHub secondary rate limit: the dispatch waits until"), "the build says it waits: %v", logs)
	require.Equal(t, map[string]int{first.ID: 1, second.ID: 1}, h.runsByBuild())
}

// TestJobThatNeverStartedEndsAtOnce (issue 8, 2): a build cancelled while
// its job waits for a runner has no job log, ever; it ends as soon as
// GitHub completes the run, not LogWaitTimeout later.
func TestJobThatNeverStartedEndsAtOnce(t *testing.T) {
	t.Parallel()
	const logWait = time.Minute
	h := newHarness(t, config{webhooks: true, logWait: logWait,
		scenario: []ghsim.Rule{{Prerelease: "queued", Outcome: ghsim.OutcomeHangQueued}}})
	b := h.trigger("mac", "arm64", "1.0.0-queued")
	require.Eventually(t, func() bool {
		row, err := h.store.GetBuild(h.ctx, b.ID)
		return err == nil && row.RunID != nil
	}, 30*time.Second, 10*time.Millisecond)
	_, err := h.typed().CancelBuild(h.ctx, b.ID)
	require.NoError(t, err)
	cancelled := time.Now()

	got := h.waitTerminal(logWait, b.ID)[b.ID]
	require.Less(t, time.Since(cancelled), logWait/2, "did not wait for a log that cannot exist")
	require.Equal(t, "cancelled", got.Status)
	require.Nil(t, got.Error)
	run := h.runOf(b.ID)
	require.Empty(t, run.Jobs[0].RunnerName)
	logs := h.logs(b.ID)
	require.True(t, hasEntry(logs, "info", fmt.Sprintf("Job %d never started on a runner: it has no log", run.Jobs[0].ID)), "%v", logs)
	require.Equal(t, "Build cancelled", logs[len(logs)-1].Message)
	require.False(t, hasEntry(logs, "warning", "could not be fetched"))
}

// TestStreamedAssetDownload (issue 8, 3): GitHub answers the asset
// download with the bytes (200) instead of a redirect; both download modes
// serve them.
func TestStreamedAssetDownload(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{workflows.DownloadRedirect, workflows.DownloadProxy} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			// A private repository: downloads go through the asset API, not
			// browser_download_url.
			h := newHarness(t, config{webhooks: true, downloadMode: mode, privateRepo: true, faults: ghsim.Faults{AssetStream: true}})
			b := h.trigger("windows", "x64", "2.4.0")
			got := h.waitTerminal(60*time.Second, b.ID)[b.ID]
			require.Equal(t, "success", got.Status)
			want := ghsim.AssetBytes(templates.AssetName("My App", "2.4.0", "windows", "x64"))
			require.Equal(t, want, h.download(b.ID), "the streamed bytes, not a 500")
		})
	}
}

// TestJobLogAnswersNeverCostTheOutcome (issue 8, 4): whatever GitHub
// answers for the job log (410 expired, 403 without a rate-limit message,
// 5xx), the build ends with its outcome and artifact, and its log says why
// the job's log is missing; an answer that may change (5xx) is waited for
// no longer than LogWaitTimeout.
func TestJobLogAnswersNeverCostTheOutcome(t *testing.T) {
	t.Parallel()
	const logWait = 3 * time.Second
	for _, status := range []int{410, 403, 500, 503} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, config{webhooks: true, logWait: logWait, faults: ghsim.Faults{LogStatus: status}})
			start := time.Now()
			ok := h.trigger("linux", "arm64", "4.0.0")
			failing := h.trigger("linux", "arm64", "4.0.1-fail")
			final := h.waitTerminal(logWait+60*time.Second, ok.ID, failing.ID)
			require.Less(t, time.Since(start), logWait+45*time.Second)

			require.Equal(t, "success", final[ok.ID].Status, "the log is not the outcome")
			require.NotNil(t, final[ok.ID].ArtifactURL)
			require.Equal(t, "failed", final[failing.ID].Status)
			require.Equal(t, workflows.ErrorStepFailed, final[failing.ID].Error.Code)
			require.Equal(t, "Build installer", *final[failing.ID].Error.Step)
			for _, id := range []string{ok.ID, failing.ID} {
				logs := h.logs(id)
				require.True(t, hasEntry(logs, "warning", fmt.Sprintf("could not be fetched: GitHub answered %d", status)), "%v", logs)
			}
		})
	}
}

// TestVersionWithBuildMetadataRefused (issue 8, 5): GitHub renames '+' in
// asset names, so such a version is refused at trigger, naming the field,
// and nothing is dispatched.
func TestVersionWithBuildMetadataRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config{webhooks: true})
	_, err := h.typed().TriggerBuild(h.ctx, h.project.ID, client.TriggerRequest{Platform: "linux", Arch: "x64", Version: "1.0.0+build.5"})
	var apiErr *client.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 400, apiErr.Status)
	require.Equal(t, "version", apiErr.Field)
	require.Contains(t, apiErr.Message, "build metadata")
	var n int64
	require.NoError(t, h.db.Gorm.Model(&models.Build{}).Count(&n).Error)
	require.Zero(t, n)
	require.Empty(t, h.runsByBuild())
}

// TestRunCancelledOnGitHub (issue 8, 6): a job that exceeds its
// timeout-minutes, and a run someone cancels in GitHub's web UI, end
// failed with the reason: cancelled is only for builds cancelled through
// DeskForge.
func TestRunCancelledOnGitHub(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config{webhooks: true, scenario: []ghsim.Rule{
		{Prerelease: "timeout", Outcome: ghsim.OutcomeTimeoutMinutes},
		{Prerelease: "stall", Outcome: ghsim.OutcomeHangInProgress},
	}})
	timedOut := h.trigger("linux", "x64", "5.0.0-timeout")
	outside := h.trigger("linux", "x64", "5.0.1-stall")
	h.waitStatus(outside.ID, "building", 60*time.Second)
	require.True(t, h.sim.CancelOnGitHub(h.runOf(outside.ID).ID))

	final := h.waitTerminal(60*time.Second, timedOut.ID, outside.ID)
	for id, b := range final {
		require.Equal(t, "failed", b.Status, id)
		require.NotNil(t, b.Error)
		require.Equal(t, workflows.ErrorCancelledOnGitHub, b.Error.Code)
		require.Contains(t, b.Error.Message, "cancelled on GitHub, not through DeskForge")
		logs := h.logs(id)
		last := logs[len(logs)-1]
		require.Equal(t, "error", last.Level)
		require.True(t, strings.HasPrefix(last.Message, "Build failed: the workflow run was cancelled on GitHub"), last.Message)
		require.Equal(t, []string{">queued", "queued>building", "building>failed"}, h.transitions(id))
	}
}

// TestInvariantUnderGitHubAnswers: many builds while GitHub answers at
// random with everything it documents (each endpoint's OpenAPI statuses,
// 401, rate limits with and without Retry-After, 429, 5xx, garbage bodies,
// dropped connections) and webhooks are dropped, duplicated and reordered.
// Every build reaches a terminal state within a bound derived from the
// configured timeouts, and no build ever holds another build's run, log or
// artifact.
func TestInvariantUnderGitHubAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("many builds under random GitHub answers: skipped in -short mode")
	}
	t.Parallel()
	for _, seed := range []int64{8, 21} {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel()
			checkInvariantUnderGitHubAnswers(t, seed)
		})
	}
}

func checkInvariantUnderGitHubAnswers(t *testing.T, seed int64) {
	cfg := config{
		webhooks: true,
		faults:   ghsim.Faults{Chaos: 0.2, HangFor: 300 * time.Millisecond, Drop: 0.2, Duplicate: 0.1, Reorder: 0.3, Seed: seed},
		noRun:    8 * time.Second, maxQueue: 8 * time.Second, maxBuild: 20 * time.Second, logWait: 3 * time.Second,
		secondaryWait: time.Second, maxSecondaryWait: 2 * time.Second,
		scenario: append([]ghsim.Rule{{Prerelease: "wait", Outcome: ghsim.OutcomeHangQueued}}, ghsim.DefaultRules()...),
	}
	h := newHarness(t, cfg)
	// The longest a build can legitimately take: its dispatch retries (12
	// attempts, each at most MaxRetryDelay after DispatchSettle, plus rate
	// limits of at most maxSecondaryWait), no run for NoRunTimeout, queued
	// for MaxQueueDuration, building for MaxBuildDuration, its log awaited
	// for LogWaitTimeout; plus slack for a loaded machine under -race.
	bound := 12*(time.Second+cfg.maxSecondaryWait) + cfg.noRun + cfg.maxQueue + cfg.maxBuild + cfg.logWait + 60*time.Second

	versions := []string{"6.0.0", "6.0.1", "6.0.2", "6.0.3-fail", "6.0.4-noasset", "6.0.5-timeout", "6.0.6-wait", "6.0.7", "6.0.8"}
	platforms := [][2]string{{"mac", "arm64"}, {"windows", "x64"}, {"linux", "x64"}}
	var ids []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 27 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pa := platforms[i%len(platforms)]
			v := versions[i%len(versions)]
			b, err := h.typed().TriggerBuild(h.ctx, h.project.ID, client.TriggerRequest{Platform: pa[0], Arch: pa[1], Version: fmt.Sprintf("%s-%d", v, i)})
			require.NoError(t, err)
			mu.Lock()
			ids = append(ids, b.ID)
			mu.Unlock()
		}()
	}
	wg.Wait()
	final := h.waitTerminal(bound, ids...)

	// No build holds another's run, log or artifact.
	runs := map[int64]ghsim.RunInfo{}
	for _, repo := range []string{builderRepo, appRepo} {
		for _, r := range h.sim.Runs(repo) {
			runs[r.ID] = r
		}
	}
	counts := map[string]int{}
	for id, b := range final {
		counts[b.Status]++
		row, err := h.store.GetBuild(h.ctx, id)
		require.NoError(t, err)
		require.Equal(t, b.Status == "failed", b.Error != nil, "error is set exactly on failed builds: %s", id)
		if b.Error != nil {
			require.NotEmpty(t, b.Error.Code, id)
			require.NotEmpty(t, b.Error.Message, id)
		}
		if row.RunID == nil {
			require.NotEqual(t, "success", b.Status, id)
			continue
		}
		run, ok := runs[*row.RunID]
		require.True(t, ok, "build %s has run %d, which GitHub never created", id, *row.RunID)
		require.Equal(t, id, templates.RunNameBuildID(run.DisplayTitle), "build %s holds another build's run", id)
		job := run.Jobs[len(run.Jobs)-1]
		if b.Status == "success" {
			require.NotNil(t, row.ArtifactAssetID)
			require.Equal(t, job.AssetID, *row.ArtifactAssetID, "build %s holds another build's artifact", id)
			require.Equal(t, job.AssetName, row.ArtifactName)
		}
		for _, l := range h.logs(id) {
			if name, found := strings.CutPrefix(l.Message, "Runner name: '"); found {
				require.Equal(t, job.RunnerName+"'", name, "build %s holds another job's log", id)
			}
		}
		checkMonotonic(t, h.transitions(id))
	}
	for id, n := range h.runsByBuild() {
		require.Equal(t, 1, n, "runs of build %s", id)
	}
	c := h.sim.Counters()
	t.Logf("%d builds: %v; %d GitHub answers injected of %d requests", len(final), counts, c.Total.Injected, c.Total.Requests)
	require.Positive(t, c.Total.Injected)
}

// TestCrashMidJobIsRescued (issue 9, 4): a process that died (kill -9)
// while running a build's dispatch job leaves the job marked running; the
// next process runs it again after RescueStuckJobsAfter (minutes, not
// River's default hour) and the build proceeds. PostgreSQL only: the
// rescue is River's leader-side maintenance on the shared database.
func TestCrashMidJobIsRescued(t *testing.T) {
	t.Parallel()
	if !slices.Contains(dbtest.Dialects(), models.DialectPostgres) {
		t.Skip("needs PostgreSQL: set DESKFORGE_TEST_DATABASE_URL")
	}
	h := newHarness(t, config{dialect: models.DialectPostgres, webhooks: true})
	require.NoError(t, h.node.river.Stop(h.ctx))
	b := h.trigger("linux", "x64", "7.0.0")
	// The dead process had taken the job RescueStuckJobsAfter and a minute
	// ago and never finished it.
	res := h.db.Gorm.Exec(`UPDATE river_job SET state = 'running', attempt = 1, attempted_at = now() - ?::interval,
		attempted_by = ARRAY['dead-process'] WHERE kind = ? AND args->>'build_id' = ?`,
		fmt.Sprintf("%d seconds", int((workflows.RescueStuckJobsAfter+time.Minute)/time.Second)), workflows.DispatchBuildArgs{}.Kind(), b.ID)
	require.NoError(t, res.Error)
	require.EqualValues(t, 1, res.RowsAffected)
	h.stop()

	restarted := time.Now()
	h.start()
	got := h.waitTerminal(90*time.Second, b.ID)[b.ID]
	require.Equal(t, "success", got.Status)
	require.Less(t, time.Since(restarted), 90*time.Second, "rescued within minutes of the restart")
	require.Equal(t, map[string]int{b.ID: 1}, h.runsByBuild())
}
