package ghsim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/templates"
)

func TestRunLifecycleThroughGoGitHub(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatch(t, contractInputs("build_01hx0lifecycle", "mac", "arm64", "1.4.0"))
	require.Equal(t, fmt.Sprintf("%s/repos/%s/actions/runs/%d", e.srv.URL, testRepo, d.WorkflowRunID), d.RunURL)
	require.Contains(t, d.HTMLURL, fmt.Sprintf("/actions/runs/%d", d.WorkflowRunID))

	run, _, err := e.gh.Actions.GetWorkflowRunByID(e.ctx, testOwner, testName, d.WorkflowRunID)
	require.NoError(t, err)
	require.Equal(t, templates.DisplayTitle("build_01hx0lifecycle", "mac", "arm64", "1.4.0"), run.GetDisplayTitle())
	require.Equal(t, "build_01hx0lifecycle", templates.RunNameBuildID(run.GetDisplayTitle()))
	require.Equal(t, "queued", run.GetStatus())
	require.Equal(t, "", run.GetConclusion())
	require.Equal(t, "workflow_dispatch", run.GetEvent())
	require.Equal(t, "main", run.GetHeadBranch())
	require.Equal(t, 1, run.GetRunAttempt())
	require.Equal(t, 1, run.GetRunNumber())
	require.Equal(t, "DeskForge build", run.GetName())
	require.Equal(t, e.sim.Branches(testRepo)["main"], run.GetHeadSHA())
	require.Equal(t, testRepo, run.GetRepository().GetFullName())
	require.Equal(t, e.clock.Now(), run.GetCreatedAt().Time)

	jobs, _, err := e.gh.Actions.ListWorkflowJobs(e.ctx, testOwner, testName, run.GetID(), nil)
	require.NoError(t, err)
	require.Equal(t, 1, jobs.GetTotalCount())
	job := jobs.Jobs[0]
	require.Equal(t, "queued", job.GetStatus())
	require.Equal(t, []string{"macos-15"}, job.Labels)
	require.Equal(t, "build mac-arm64", job.GetName())
	require.Empty(t, job.Steps)
	require.Nil(t, job.RunnerName)

	_, resp, err := e.gh.Actions.GetWorkflowJobLogs(e.ctx, testOwner, testName, job.GetID(), 1)
	require.Error(t, err, "logs are 404 while the job has not completed")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	timing := e.sim.Timing()
	e.advance(timing.Queued + timing.PerStep/2)
	job, _, err = e.gh.Actions.GetWorkflowJobByID(e.ctx, testOwner, testName, job.GetID())
	require.NoError(t, err)
	require.Equal(t, "in_progress", job.GetStatus())
	require.Regexp(t, `^GitHub Actions \d+$`, job.GetRunnerName())
	require.Len(t, job.Steps, 6)
	require.Equal(t, "Set up job", job.Steps[0].GetName())
	require.Equal(t, "in_progress", job.Steps[0].GetStatus())
	require.Equal(t, "queued", job.Steps[1].GetStatus())
	run, _, err = e.gh.Actions.GetWorkflowRunByID(e.ctx, testOwner, testName, run.GetID())
	require.NoError(t, err)
	require.Equal(t, "in_progress", run.GetStatus())

	e.advance(timing.PerStep * 6)
	job, _, err = e.gh.Actions.GetWorkflowJobByID(e.ctx, testOwner, testName, job.GetID())
	require.NoError(t, err)
	require.Equal(t, "completed", job.GetStatus())
	require.Equal(t, "success", job.GetConclusion())
	wantSteps := []string{"Set up job", "Run actions/checkout@v4", "Set up toolchains", "Build installer", "Upload release asset", "Complete job"}
	for i, st := range job.Steps {
		require.Equal(t, wantSteps[i], st.GetName())
		require.Equal(t, int64(i+1), st.GetNumber())
		require.Equal(t, "success", st.GetConclusion())
	}
	run, _, err = e.gh.Actions.GetWorkflowRunByID(e.ctx, testOwner, testName, run.GetID())
	require.NoError(t, err)
	require.Equal(t, "completed", run.GetStatus())
	require.Equal(t, "success", run.GetConclusion())
	require.Equal(t, job.GetCompletedAt().Time, run.GetUpdatedAt().Time)

	// Logs: 404 until LogDelay has passed, then a 302 to a signed URL.
	e.advance(timing.LogDelay)
	logURL, resp, err := e.gh.Actions.GetWorkflowJobLogs(e.ctx, testOwner, testName, job.GetID(), 1)
	require.NoError(t, err)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	logResp, err := http.Get(logURL.String())
	require.NoError(t, err)
	logBody, _ := io.ReadAll(logResp.Body)
	logResp.Body.Close()
	require.Equal(t, http.StatusOK, logResp.StatusCode)
	require.Equal(t, "text/plain; charset=utf-8", logResp.Header.Get("Content-Type"))
	require.Contains(t, string(logBody), "Compiling")
	require.NotContains(t, string(logBody), "Process completed with exit code 1")

	// The signed log URL expires after 60 s.
	e.advance(61 * time.Second)
	expired, err := http.Get(logURL.String())
	require.NoError(t, err)
	expired.Body.Close()
	require.Equal(t, http.StatusForbidden, expired.StatusCode)

	// The release: a draft (so not found by tag) holding the contract's asset.
	wantAsset := templates.AssetName("Acme Notes", "1.4.0", "mac", "arm64")
	_, resp, err = e.gh.Repositories.GetReleaseByTag(e.ctx, testOwner, testName, "v1.4.0")
	require.Error(t, err)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	releases, _, err := e.gh.Repositories.ListReleases(e.ctx, testOwner, testName, nil)
	require.NoError(t, err)
	require.Len(t, releases, 1)
	rel := releases[0]
	require.Equal(t, "v1.4.0", rel.GetTagName())
	require.True(t, rel.GetDraft())
	require.Len(t, rel.Assets, 1)
	assets, _, err := e.gh.Repositories.ListReleaseAssets(e.ctx, testOwner, testName, rel.GetID(), nil)
	require.NoError(t, err)
	require.Len(t, assets, 1)
	a := assets[0]
	require.Equal(t, wantAsset, a.GetName())
	content := AssetBytes(wantAsset)
	sum := sha256.Sum256(content)
	require.Equal(t, len(content), a.GetSize())
	require.GreaterOrEqual(t, len(content), 24<<10)
	require.Equal(t, "application/x-apple-diskimage", a.GetContentType())
	require.Equal(t, "uploaded", a.GetState())
	// go-github v62 has no Digest field: read it raw, as the engine must.
	var raw struct {
		Digest string `json:"digest"`
	}
	req, err := e.gh.NewRequest(http.MethodGet, a.GetURL(), nil)
	require.NoError(t, err)
	_, err = e.gh.Do(e.ctx, req, &raw)
	require.NoError(t, err)
	require.Equal(t, "sha256:"+hex.EncodeToString(sum[:]), raw.Digest)

	got, _, err := e.gh.Repositories.GetReleaseAsset(e.ctx, testOwner, testName, a.GetID())
	require.NoError(t, err)
	require.Equal(t, a.GetBrowserDownloadURL(), got.GetBrowserDownloadURL())

	// Download: a 302 to a signed URL that serves the bytes and honours Range.
	rc, redirect, err := e.gh.Repositories.DownloadReleaseAsset(e.ctx, testOwner, testName, a.GetID(), nil)
	require.NoError(t, err)
	require.Nil(t, rc)
	require.Contains(t, redirect, signedAssetsPath)
	rc, _, err = e.gh.Repositories.DownloadReleaseAsset(e.ctx, testOwner, testName, a.GetID(), http.DefaultClient)
	require.NoError(t, err)
	all, _ := io.ReadAll(rc)
	rc.Close()
	require.Equal(t, content, all)
	rangeReq, _ := http.NewRequest(http.MethodGet, redirect, nil)
	rangeReq.Header.Set("Range", "bytes=100-199")
	part, err := http.DefaultClient.Do(rangeReq)
	require.NoError(t, err)
	partBody, _ := io.ReadAll(part.Body)
	part.Body.Close()
	require.Equal(t, http.StatusPartialContent, part.StatusCode)
	require.Equal(t, content[100:200], partBody)

	// Published releases are found by tag.
	require.NoError(t, e.sim.PublishRelease(testRepo, "v1.4.0"))
	byTag, _, err := e.gh.Repositories.GetReleaseByTag(e.ctx, testOwner, testName, "v1.4.0")
	require.NoError(t, err)
	require.Equal(t, rel.GetID(), byTag.GetID())
	one, _, err := e.gh.Repositories.GetRelease(e.ctx, testOwner, testName, rel.GetID())
	require.NoError(t, err)
	require.False(t, one.GetDraft())

	// The public browser_download_url redirects without credentials.
	dl, err := http.Get(a.GetBrowserDownloadURL())
	require.NoError(t, err)
	dlBody, _ := io.ReadAll(dl.Body)
	dl.Body.Close()
	require.Equal(t, http.StatusOK, dl.StatusCode)
	require.True(t, bytes.Equal(content, dlBody))

	infos := e.sim.Runs(testRepo)
	require.Len(t, infos, 1)
	require.Equal(t, wantAsset, infos[0].Jobs[0].AssetName)
	require.Equal(t, a.GetID(), infos[0].Jobs[0].AssetID)
}

func TestDispatchWithoutRunDetailsAnswers204(t *testing.T) {
	t.Parallel()
	e := setup(t)
	resp, err := e.gh.Actions.CreateWorkflowDispatchEventByFileName(e.ctx, testOwner, testName, "deskforge.yml", github.CreateWorkflowDispatchEventRequest{
		Ref: "dev", Inputs: contractInputs("build_01hx0nodetails", "linux", "x64", "2.0.0"),
	})
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	runs := e.sim.Runs(testRepo)
	require.Len(t, runs, 1)
	require.Equal(t, "dev", runs[0].Branch)
	require.Equal(t, "build_01hx0nodetails", runs[0].Inputs[templates.InputBuildID])
	require.Equal(t, []string{"ubuntu-24.04"}, e.jobLabels(t, runs[0].ID))
}

func (e *env) jobLabels(t *testing.T, runID int64) []string {
	jobs, _, err := e.gh.Actions.ListWorkflowJobs(e.ctx, testOwner, testName, runID, nil)
	require.NoError(t, err)
	return jobs.Jobs[0].Labels
}

func TestDispatchValidation(t *testing.T) {
	t.Parallel()
	good := func() map[string]any { return contractInputs("build_01hx0valid", "windows", "x64", "1.0.0") }
	without := func(k string) map[string]any { m := good(); delete(m, k); return m }
	with := func(k string, v any) map[string]any { m := good(); m[k] = v; return m }
	tests := []struct {
		name    string
		ghes    bool
		path    string
		body    map[string]any
		status  int
		message string
	}{
		{name: "undeclared input", body: map[string]any{"ref": "main", "inputs": with("foo", "x")}, status: 422, message: `Unexpected inputs provided: ["foo"]`},
		{name: "two undeclared inputs", body: map[string]any{"ref": "main", "inputs": with("zeta", "1")}, status: 422, message: `Unexpected inputs provided: ["zeta"]`},
		{name: "missing required input", body: map[string]any{"ref": "main", "inputs": without(templates.InputBuildID)}, status: 422, message: "Required input 'build_id' not provided"},
		{name: "non-string input", body: map[string]any{"ref": "main", "inputs": with(templates.InputVersion, 1)}, status: 422, message: "Invalid request.\n\nFor 'properties/version', 1 is not a string."},
		{name: "missing ref", body: map[string]any{"inputs": good()}, status: 422, message: "Invalid request.\n\n\"ref\" wasn't supplied."},
		{name: "unknown ref", body: map[string]any{"ref": "nope", "inputs": good()}, status: 422, message: "No ref found for: nope"},
		{name: "unknown workflow", path: "repos/" + testRepo + "/actions/workflows/other.yml/dispatches", body: map[string]any{"ref": "main", "inputs": good()}, status: 404, message: "Not Found"},
		{name: "unknown repository", path: "repos/acme/nope/actions/workflows/deskforge.yml/dispatches", body: map[string]any{"ref": "main", "inputs": good()}, status: 404, message: "Not Found"},
		{name: "unknown key", body: map[string]any{"ref": "main", "inputs": good(), "extra": true}, status: 422, message: "Invalid request.\n\n\"extra\" is not a permitted key."},
		{name: "GHES rejects return_run_details", ghes: true, body: map[string]any{"ref": "main", "inputs": good(), "return_run_details": true}, status: 422, message: "Invalid request.\n\n\"return_run_details\" is not a permitted key."},
		{name: "GHES accepts a plain dispatch", ghes: true, body: map[string]any{"ref": "main", "inputs": good()}, status: 204},
		{name: "optional input may be omitted", body: map[string]any{"ref": "refs/heads/main", "inputs": without(templates.InputConfig)}, status: 204},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, func(o *Options) { o.GHES = tc.ghes })
			p := tc.path
			if p == "" {
				p = "repos/" + testRepo + "/actions/workflows/deskforge.yml/dispatches"
			}
			req, err := e.gh.NewRequest(http.MethodPost, p, tc.body)
			require.NoError(t, err)
			resp, err := e.gh.Do(e.ctx, req, nil)
			require.Equal(t, tc.status, resp.StatusCode)
			if tc.status < 300 {
				require.NoError(t, err)
				require.Len(t, e.sim.Runs(testRepo), 1)
				return
			}
			var ghErr *github.ErrorResponse
			require.ErrorAs(t, err, &ghErr)
			require.Equal(t, tc.message, ghErr.Message)
			require.True(t, strings.HasPrefix(ghErr.DocumentationURL, "https://docs.github.com/rest"), ghErr.DocumentationURL)
			require.Empty(t, e.sim.Runs(testRepo), "a refused dispatch creates no run")
		})
	}
}

func TestWorkflowWithoutDispatchTriggerIsRefused(t *testing.T) {
	t.Parallel()
	e := setup(t)
	require.NoError(t, e.sim.SetFile(testRepo, "main", ".github/workflows/ci.yml", []byte("name: CI\non: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps: []\n")))
	_, err := e.gh.Actions.CreateWorkflowDispatchEventByFileName(e.ctx, testOwner, testName, "ci.yml", github.CreateWorkflowDispatchEventRequest{Ref: "main"})
	var ghErr *github.ErrorResponse
	require.ErrorAs(t, err, &ghErr)
	require.Equal(t, http.StatusUnprocessableEntity, ghErr.Response.StatusCode)
	require.Equal(t, "Workflow does not have 'workflow_dispatch' trigger", ghErr.Message)
}

func TestWorkflowsArePerRef(t *testing.T) {
	t.Parallel()
	e := setup(t)
	wf := strings.Replace(string(testWorkflow()), "name: DeskForge build", "name: Feature build", 1)
	require.NoError(t, e.sim.SetFile(testRepo, "dev", ".github/workflows/feature.yml", []byte(wf)))
	req := github.CreateWorkflowDispatchEventRequest{Ref: "main", Inputs: contractInputs("build_01hx0perref", "linux", "arm64", "1.0.0")}
	resp, err := e.gh.Actions.CreateWorkflowDispatchEventByFileName(e.ctx, testOwner, testName, "feature.yml", req)
	require.Error(t, err, "the workflow is not on main")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	req.Ref = "dev"
	_, err = e.gh.Actions.CreateWorkflowDispatchEventByFileName(e.ctx, testOwner, testName, "feature.yml", req)
	require.NoError(t, err)
	runs, _, err := e.gh.Actions.ListWorkflowRunsByFileName(e.ctx, testOwner, testName, "feature.yml", nil)
	require.NoError(t, err)
	require.Len(t, runs.WorkflowRuns, 1)
	require.Equal(t, "Feature build", runs.WorkflowRuns[0].GetName())
	require.Equal(t, "dev", runs.WorkflowRuns[0].GetHeadBranch())

	wfs, _, err := e.gh.Actions.ListWorkflows(e.ctx, testOwner, testName, nil)
	require.NoError(t, err)
	require.Equal(t, 1, wfs.GetTotalCount(), "only workflows on the default branch are listed")
	w, _, err := e.gh.Actions.GetWorkflowByFileName(e.ctx, testOwner, testName, "deskforge.yml")
	require.NoError(t, err)
	require.Equal(t, "DeskForge build", w.GetName())
	require.Equal(t, ".github/workflows/deskforge.yml", w.GetPath())
	byID, _, err := e.gh.Actions.GetWorkflowByID(e.ctx, testOwner, testName, w.GetID())
	require.NoError(t, err)
	require.Equal(t, w.GetPath(), byID.GetPath())
}

func TestListRunsFiltersAndPagination(t *testing.T) {
	t.Parallel()
	e := setup(t)
	start := e.clock.Now()
	var ids []int64
	for i := range 7 {
		d := e.dispatch(t, contractInputs(fmt.Sprintf("build_01hx0page%d", i), "linux", "x64", "1.0.0"))
		ids = append(ids, d.WorkflowRunID)
		e.clock.Advance(time.Second)
	}

	var seen []int64
	opts := &github.ListWorkflowRunsOptions{ListOptions: github.ListOptions{PerPage: 3}}
	pages := 0
	for {
		runs, resp, err := e.gh.Actions.ListWorkflowRunsByFileName(e.ctx, testOwner, testName, "deskforge.yml", opts)
		require.NoError(t, err)
		require.Equal(t, 7, runs.GetTotalCount())
		for _, r := range runs.WorkflowRuns {
			seen = append(seen, r.GetID())
		}
		pages++
		if pages == 1 {
			require.Equal(t, 3, resp.LastPage)
		}
		if resp.NextPage == 0 {
			require.Equal(t, 2, resp.PrevPage)
			require.Equal(t, 1, resp.FirstPage)
			break
		}
		opts.Page = resp.NextPage
	}
	require.Equal(t, 3, pages)
	for i := range ids {
		require.Equal(t, ids[len(ids)-1-i], seen[i], "newest first")
	}

	cases := []struct {
		name string
		opts github.ListWorkflowRunsOptions
		want int
	}{
		{"event", github.ListWorkflowRunsOptions{Event: "workflow_dispatch"}, 7},
		{"other event", github.ListWorkflowRunsOptions{Event: "push"}, 0},
		{"created since", github.ListWorkflowRunsOptions{Created: ">=" + start.Add(4*time.Second).Format(time.RFC3339)}, 3},
		{"created before", github.ListWorkflowRunsOptions{Created: "<" + start.Add(2*time.Second).Format(time.RFC3339)}, 2},
		{"created range", github.ListWorkflowRunsOptions{Created: start.Add(time.Second).Format(time.RFC3339) + ".." + start.Add(3*time.Second).Format(time.RFC3339)}, 3},
		{"head sha", github.ListWorkflowRunsOptions{HeadSHA: e.sim.Branches(testRepo)["main"]}, 7},
		{"other head sha", github.ListWorkflowRunsOptions{HeadSHA: strings.Repeat("0", 40)}, 0},
		{"status queued", github.ListWorkflowRunsOptions{Status: "queued"}, 7}, // no Tick yet: nothing started
		{"branch", github.ListWorkflowRunsOptions{Branch: "dev"}, 0},
	}
	for _, tc := range cases {
		runs, _, err := e.gh.Actions.ListRepositoryWorkflowRuns(e.ctx, testOwner, testName, &tc.opts)
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, runs.GetTotalCount(), tc.name)
		require.Len(t, runs.WorkflowRuns, tc.want, tc.name)
	}

	e.finish()
	for _, status := range []string{"completed", "success"} {
		runs, _, err := e.gh.Actions.ListRepositoryWorkflowRuns(e.ctx, testOwner, testName, &github.ListWorkflowRunsOptions{Status: status})
		require.NoError(t, err)
		require.Equal(t, 7, runs.GetTotalCount(), status)
	}

	req, _ := e.gh.NewRequest(http.MethodGet, "repos/"+testRepo+"/actions/runs?created=yesterday", nil)
	_, err := e.gh.Do(e.ctx, req, nil)
	var ghErr *github.ErrorResponse
	require.ErrorAs(t, err, &ghErr)
	require.Equal(t, http.StatusUnprocessableEntity, ghErr.Response.StatusCode)
}

func TestCancel(t *testing.T) {
	t.Parallel()
	e := setup(t)
	timing := e.sim.Timing()
	queued := e.dispatch(t, contractInputs("build_01hx0cancelq", "linux", "x64", "1.0.0"))
	_, err := e.gh.Actions.CancelWorkflowRunByID(e.ctx, testOwner, testName, queued.WorkflowRunID)
	var accepted *github.AcceptedError
	require.ErrorAs(t, err, &accepted, "go-github reports 202 as *AcceptedError")

	running := e.dispatch(t, contractInputs("build_01hx0cancelr", "linux", "arm64", "1.0.0"))
	e.clock.Advance(timing.Queued + 2*timing.PerStep + timing.PerStep/2)
	_, err = e.gh.Actions.CancelWorkflowRunByID(e.ctx, testOwner, testName, running.WorkflowRunID)
	require.ErrorAs(t, err, &accepted)
	e.advance(time.Hour)

	for _, id := range []int64{queued.WorkflowRunID, running.WorkflowRunID} {
		run, _, err := e.gh.Actions.GetWorkflowRunByID(e.ctx, testOwner, testName, id)
		require.NoError(t, err)
		require.Equal(t, "completed", run.GetStatus())
		require.Equal(t, "cancelled", run.GetConclusion())
	}
	jobs, _, err := e.gh.Actions.ListWorkflowJobs(e.ctx, testOwner, testName, running.WorkflowRunID, nil)
	require.NoError(t, err)
	var conclusions []string
	for _, st := range jobs.Jobs[0].Steps {
		conclusions = append(conclusions, st.GetConclusion())
	}
	require.Equal(t, []string{"success", "success", "cancelled", "skipped", "skipped", "skipped"}, conclusions)
	require.Empty(t, e.sim.Releases(testRepo), "a cancelled build uploads nothing")

	_, err = e.gh.Actions.CancelWorkflowRunByID(e.ctx, testOwner, testName, running.WorkflowRunID)
	var ghErr *github.ErrorResponse
	require.ErrorAs(t, err, &ghErr)
	require.Equal(t, http.StatusConflict, ghErr.Response.StatusCode)
	require.Equal(t, "Cannot cancel a workflow run that is completed.", ghErr.Message)

	_, err = e.gh.Actions.CancelWorkflowRunByID(e.ctx, testOwner, testName, 42)
	require.ErrorAs(t, err, &ghErr)
	require.Equal(t, http.StatusNotFound, ghErr.Response.StatusCode)
}

func TestRerunStartsANewAttempt(t *testing.T) {
	t.Parallel()
	e := setup(t, func(o *Options) {
		o.Scenario = []Rule{{Platform: "windows", Attempts: 1, Outcome: OutcomeFailure}}
	})
	d := e.dispatch(t, contractInputs("build_01hx0rerun", "windows", "arm64", "3.1.0"))
	_, err := e.gh.Actions.RerunWorkflowByID(e.ctx, testOwner, testName, d.WorkflowRunID)
	var ghErr *github.ErrorResponse
	require.ErrorAs(t, err, &ghErr, "a running workflow cannot be rerun")
	require.Equal(t, http.StatusForbidden, ghErr.Response.StatusCode)

	e.finish()
	run, _, err := e.gh.Actions.GetWorkflowRunByID(e.ctx, testOwner, testName, d.WorkflowRunID)
	require.NoError(t, err)
	require.Equal(t, "failure", run.GetConclusion())
	require.Empty(t, e.sim.Releases(testRepo))

	resp, err := e.gh.Actions.RerunWorkflowByID(e.ctx, testOwner, testName, d.WorkflowRunID)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	run, _, err = e.gh.Actions.GetWorkflowRunByID(e.ctx, testOwner, testName, d.WorkflowRunID)
	require.NoError(t, err)
	require.Equal(t, 2, run.GetRunAttempt())
	require.Equal(t, "queued", run.GetStatus())
	require.Equal(t, fmt.Sprintf("%s/repos/%s/actions/runs/%d/attempts/1", e.srv.URL, testRepo, d.WorkflowRunID), run.GetPreviousAttemptURL())

	e.finish()
	run, _, err = e.gh.Actions.GetWorkflowRunByID(e.ctx, testOwner, testName, d.WorkflowRunID)
	require.NoError(t, err)
	require.Equal(t, "success", run.GetConclusion())
	latest, _, err := e.gh.Actions.ListWorkflowJobs(e.ctx, testOwner, testName, d.WorkflowRunID, nil)
	require.NoError(t, err)
	require.Equal(t, 1, latest.GetTotalCount())
	require.Equal(t, int64(2), latest.Jobs[0].GetRunAttempt())
	all, _, err := e.gh.Actions.ListWorkflowJobs(e.ctx, testOwner, testName, d.WorkflowRunID, &github.ListWorkflowJobsOptions{Filter: "all"})
	require.NoError(t, err)
	require.Equal(t, 2, all.GetTotalCount())
	first, _, err := e.gh.Actions.ListWorkflowJobsAttempt(e.ctx, testOwner, testName, d.WorkflowRunID, 1, nil)
	require.NoError(t, err)
	require.Equal(t, "failure", first.Jobs[0].GetConclusion())
	require.Len(t, e.sim.Releases(testRepo), 1)
}

func TestScenarioOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		rules      []Rule
		inputs     map[string]any
		status     string
		conclusion string
		asset      bool
	}{
		{"default succeeds", nil, contractInputs("build_01hx0s1", "linux", "x64", "1.0.0"), "completed", "success", true},
		{"-fail pre-release fails", nil, contractInputs("build_01hx0s2", "linux", "x64", "1.0.0-fail"), "completed", "failure", false},
		{"-hang pre-release stays queued", nil, contractInputs("build_01hx0s3", "linux", "x64", "1.0.0-hang.1"), "queued", "", false},
		{"-noasset succeeds without asset", nil, contractInputs("build_01hx0s4", "linux", "x64", "1.0.0-noasset"), "completed", "success", false},
		{"platform rule", []Rule{{Platform: "mac", Outcome: OutcomeFailure}}, contractInputs("build_01hx0s5", "mac", "x64", "1.0.0"), "completed", "failure", false},
		{"rule for another platform", []Rule{{Platform: "mac", Outcome: OutcomeFailure}}, contractInputs("build_01hx0s6", "windows", "x64", "1.0.0"), "completed", "success", true},
		{"build id rule hangs in progress", []Rule{{BuildID: "build_01hx0s7", Outcome: OutcomeHangInProgress}}, contractInputs("build_01hx0s7", "linux", "arm64", "1.0.0"), "in_progress", "", false},
		{"invalid config fails", nil, func() map[string]any {
			m := contractInputs("build_01hx0s8", "linux", "x64", "1.0.0")
			m[templates.InputConfig] = "{not json"
			return m
		}(), "completed", "failure", false},
		{"unknown runner label stays queued", nil, func() map[string]any {
			m := contractInputs("build_01hx0s9", "linux", "x64", "1.0.0")
			m[templates.InputRunner] = "self-hosted-gpu"
			return m
		}(), "queued", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, func(o *Options) { o.Scenario = tc.rules })
			d := e.dispatch(t, tc.inputs)
			e.advance(time.Hour)
			run, _, err := e.gh.Actions.GetWorkflowRunByID(e.ctx, testOwner, testName, d.WorkflowRunID)
			require.NoError(t, err)
			require.Equal(t, tc.status, run.GetStatus())
			require.Equal(t, tc.conclusion, run.GetConclusion())
			rels := e.sim.Releases(testRepo)
			if tc.asset {
				require.Len(t, rels, 1)
				require.Len(t, rels[0].Assets, 1)
			} else {
				require.Empty(t, rels)
			}
		})
	}
}

func TestAssetNameFromConfig(t *testing.T) {
	t.Parallel()
	e := setup(t)
	in := contractInputs("build_01hx0assetname", "windows", "arm64", "0.9.1")
	in[templates.InputConfig] = `{"name":"Ignored","assetName":"custom-0.9.1-windows-arm64.msi"}`
	e.dispatch(t, in)
	in = contractInputs("build_01hx0assetname2", "linux", "arm64", "0.9.1")
	in[templates.InputConfig] = ""
	e.dispatch(t, in)
	e.finish()
	rels := e.sim.Releases(testRepo)
	require.Len(t, rels, 1)
	var names []string
	for _, a := range rels[0].Assets {
		names = append(names, a.Name)
	}
	require.ElementsMatch(t, []string{"custom-0.9.1-windows-arm64.msi", templates.AssetName("", "0.9.1", "linux", "arm64")}, names)

	// A rebuild of the same version replaces the asset of the same name.
	in = contractInputs("build_01hx0assetname3", "linux", "arm64", "0.9.1")
	in[templates.InputConfig] = ""
	e.dispatch(t, in)
	e.finish()
	rels = e.sim.Releases(testRepo)
	require.Len(t, rels[0].Assets, 2)
}

func TestPrivateRepoDownloadNeedsAToken(t *testing.T) {
	t.Parallel()
	e := setup(t)
	require.NoError(t, e.sim.AddRepo("acme/private-app", RepoOptions{Private: true, Workflows: map[string][]byte{"deskforge.yml": testWorkflow()}}))
	req, _ := e.gh.NewRequest(http.MethodPost, "repos/acme/private-app/actions/workflows/deskforge.yml/dispatches",
		map[string]any{"ref": "main", "inputs": contractInputs("build_01hx0private", "mac", "x64", "5.0.0")})
	_, err := e.gh.Do(e.ctx, req, nil)
	require.NoError(t, err)
	e.finish()
	require.NoError(t, e.sim.PublishRelease("acme/private-app", "v5.0.0"))
	repo, _, err := e.gh.Repositories.Get(e.ctx, "acme", "private-app")
	require.NoError(t, err)
	require.True(t, repo.GetPrivate())
	rel, _, err := e.gh.Repositories.GetReleaseByTag(e.ctx, "acme", "private-app", "v5.0.0")
	require.NoError(t, err)
	u := rel.Assets[0].GetBrowserDownloadURL()
	anon, err := http.Get(u)
	require.NoError(t, err)
	anon.Body.Close()
	require.Equal(t, http.StatusNotFound, anon.StatusCode)
	authed, _ := http.NewRequest(http.MethodGet, u, nil)
	authed.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(authed)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestUnknownIDsAnswer404(t *testing.T) {
	t.Parallel()
	e := setup(t)
	check := func(err error) {
		t.Helper()
		var ghErr *github.ErrorResponse
		require.True(t, errors.As(err, &ghErr), "%v", err)
		require.Equal(t, http.StatusNotFound, ghErr.Response.StatusCode)
		require.Equal(t, "Not Found", ghErr.Message)
	}
	_, _, err := e.gh.Actions.GetWorkflowRunByID(e.ctx, testOwner, testName, 1)
	check(err)
	_, _, err = e.gh.Actions.GetWorkflowJobByID(e.ctx, testOwner, testName, 1)
	check(err)
	_, _, err = e.gh.Repositories.GetReleaseAsset(e.ctx, testOwner, testName, 1)
	check(err)
	_, _, err = e.gh.Repositories.Get(e.ctx, "acme", "missing")
	check(err)
	_, _, err = e.gh.Actions.ListWorkflowRunsByFileName(e.ctx, testOwner, testName, "missing.yml", nil)
	check(err)
	req, _ := e.gh.NewRequest(http.MethodGet, "repos/"+testRepo+"/no/such/endpoint", nil)
	_, err = e.gh.Do(e.ctx, req, nil)
	check(err)
}
