package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
)

// stepTimeline is a job of four steps of 10 s each, as GitHub shows it
// `elapsed` after the job started.
func stepTimeline(start time.Time, elapsed time.Duration) []Step {
	names := []string{"Set up job", "Checkout", "Build installer", "Upload release asset"}
	steps := make([]Step, len(names))
	for i, name := range names {
		// GitHub's step numbers may have gaps: 1, 2, 4, 5.
		n := i + 1
		if i >= 2 {
			n++
		}
		from := start.Add(time.Duration(i) * 10 * time.Second)
		to := from.Add(10 * time.Second)
		st := Step{Number: n, Name: name, Status: "queued"}
		switch {
		case !start.Add(elapsed).Before(to):
			st.Status, st.Conclusion, st.StartedAt, st.CompletedAt = "completed", "success", from, to
		case !start.Add(elapsed).Before(from):
			st.Status, st.StartedAt = "in_progress", from
		}
		steps[i] = st
	}
	return steps
}

func TestFollowStepsLogsStepsLiveOnce(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, dialect)
			b, runID := tb.dispatched(t)
			start := tb.clock.Now()
			apply := func(j Job) {
				t.Helper()
				require.NoError(t, tb.store.Tx(tb.ctx, func(tx *gorm.DB) error {
					locked, err := tb.store.LockBuildTx(tb.ctx, tx, b.ID)
					require.NoError(t, err)
					return tb.engine.applyTx(tb.ctx, tx, &locked, observation{job: &j})
				}))
			}
			setJob := func(elapsed time.Duration) Job {
				_, j := tb.forge.setRun(runID, func(r *Run, j *Job) {
					r.Status, j.Status, j.RunnerName, j.StartedAt = "in_progress", "in_progress", "GitHub Actions 3", start
					j.Steps = stepTimeline(start, elapsed)
					if elapsed >= 40*time.Second {
						r.Status, r.Conclusion = "completed", "success"
						j.Status, j.Conclusion, j.CompletedAt = "completed", "success", start.Add(40*time.Second)
					}
				})
				return j
			}
			follow := func() error {
				t.Helper()
				return tb.engine.followSteps(tb.ctx, b.ID)
			}

			// The job_started webhook: building, the first step running, a
			// follower inserted.
			apply(setJob(time.Second))
			require.Len(t, tb.inserter.take(FollowStepsArgs{}.Kind()), 1)
			got := tb.build(t, b.ID)
			require.Equal(t, models.StatusBuilding, got.Status)
			require.Equal(t, Progress{1, 4, "Set up job"}, Progress{got.ProgressStep, got.ProgressSteps, got.ProgressName})

			// The follower reads the job every few seconds of the simulated
			// clock; each read logs what happened since the last one.
			var seen []string
			for _, elapsed := range []time.Duration{5, 12, 18, 25, 33} {
				tb.clock.advance(time.Duration(elapsed)*time.Second - tb.clock.Now().Sub(start))
				setJob(time.Duration(elapsed) * time.Second)
				require.True(t, isSnooze(follow()), "still building: follow again later")
				seen = stepEntries(tb.logs(t, b.ID))
				require.Equal(t, models.StatusBuilding, tb.build(t, b.ID).Status)
			}
			require.Equal(t, []string{
				"Step 1/4 started: Set up job",
				"Step 1/4 finished (10 s)",
				"Step 2/4 started: Checkout",
				"Step 2/4 finished (10 s)",
				"Step 3/4 started: Build installer",
				"Step 3/4 finished (10 s)",
				"Step 4/4 started: Upload release asset",
			}, seen)
			got = tb.build(t, b.ID)
			require.Equal(t, Progress{4, 4, "Upload release asset"}, Progress{got.ProgressStep, got.ProgressSteps, got.ProgressName})
			require.Equal(t, 5, tb.forge.count("ListJobs"))

			// A late webhook (the job as it was at 12 s) changes nothing; the
			// completed webhook adds only the last finish; the follower then
			// sees the job completed and stops.
			apply(Job{ID: *got.JobID, RunID: runID, Status: "in_progress", RunnerName: "GitHub Actions 3", StartedAt: start, Steps: stepTimeline(start, 12*time.Second)})
			apply(setJob(40 * time.Second))
			require.NoError(t, follow())
			final := stepEntries(tb.logs(t, b.ID))
			require.Equal(t, append(seen, "Step 4/4 finished (10 s)"), final)
			require.Len(t, tb.inserter.take(FinalizeBuildArgs{}.Kind()), 1)
		})
	}
}

func TestFollowStepsStopsAndRespectsTheCap(t *testing.T) {
	t.Parallel()
	tb := setup(t, models.DialectSQLite)
	b, runID := tb.dispatched(t)

	// Queued (not building yet): nothing to follow.
	require.NoError(t, tb.engine.followSteps(tb.ctx, b.ID))
	require.Equal(t, 0, tb.forge.count("ListJobs"))

	start := tb.clock.Now()
	_, j := tb.forge.setRun(runID, func(r *Run, j *Job) {
		r.Status, j.Status, j.RunnerName, j.StartedAt = "in_progress", "in_progress", "GitHub Actions 3", start
		j.Steps = stepTimeline(start, time.Second)
	})
	require.NoError(t, tb.store.Tx(tb.ctx, func(tx *gorm.DB) error {
		locked, err := tb.store.LockBuildTx(tb.ctx, tx, b.ID)
		require.NoError(t, err)
		return tb.engine.applyTx(tb.ctx, tx, &locked, observation{job: &j})
	}))

	// A cap of 60 a minute allows one read at once, then one a second.
	tb.engine.stepLimiter = newStepLimiter(60)
	require.True(t, isSnooze(tb.engine.followSteps(tb.ctx, b.ID)))
	require.True(t, isSnooze(tb.engine.followSteps(tb.ctx, b.ID)))
	require.Equal(t, 1, tb.forge.count("ListJobs"), "the second turn is skipped, not queued up")

	// A failing read is retried at the next turn, not fatal.
	tb.engine.stepLimiter = newStepLimiter(6000)
	tb.forge.fail("ListJobs", &TransientError{Status: 502})
	require.True(t, isSnooze(tb.engine.followSteps(tb.ctx, b.ID)))
}

// stepEntries keeps the step entries of a log.
func stepEntries(entries []models.BuildLogEntry) []string {
	var out []string
	for _, e := range entries {
		if len(e.Message) > 5 && e.Message[:5] == "Step " {
			out = append(out, e.Message)
		}
	}
	return out
}
