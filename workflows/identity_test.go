package workflows

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/templates"
)

// jobEvent is the workflow_job webhook GitHub sends for job in repo.
func jobEvent(repo string, job Job) ApplyEventArgs {
	return ApplyEventArgs{DeliveryID: fmt.Sprintf("d-%d-%s", job.ID, job.Status), Event: WebhookEvent{Event: "workflow_job", Repo: repo, Job: &job}}
}

// TestRunIDReusedAfterReset: GitHub (a restarted simulator) hands build B
// the run id that build A still holds. B takes the run; A, whose run is
// gone, fails saying so; events of B's run reach B only.
func TestRunIDReusedAfterReset(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, dialect)
			a, runA := tb.dispatched(t)
			tb.forge.mu.Lock()
			tb.forge.nextID-- // the server was reset: it numbers runs from the same start
			tb.forge.mu.Unlock()
			b, runB := tb.dispatched(t)
			require.Equal(t, runA, runB)

			gotA := tb.build(t, a.ID)
			require.Equal(t, models.StatusFailed, gotA.Status)
			require.Nil(t, gotA.RunID)
			require.Equal(t, fmt.Sprintf("workflow run %d no longer exists on GitHub: the GitHub server handed its id to build %s's run (it was reset, e.g. a restarted simulator)", runA, b.ID), gotA.FailureReason)

			_, job := tb.forge.setRun(runB, func(r *Run, j *Job) {
				j.Status, j.RunnerName, j.StartedAt = "in_progress", "runner-b", tb.clock.Now()
			})
			require.NoError(t, tb.engine.applyEvent(tb.ctx, jobEvent("acme/app", job), tb.clock.Now()))
			require.Equal(t, models.StatusBuilding, tb.build(t, b.ID).Status)
			for _, e := range tb.logs(t, a.ID) {
				require.NotContains(t, e.Message, "runner-b", "A never receives B's events")
			}
		})
	}
}

// TestObservationsOfAnotherBuildAreNeverApplied: the same run id in another
// repository, or a run whose title names another build, is not the build's
// run; a poll that finds the build's run id naming another build fails the
// build with the true reason instead of following the other one.
func TestObservationsOfAnotherBuildAreNeverApplied(t *testing.T) {
	t.Parallel()
	tb := setup(t, models.DialectSQLite)
	b, runID := tb.dispatched(t)
	now := tb.clock.Now()

	// Same run id, other repository.
	other := Job{ID: 77, RunID: runID, Status: "completed", Conclusion: "failure", RunnerName: "intruder", StartedAt: now, CompletedAt: now,
		Steps: []Step{step(1, "Build installer", "completed", "failure", now)}}
	require.NoError(t, tb.engine.applyEvent(tb.ctx, jobEvent("acme/other", other), now))
	// Same run id and repository, but the run is another build's.
	foreign := Run{ID: runID, Repo: "acme/app", Status: "completed", Conclusion: "failure", UpdatedAt: now,
		DisplayTitle: templates.DisplayTitle("build_01other", "mac", "arm64", "1.2.3")}
	require.NoError(t, tb.engine.applyEvent(tb.ctx, ApplyEventArgs{DeliveryID: "d-run", Event: WebhookEvent{Event: "workflow_run", Repo: "acme/app", Run: &foreign}}, now))

	got := tb.build(t, b.ID)
	require.Equal(t, models.StatusQueued, got.Status)
	require.Empty(t, got.RunConclusion)
	require.Nil(t, got.JobID)
	require.Empty(t, tb.inserter.take(FinalizeBuildArgs{}.Kind()))
	for _, e := range tb.logs(t, b.ID) {
		require.NotContains(t, e.Message, "intruder")
	}

	// GitHub now answers for the build's run id with another build's run.
	tb.forge.setRun(runID, func(r *Run, j *Job) {
		r.DisplayTitle = templates.DisplayTitle("build_01other", "mac", "arm64", "1.2.3")
		r.Status = "in_progress"
	})
	require.NoError(t, tb.engine.pollBuild(tb.ctx, b.ID))
	got = tb.build(t, b.ID)
	require.Equal(t, models.StatusFailed, got.Status)
	require.True(t, strings.HasPrefix(got.FailureReason, fmt.Sprintf("workflow run %d no longer exists on GitHub (workflow run %d is build build_01other's", runID, runID)), got.FailureReason)
}

// TestBuildOfAnotherGitHubServer: a job about a build created for another
// GitHub server (another process on the same database) waits for that
// server's process; when none reports for ForeignHostTimeout, the build
// fails with that reason. GitHub is never asked about it.
func TestBuildOfAnotherGitHubServer(t *testing.T) {
	t.Parallel()
	tb := setup(t, models.DialectSQLite)
	b := tb.newBuild(t)
	require.NoError(t, tb.db.Gorm.Model(&models.Build{}).Where("id = ?", b.ID).UpdateColumn("forge_host", "127.0.0.1:4242").Error)

	require.True(t, isSnooze(tb.engine.dispatchBuild(tb.ctx, b.ID, false)))
	require.True(t, isSnooze(tb.engine.pollBuild(tb.ctx, b.ID)))
	require.Empty(t, tb.forge.dispatches)
	require.Equal(t, models.StatusQueued, tb.build(t, b.ID).Status)

	tb.clock.advance(11 * time.Minute)
	require.NoError(t, tb.engine.pollBuild(tb.ctx, b.ID))
	got := tb.build(t, b.ID)
	require.Equal(t, models.StatusFailed, got.Status)
	require.Contains(t, got.FailureReason, "no DeskForge process reaching the GitHub server 127.0.0.1:4242, which runs this build, has reported on it for 11m0s")
	require.Empty(t, tb.forge.dispatches)
	require.Zero(t, tb.forge.count("GetRun"))
}

// TestWebhookOfAnotherServerAppliedHere: processes talking to different
// GitHub servers share the database (two demos), and any of them may run
// the job applying a webhook another one received. The run stays the
// sending server's: the build keeps its forge host (its own process goes
// on following it), and a build of this engine's server holding the same
// run id (each server numbers its runs) is not taken for a reset.
func TestWebhookOfAnotherServerAppliedHere(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			const otherHost = "127.0.0.1:4242"
			tb := setup(t, dialect)
			mine, runID := tb.dispatched(t)
			theirs := tb.newBuild(t)
			now := tb.clock.Now()
			require.NoError(t, tb.db.Gorm.Model(&models.Build{}).Where("id = ?", theirs.ID).
				Updates(map[string]any{"forge_host": otherHost, "dispatched_at": now}).Error)

			run := Run{ID: runID, Repo: "acme/app", Status: "queued", HTMLURL: "http://127.0.0.1:4242/acme/app/actions/runs/1",
				DisplayTitle: templates.DisplayTitle(theirs.ID, "mac", "arm64", "1.2.3")}
			require.NoError(t, tb.engine.applyEvent(tb.ctx, ApplyEventArgs{DeliveryID: "d-theirs-run", ForgeHost: otherHost,
				Event: WebhookEvent{Event: "workflow_run", Repo: "acme/app", Run: &run}}, now))

			got := tb.build(t, theirs.ID)
			require.Equal(t, otherHost, got.ForgeHost, "the run is the sending server's")
			require.NotNil(t, got.RunID)
			require.Equal(t, runID, *got.RunID)
			own := tb.build(t, mine.ID)
			require.Equal(t, models.StatusQueued, own.Status, "this server's build keeps its run: %s", own.FailureReason)
			require.Equal(t, DefaultForgeHost, own.ForgeHost)
			require.NotNil(t, own.RunID)

			// The other server's job event reaches its build, not ours.
			job := Job{ID: 9001, RunID: runID, Status: "in_progress", RunnerName: "their-runner", StartedAt: now}
			ev := jobEvent("acme/app", job)
			ev.ForgeHost = otherHost
			require.NoError(t, tb.engine.applyEvent(tb.ctx, ev, now))
			require.Equal(t, models.StatusBuilding, tb.build(t, theirs.ID).Status)
			require.Equal(t, models.StatusQueued, tb.build(t, mine.ID).Status)
			// This engine never asks its own GitHub about their build.
			require.True(t, isSnooze(tb.engine.pollBuild(tb.ctx, theirs.ID)))
			require.Zero(t, tb.forge.count("GetRun"))
		})
	}
}

// TestJobsGoToTheQueueOfTheirBuildsServer: with HostQueues, a job about a
// build goes to the River queue of the build's GitHub server, so that only
// a process reaching that server takes it (River's leader, releasing
// snoozed jobs, kept taking back the jobs of another demo's builds); a
// build older than forge hosts, and jobs about no build, use the default.
func TestJobsGoToTheQueueOfTheirBuildsServer(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, dialect)
			e := NewEngine(tb.store, tb.forge, tb.clock, slog.New(slog.DiscardHandler), Options{
				PublicURL: "http://deskforge.test", BuilderRepo: "acme/builder", HostQueues: true,
			})
			ins := &fakeInserter{}
			e.SetInserter(ins)
			theirs, legacy := tb.newBuild(t), tb.newBuild(t)
			require.NoError(t, tb.db.Gorm.Model(&models.Build{}).Where("id = ?", theirs.ID).UpdateColumn("forge_host", "GHES.example:8443").Error)
			require.NoError(t, tb.db.Gorm.Model(&models.Build{}).Where("id = ?", legacy.ID).UpdateColumn("forge_host", "").Error)

			insert := func(args river.JobArgs) string {
				t.Helper()
				require.NoError(t, tb.store.Tx(tb.ctx, func(tx *gorm.DB) error { return e.insertTx(tb.ctx, tx, args) }))
				return ins.queues[args.Kind()]
			}
			q := ForgeQueue("ghes.example:8443")
			require.Regexp(t, `^forge_[0-9a-f]{16}$`, q)
			require.Equal(t, q, ForgeQueue("GHES.example:8443"), "host names compare without case")
			require.NotEqual(t, q, ForgeQueue(DefaultForgeHost))
			for _, args := range []river.JobArgs{DispatchBuildArgs{BuildID: theirs.ID}, PollBuildArgs{BuildID: theirs.ID},
				FinalizeBuildArgs{BuildID: theirs.ID}, CancelRunArgs{BuildID: theirs.ID, Repo: "acme/app", RunID: 1}, FollowStepsArgs{BuildID: theirs.ID}} {
				require.Equal(t, q, insert(args), args.Kind())
			}
			require.Empty(t, insert(FinalizeBuildArgs{BuildID: legacy.ID}), "a build without forge host")
			require.Empty(t, insert(PollBuildArgs{BuildID: "build_gone"}), "a build that no longer exists")
			require.Empty(t, insert(ApplyEventArgs{DeliveryID: "d-1"}), "a webhook: any process applies it")
		})
	}
}

func TestForgeHostOf(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                                 "api.github.com",
		"https://api.github.com/":          "api.github.com",
		"https://GHES.example.com/api/v3/": "ghes.example.com",
		"http://127.0.0.1:8123/":           "127.0.0.1:8123",
	} {
		require.Equal(t, want, ForgeHostOf(in), in)
	}
}

// succeedWithAsset completes b's job on the fake GitHub with asset on its
// release and finalizes it.
func (tb *testBundle) succeedWithAsset(t *testing.T, b models.Build, runID int64, asset Asset) models.Build {
	t.Helper()
	_, job := tb.forge.setRun(runID, func(r *Run, j *Job) {
		j.Status, j.Conclusion, j.RunnerName, j.StartedAt, j.CompletedAt = "completed", "success", "r", tb.clock.Now(), tb.clock.Now()
		tb.forge.logs[j.ID] = sampleLog
		tb.forge.assets["acme/app|v1.2.3|"+asset.Name] = asset
	})
	require.NoError(t, tb.engine.applyEvent(tb.ctx, jobEvent("acme/app", job), tb.clock.Now()))
	require.NoError(t, tb.runFinalize(t))
	return tb.build(t, b.ID)
}

// TestAssetNotUploadedByTheBuildIsNeverRecorded: the asset of the build's
// name on the release carries another build's label, or none: the build
// fails saying so, and records nothing of it.
func TestAssetNotUploadedByTheBuildIsNeverRecorded(t *testing.T) {
	t.Parallel()
	const name = "app-1.2.3-mac-arm64.dmg"
	tests := []struct {
		name, label, want string
	}{
		{"another build's upload", templates.AssetLabel(name, "build_01other"),
			"the asset " + name + " on release v1.2.3 was uploaded by build build_01other, not by this build"},
		{"no label", "", "the asset " + name + " on release v1.2.3 does not carry this build's label"},
		{"a label of another kind", "Download for macOS", "does not carry this build's label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, models.DialectSQLite)
			b, runID := tb.dispatched(t)
			got := tb.succeedWithAsset(t, b, runID, Asset{ID: 99, Name: name, Label: tt.label, Size: 5})
			require.Equal(t, models.StatusFailed, got.Status)
			require.Contains(t, got.FailureReason, tt.want)
			require.Nil(t, got.ArtifactAssetID)
			require.Empty(t, got.ArtifactName)
		})
	}
}

// TestRebuildSupersedesTheEarlierAsset: a rebuild of the same target and
// version replaces the earlier build's asset on the release; once it
// succeeds, the earlier build's download answers SupersededError naming it
// (and before, while the earlier asset is already gone, too).
func TestRebuildSupersedesTheEarlierAsset(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, dialect)
			const name = "app-1.2.3-mac-arm64.dmg"
			first, runFirst := tb.dispatched(t)
			first = tb.succeedWithAsset(t, first, runFirst, Asset{ID: 5, Name: name, Label: templates.AssetLabel(name, first.ID), Size: 5})
			require.Equal(t, models.StatusSuccess, first.Status)
			_, err := tb.engine.ArtifactURL(tb.ctx, first)
			require.NoError(t, err)

			tb.clock.advance(time.Minute)
			rebuild, runRebuild := tb.dispatched(t)
			// The rebuild's upload deleted the first asset; it has not finished.
			tb.forge.fail("AssetDownloadURL", fmt.Errorf("asset 5: %w", ErrNotFound))
			_, err = tb.engine.ArtifactURL(tb.ctx, first)
			var sup *SupersededError
			require.ErrorAs(t, err, &sup)
			require.Equal(t, rebuild.ID, sup.By)

			rebuild = tb.succeedWithAsset(t, rebuild, runRebuild, Asset{ID: 6, Name: name, Label: templates.AssetLabel(name, rebuild.ID), Size: 6})
			require.Equal(t, models.StatusSuccess, rebuild.Status)
			require.Equal(t, int64(6), *rebuild.ArtifactAssetID)
			first = tb.build(t, first.ID)
			require.Equal(t, models.StatusSuccess, first.Status, "the first build did succeed")
			require.Equal(t, rebuild.ID, *first.SupersededBy)
			_, err = tb.engine.ArtifactURL(tb.ctx, first)
			require.ErrorAs(t, err, &sup)
			require.Equal(t, SupersededError{BuildID: first.ID, By: rebuild.ID}, *sup)
			require.Contains(t, sup.Error(), "download build "+rebuild.ID+" instead")
			msgs := messages(tb.logs(t, first.ID))
			require.Equal(t, "warning: Installer replaced on the release by build "+rebuild.ID+" (a rebuild of the same version and target); download that build instead", msgs[len(msgs)-1])
			_, err = tb.engine.ArtifactURL(tb.ctx, rebuild)
			require.NoError(t, err)
		})
	}
}

// TestConcurrentRebuildReplacedTheAssetFirst: two builds of the same
// target and version run at once and the later one's upload replaces the
// earlier one's before the earlier one finishes: the earlier build
// succeeds (its workflow did) without recording the other's asset, and its
// download names the build that replaced it.
func TestConcurrentRebuildReplacedTheAssetFirst(t *testing.T) {
	t.Parallel()
	tb := setup(t, models.DialectSQLite)
	const name = "app-1.2.3-mac-arm64.dmg"
	first, runFirst := tb.dispatched(t)
	tb.clock.advance(time.Second)
	rebuild, _ := tb.dispatched(t)
	got := tb.succeedWithAsset(t, first, runFirst, Asset{ID: 6, Name: name, Label: templates.AssetLabel(name, rebuild.ID), Size: 6})
	require.Equal(t, models.StatusSuccess, got.Status)
	require.Nil(t, got.ArtifactAssetID, "the rebuild's asset is not recorded for the first build")
	require.Equal(t, rebuild.ID, *got.SupersededBy)
	_, err := tb.engine.ArtifactURL(tb.ctx, got)
	var sup *SupersededError
	require.ErrorAs(t, err, &sup)
	require.Equal(t, rebuild.ID, sup.By)
	msgs := messages(tb.logs(t, first.ID))
	require.Equal(t, "warning: "+supersededMessage(rebuild.ID), msgs[len(msgs)-2])
	require.Equal(t, "success: Build completed successfully", msgs[len(msgs)-1])
}
