package ghsim_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/templates"
	"github.com/deskforge/deskforge/workflows"
	"github.com/deskforge/deskforge/workflows/ghsim"
	forge "github.com/deskforge/deskforge/workflows/github"
)

// TestForgeAgainstTheSimulator runs the engine's Forge implementation
// (workflows/github) through one build, on github.com behaviour and on GHES
// behaviour, so the two halves are known to agree.
func TestForgeAgainstTheSimulator(t *testing.T) {
	t.Parallel()
	for _, ghes := range []bool{false, true} {
		t.Run(map[bool]string{false: "github.com", true: "GHES"}[ghes], func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clock := ghsim.NewFakeClock(time.Now().UTC().Truncate(time.Second))
			sim, srv := ghsim.NewServer(ghsim.Options{Clock: clock, Timing: ghsim.FastTiming(), GHES: ghes})
			t.Cleanup(srv.Close)
			require.NoError(t, sim.AddRepo("acme/builder", ghsim.RepoOptions{}))
			f, err := forge.New(ctx, forge.Options{BaseURL: srv.URL, Token: "ghp_forge", WritesPerMinute: 6000, WriteBurst: 10})
			require.NoError(t, err)

			cfg := `{"name":"Forge App","assetName":""}`
			inputs := map[string]string{
				templates.InputBuildID: "build_01hx0forge", templates.InputPlatform: "linux", templates.InputArch: "x64",
				templates.InputVersion: "1.0.0", templates.InputRunner: "ubuntu-24.04", templates.InputConfig: cfg,
			}
			since := clock.Now()
			res, err := f.DispatchWorkflow(ctx, workflows.DispatchRequest{Repo: "acme/builder", Workflow: "deskforge.yml", Ref: "main", Inputs: inputs})
			require.NoError(t, err)
			runs, err := f.ListDispatchRuns(ctx, "acme/builder", "deskforge.yml", since.Add(-time.Minute))
			require.NoError(t, err)
			require.Len(t, runs, 1)
			require.Equal(t, "build_01hx0forge", templates.RunNameBuildID(runs[0].DisplayTitle))
			if ghes {
				require.Zero(t, res.RunID, "GHES: no run details, find the run by title")
			} else {
				require.Equal(t, runs[0].ID, res.RunID)
			}
			runID := runs[0].ID

			_, err = f.JobLogs(ctx, "acme/builder", 1)
			require.ErrorIs(t, err, workflows.ErrNotFound)
			clock.Advance(sim.Timing().RunDuration() + sim.Timing().LogDelay)
			sim.Tick()
			run, err := f.GetRun(ctx, "acme/builder", runID)
			require.NoError(t, err)
			require.Equal(t, "completed", run.Status)
			require.Equal(t, "success", run.Conclusion)
			again, err := f.GetRun(ctx, "acme/builder", runID)
			require.NoError(t, err)
			require.Equal(t, run, again)
			jobs, err := f.ListJobs(ctx, "acme/builder", runID)
			require.NoError(t, err)
			require.Len(t, jobs, 1)
			require.Equal(t, []string{"ubuntu-24.04"}, jobs[0].Labels)
			logs, err := f.JobLogs(ctx, "acme/builder", jobs[0].ID)
			require.NoError(t, err)
			body, _ := io.ReadAll(logs)
			logs.Close()
			require.True(t, strings.HasPrefix(string(body), "\ufeff"))

			name := templates.AssetName("Forge App", "1.0.0", "linux", "x64")
			asset, err := f.FindReleaseAsset(ctx, "acme/builder", "v1.0.0", name)
			require.NoError(t, err)
			require.Equal(t, int64(len(ghsim.AssetBytes(name))), asset.Size)
			require.Len(t, asset.SHA256, 64)
			u, err := f.AssetDownloadURL(ctx, "acme/builder", asset.ID)
			require.NoError(t, err)
			resp, err := http.Get(u)
			require.NoError(t, err)
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, ghsim.AssetBytes(name), got)

			err = f.CancelRun(ctx, "acme/builder", runID)
			var invalid *workflows.InvalidError
			require.True(t, errors.As(err, &invalid), "%v", err)
			require.Equal(t, http.StatusConflict, invalid.Status)
			private, err := f.RepositoryPrivate(ctx, "acme/builder")
			require.NoError(t, err)
			require.False(t, private)
			_, err = f.FindReleaseAsset(ctx, "acme/builder", "v9.9.9", name)
			require.ErrorIs(t, err, workflows.ErrNotFound)
		})
	}
}
