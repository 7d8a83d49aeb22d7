package ghsim

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/templates"
)

func TestRenderTemplate(t *testing.T) {
	t.Parallel()
	ctx := exprContext{
		inputs: map[string]string{"build_id": "build_01abc", "platform": "mac", "version": "1.2.0", "config": `{"name":"Acme","window":{"width":800}}`, "empty": ""},
		actor:  "octocat", ref: "refs/heads/main", repo: "acme/builder", workflow: "DeskForge build", runID: 42, runNum: 7, attempt: 2,
	}
	tests := []struct{ in, want string }{
		{templates.RunName, "deskforge build_01abc mac- v1.2.0"},
		{"deskforge ${{ inputs.build_id }}", "deskforge build_01abc"},
		{"${{inputs.build_id}}", "build_01abc"},
		{"${{ github.event.inputs.build_id }}", "build_01abc"},
		{"${{ inputs['platform'] }}", "mac"},
		{"${{ inputs.missing }}", ""},
		{"${{ inputs.empty || 'fallback' }}", "fallback"},
		{"${{ inputs.platform == 'mac' && 'apple' || 'other' }}", "apple"},
		{"${{ inputs.platform != 'mac' }}", "false"},
		{"${{ !inputs.empty }}", "true"},
		{"${{ format('{0}-{1}', inputs.platform, inputs.version) }}", "mac-1.2.0"},
		{"${{ fromJSON(inputs.config).name }}", "Acme"},
		{"${{ fromJSON(inputs.config).window.width }}", "800"},
		{"${{ contains(inputs.version, '-fail') }}", "false"},
		{"${{ startsWith(github.ref, 'refs/heads/') }}", "true"},
		{"${{ github.actor }} on ${{ github.ref_name }} in ${{ github.repository }}", "octocat on main in acme/builder"},
		{"${{ github.run_id }}/${{ github.run_number }}/${{ github.run_attempt }}", "42/7/2"},
		{"${{ github.event_name }} ${{ github.workflow }}", "workflow_dispatch DeskForge build"},
		{"it''s ${{ 'it''s' }}", "it''s it's"},
		{"${{ (1) }}", "1"},
		{"no expression", "no expression"},
		{"${{ unclosed", "${{ unclosed"},
		{"${{ bogus( }}", ""},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, renderTemplate(tc.in, ctx), tc.in)
	}
}

func TestParseWorkflowForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		yaml     string
		dispatch bool
		inputs   int
		runsOn   []string
		jobName  string
	}{
		{"scalar on", "on: workflow_dispatch\njobs:\n  build:\n    runs-on: ubuntu-latest\n", true, 0, []string{"ubuntu-latest"}, ""},
		{"list on", "on: [push, workflow_dispatch]\njobs:\n  b:\n    name: Build\n    runs-on: [self-hosted, linux]\n", true, 0, []string{"self-hosted", "linux"}, "Build"},
		{"map on", "on:\n  push:\n  workflow_dispatch:\n    inputs:\n      a:\n        required: true\n      b:\n        type: choice\n        options: [x, y]\n", true, 2, nil, ""},
		{"push only", "on: push\n", false, 0, nil, ""},
		{"runs-on labels", "on: workflow_dispatch\njobs:\n  b:\n    runs-on:\n      group: big\n      labels: ubuntu-24.04\n", true, 0, []string{"ubuntu-24.04"}, ""},
	}
	for _, tc := range tests {
		w, err := parseWorkflow([]byte(tc.yaml))
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.dispatch, w.Dispatch, tc.name)
		require.Len(t, w.Inputs, tc.inputs, tc.name)
		require.Equal(t, tc.runsOn, w.RunsOn, tc.name)
		require.Equal(t, tc.jobName, w.JobName, tc.name)
	}
	_, err := parseWorkflow([]byte("on: [\n"))
	require.Error(t, err)
	_, err = parseWorkflow([]byte("- a list\n"))
	require.Error(t, err)
	_, err = parseWorkflow([]byte("on:\n  workflow_dispatch:\n    inputs:\n      a:\n        required: maybe\n"))
	require.Error(t, err)
}

func TestTypedInputs(t *testing.T) {
	t.Parallel()
	e := setup(t)
	wf := `name: typed
on:
  workflow_dispatch:
    inputs:
      flag: {type: boolean, default: false}
      level: {type: choice, options: [low, high], required: true}
      count: {type: number}
jobs:
  build:
    runs-on: ubuntu-latest
`
	require.NoError(t, e.sim.SetFile(testRepo, "main", ".github/workflows/typed.yml", []byte(wf)))
	dispatch := func(inputs map[string]any) error {
		_, err := e.gh.Actions.CreateWorkflowDispatchEventByFileName(e.ctx, testOwner, testName, "typed.yml", github.CreateWorkflowDispatchEventRequest{Ref: "main", Inputs: inputs})
		return err
	}
	require.NoError(t, dispatch(map[string]any{"level": "low", "flag": true, "count": 3}))
	require.NoError(t, dispatch(map[string]any{"level": "high", "flag": "false", "count": "4.5"}))
	var ghErr *github.ErrorResponse
	require.ErrorAs(t, dispatch(map[string]any{"level": "medium"}), &ghErr)
	require.Equal(t, "Provided value 'medium' for input 'level' not in the list of allowed values", ghErr.Message)
	require.ErrorAs(t, dispatch(map[string]any{"level": "low", "flag": "yes"}), &ghErr)
	require.ErrorAs(t, dispatch(map[string]any{"level": "low", "count": "many"}), &ghErr)
	runs := e.sim.Runs(testRepo)
	require.Len(t, runs, 2)
	require.Equal(t, map[string]string{"level": "low", "flag": "true", "count": "3"}, runs[0].Inputs)
	require.Equal(t, "typed", runs[0].DisplayTitle, "without run-name the title is the workflow name")
	require.Equal(t, "false", runs[1].Inputs["flag"])
}

// TestTemplatesLoadInTheSimulator dispatches the engine's inputs to every
// embedded template that declares workflow_dispatch. Placeholder templates
// without a trigger are reported, not failed: the template files are
// maintained beside this package.
func TestTemplatesLoadInTheSimulator(t *testing.T) {
	t.Parallel()
	wfs := DefaultWorkflows()
	require.Equal(t, wfs["webapp.yml"], wfs["deskforge.yml"], "the builder repository dispatches the web-app template as deskforge.yml")
	for _, name := range templates.Names() {
		require.Contains(t, wfs, name+".yml")
	}
	e := setup(t)
	require.NoError(t, e.sim.AddRepo("acme/templates", RepoOptions{}))
	for _, name := range sortedKeys(wfs) {
		def, err := parseWorkflow(wfs[name])
		require.NoError(t, err, name)
		if !def.Dispatch {
			t.Logf("%s has no workflow_dispatch trigger yet (placeholder?)", name)
			continue
		}
		buildID := "build_01hx0tmpl" + fmt.Sprint(len(name))
		inputs := contractInputs(buildID, "linux", "arm64", "1.0.0")
		_, err = e.gh.Actions.CreateWorkflowDispatchEventByFileName(e.ctx, "acme", "templates", name, github.CreateWorkflowDispatchEventRequest{Ref: "main", Inputs: inputs})
		require.NoError(t, err, name)
		runs := e.sim.Runs("acme/templates")
		last := runs[len(runs)-1]
		require.Equal(t, templates.DisplayTitle(buildID, "linux", "arm64", "1.0.0"), last.DisplayTitle, name)
		require.Equal(t, buildID, templates.RunNameBuildID(last.DisplayTitle), name)
		require.Equal(t, []string{"ubuntu-24.04-arm"}, last.Jobs[0].Labels, name)
	}
}

func TestFakeClock(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2024, 1, 20, 10, 0, 0, 0, time.FixedZone("x", 3600))
	c := NewFakeClock(t0)
	require.Equal(t, time.UTC, c.Now().Location())
	require.True(t, c.Now().Equal(t0))
	c.Advance(time.Minute)
	c.Advance(-time.Hour)
	require.Equal(t, t0.Add(time.Minute).UTC(), c.Now())
	c.Set(t0)
	require.Equal(t, t0.Add(time.Minute).UTC(), c.Now(), "Set never goes back")
	c.Set(t0.Add(time.Hour))
	require.Equal(t, t0.Add(time.Hour).UTC(), c.Now())
	require.Equal(t, time.UTC, RealClock{}.Now().Location())
}

// TestRunWithTheRealClock drives a build with Run, as serve --demo does.
func TestRunWithTheRealClock(t *testing.T) {
	t.Parallel()
	sim, srv := NewServer(Options{Timing: FastTiming()})
	t.Cleanup(srv.Close)
	require.NoError(t, sim.AddRepo(testRepo, RepoOptions{Workflows: map[string][]byte{"deskforge.yml": testWorkflow()}}))
	hooks := newHookReceiver(t)
	sim.SetWebhook(hooks.srv.URL, testSecret)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx) }()
	gh := github.NewClient(nil).WithAuthToken("any-token")
	gh.BaseURL.Host, gh.BaseURL.Scheme = srv.Listener.Addr().String(), "http"
	_, err := gh.Actions.CreateWorkflowDispatchEventByFileName(ctx, testOwner, testName, "deskforge.yml", github.CreateWorkflowDispatchEventRequest{
		Ref: "main", Inputs: contractInputs("build_01hx0realclock", "linux", "x64", "1.0.0"),
	})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		runs := sim.Runs(testRepo)
		return len(runs) == 1 && runs[0].Conclusion == "success" && len(hooks.received()) == 7
	}, 5*time.Second, 5*time.Millisecond)
	cancel()
	require.True(t, errors.Is(<-done, context.Canceled))
	require.Empty(t, hooks.errors())
}

// TestConcurrentUse dispatches, polls and ticks from many goroutines; run
// with -race.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = e.sim.Run(ctx) }()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				in := contractInputs(fmt.Sprintf("build_01hx0conc%d%d", w, i), "linux", "x64", "1.0.0")
				var out dispatchDetails
				_, err := e.dispatchRaw(map[string]any{"ref": "main", "inputs": in, "return_run_details": true}, &out)
				if err == nil {
					_, _, err = e.gh.Actions.GetWorkflowRunByID(e.ctx, testOwner, testName, out.WorkflowRunID)
				}
				e.clock.Advance(5 * time.Millisecond)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	require.Empty(t, errs)
	e.clock.Advance(time.Second)
	require.Eventually(t, func() bool {
		for _, r := range e.sim.Runs(testRepo) {
			if r.Status != "completed" {
				return false
			}
		}
		return true
	}, 5*time.Second, 5*time.Millisecond)
	runs := e.sim.Runs(testRepo)
	require.Len(t, runs, 30)
	var ids []string
	seen := map[string]bool{}
	for _, r := range runs {
		id := r.Inputs[templates.InputBuildID]
		require.False(t, seen[id], "build %s dispatched twice", id)
		seen[id] = true
		ids = append(ids, id)
	}
	sort.Strings(ids)
	require.Len(t, ids, 30)
}
