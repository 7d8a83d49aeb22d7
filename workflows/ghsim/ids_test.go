package ghsim_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/workflows/ghsim"
)

// TestIDsFromClockNeverRepeatAcrossRestarts: a simulator started after
// another (a restarted demo) hands out run, job and asset ids the first one
// never did; without the option both number from the same start.
func TestIDsFromClockNeverRepeatAcrossRestarts(t *testing.T) {
	t.Parallel()
	clock := ghsim.NewFakeClock(time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC))
	runOne := func(fromClock bool) ghsim.RunInfo {
		sim, srv := ghsim.NewServer(ghsim.Options{Clock: clock, Timing: ghsim.FastTiming(), IDsFromClock: fromClock})
		defer srv.Close()
		require.NoError(t, sim.AddRepo("acme/builder", ghsim.RepoOptions{}))
		gh := github.NewClient(nil).WithAuthToken("any-token")
		gh.BaseURL, _ = url.Parse(srv.URL + "/")
		for range 3 { // the first instance hands out several ids
			_, err := gh.Actions.CreateWorkflowDispatchEventByFileName(context.Background(), "acme", "builder", "deskforge.yml",
				github.CreateWorkflowDispatchEventRequest{Ref: "main", Inputs: map[string]any{
					"build_id": "build_01ids", "platform": "linux", "arch": "x64", "version": "1.0.0", "runner": "ubuntu-24.04",
					"config": `{"name":"Ids"}`,
				}})
			require.NoError(t, err)
		}
		clock.Advance(sim.Timing().RunDuration())
		sim.Tick()
		runs := sim.Runs("acme/builder")
		require.Len(t, runs, 3)
		require.Equal(t, "success", runs[0].Conclusion)
		return runs[len(runs)-1]
	}

	first := runOne(true)
	clock.Advance(time.Second) // the restart
	second := runOne(true)
	require.Greater(t, second.ID-2, first.ID, "run ids")
	require.Greater(t, second.Jobs[0].ID, first.Jobs[0].ID, "job ids")
	require.Greater(t, second.Jobs[0].AssetID, first.Jobs[0].AssetID, "asset ids")
	require.Less(t, second.Jobs[0].ID, int64(1)<<53, "ids stay exact in JSON numbers")

	require.Equal(t, runOne(false).ID, runOne(false).ID, "fixed starts repeat (the tests' default)")
}
