package templates_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/templates"
	"github.com/deskforge/deskforge/workflows"
	"github.com/deskforge/deskforge/workflows/ghsim"
	"github.com/deskforge/deskforge/workflows/github"
)

// simSetup starts the GitHub simulator with one repository per template,
// each holding that template's exact bytes as .github/workflows/deskforge.yml,
// and returns a client for it (the engine's GitHub client).
func simSetup(t *testing.T) (*ghsim.Sim, *ghsim.FakeClock, *github.Client) {
	t.Helper()
	clock := ghsim.NewFakeClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	sim, srv := ghsim.NewServer(ghsim.Options{Clock: clock, Timing: ghsim.FastTiming()})
	t.Cleanup(srv.Close)
	for _, name := range templates.Names() {
		content, err := templates.Get(name)
		require.NoError(t, err)
		require.NoError(t, sim.AddRepo("acme/"+name, ghsim.RepoOptions{
			Workflows: map[string][]byte{"deskforge.yml": content},
		}))
	}
	client, err := github.New(context.Background(), github.Options{BaseURL: srv.URL, Token: "test-token", WriteBurst: 1000})
	require.NoError(t, err)
	return sim, clock, client
}

// TestSimulatorAcceptsEngineDispatch dispatches every template, in the
// simulator, with exactly the inputs the engine sends for each entry of the
// runner table: the dispatch is accepted, the run's title is the contract's
// display title (so the engine finds the run by build id), the job asks for
// the chosen runner, and the installer lands under the contract's asset name.
func TestSimulatorAcceptsEngineDispatch(t *testing.T) {
	t.Parallel()
	sim, clock, client := simSetup(t)
	ctx := context.Background()

	keys := make([]string, 0, len(templates.DefaultRunners))
	for k := range templates.DefaultRunners {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	type dispatched struct {
		repo, key string
		inputs    map[string]string
		runID     int64
	}
	var all []dispatched
	for i, name := range templates.Names() {
		for j, key := range keys {
			platform, arch, _ := strings.Cut(key, "/")
			version := fmt.Sprintf("1.%d.%d", i, j)
			inputs := dispatchInputs(t, platform, arch, version)
			inputs[templates.InputBuildID] = fmt.Sprintf("build_01jt0z8g5m3k2q7w9x4y6a%02d%02d", i, j)
			res, err := client.DispatchWorkflow(ctx, workflows.DispatchRequest{
				Repo: "acme/" + name, Workflow: "deskforge.yml", Ref: "main", Inputs: inputs,
			})
			require.NoError(t, err, "%s %s", name, key)
			require.NotZero(t, res.RunID)

			run, err := client.GetRun(ctx, "acme/"+name, res.RunID)
			require.NoError(t, err)
			require.Equal(t, templates.DisplayTitle(inputs[templates.InputBuildID], platform, arch, version), run.DisplayTitle)
			require.Equal(t, inputs[templates.InputBuildID], templates.RunNameBuildID(run.DisplayTitle))
			all = append(all, dispatched{repo: "acme/" + name, key: key, inputs: inputs, runID: res.RunID})
		}
	}

	clock.Advance(sim.Timing().RunDuration() + time.Second)
	sim.Tick()
	for _, d := range all {
		run, err := client.GetRun(ctx, d.repo, d.runID)
		require.NoError(t, err)
		require.Equal(t, "completed", run.Status, "%s %s", d.repo, d.key)
		require.Equal(t, "success", run.Conclusion, "%s %s", d.repo, d.key)
		jobs, err := client.ListJobs(ctx, d.repo, d.runID)
		require.NoError(t, err)
		require.Len(t, jobs, 1)
		require.Equal(t, []string{d.inputs[templates.InputRunner]}, jobs[0].Labels, "runs-on is the dispatched runner")

		platform, arch, _ := strings.Cut(d.key, "/")
		version := d.inputs[templates.InputVersion]
		asset, err := client.FindReleaseAsset(ctx, d.repo, templates.ReleaseTag(version),
			templates.AssetName("Acme Notes!", version, platform, arch))
		require.NoError(t, err, "%s %s: the installer is in the release under the contract's name", d.repo, d.key)
		require.NotZero(t, asset.Size)
	}
}

// TestSimulatorRejectsInputsOutsideTheTemplates shows the dispatch check
// above has teeth: the simulator, reading the same files, refuses inputs the
// templates do not declare and dispatches missing a required one, as GitHub
// does.
func TestSimulatorRejectsInputsOutsideTheTemplates(t *testing.T) {
	t.Parallel()
	_, _, client := simSetup(t)
	ctx := context.Background()
	for _, name := range templates.Names() {
		extra := dispatchInputs(t, "linux", "x64", "1.0.0")
		extra["signing"] = "true"
		_, err := client.DispatchWorkflow(ctx, workflows.DispatchRequest{Repo: "acme/" + name, Workflow: "deskforge.yml", Ref: "main", Inputs: extra})
		var invalid *workflows.InvalidError
		require.ErrorAs(t, err, &invalid, name)
		require.Contains(t, invalid.Message, "Unexpected inputs provided")

		for _, in := range templates.Inputs {
			missing := dispatchInputs(t, "linux", "x64", "1.0.0")
			delete(missing, in.Name)
			_, err := client.DispatchWorkflow(ctx, workflows.DispatchRequest{Repo: "acme/" + name, Workflow: "deskforge.yml", Ref: "main", Inputs: missing})
			if in.Required {
				require.ErrorAs(t, err, &invalid, "%s without %s", name, in.Name)
				require.Contains(t, invalid.Message, "Required input '"+in.Name+"' not provided")
			} else {
				require.NoError(t, err, "%s without optional %s", name, in.Name)
			}
		}
	}
}
