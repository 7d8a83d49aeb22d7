package github_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/templates"
	"github.com/deskforge/deskforge/workflows"
	"github.com/deskforge/deskforge/workflows/ghsim"
	forge "github.com/deskforge/deskforge/workflows/github"
)

// errorClass is what the engine does with an error: the four kinds the
// Forge contract names (workflows/forge.go), plus success.
type errorClass int

const (
	classOK        errorClass = iota
	classNotFound             // workflows.ErrNotFound: the thing does not exist
	classInvalid              // *workflows.InvalidError: refused, asking again will not help
	classRateLimit            // *workflows.RateLimitError: wait, then go on
	classTransient            // *workflows.TransientError: retry, bounded
)

func classify(t *testing.T, err error) (errorClass, *workflows.InvalidError) {
	t.Helper()
	var invalid *workflows.InvalidError
	var limited *workflows.RateLimitError
	var transient *workflows.TransientError
	switch {
	case err == nil:
		return classOK, nil
	case errors.Is(err, workflows.ErrNotFound):
		return classNotFound, nil
	case errors.As(err, &invalid):
		return classInvalid, invalid
	case errors.As(err, &limited):
		return classRateLimit, nil
	case errors.As(err, &transient):
		return classTransient, nil
	}
	t.Fatalf("error of no class the engine knows: %T %v", err, err)
	return 0, nil
}

// TestDocumentedAnswersThroughTheClient (workflows/github/ANSWERS.md): for
// each endpoint the engine calls, the answers GitHub documents or is
// reported to give, as the simulator gives them over HTTP, reach the engine
// as the error class it acts on, with GitHub's message where a build's log
// quotes it.
func TestDocumentedAnswersThroughTheClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	noDispatchTrigger := []byte("name: DeskForge build\non:\n  push:\n    branches: [main]\njobs:\n  build:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo\n")

	// completedRun dispatches a build and lets its run complete.
	completedRun := func(t *testing.T, b *simBundle, buildID string) workflows.DispatchResult {
		t.Helper()
		res, err := b.client.DispatchWorkflow(ctx, simDispatch(buildID))
		require.NoError(t, err)
		b.finish()
		return res
	}

	tests := []struct {
		name    string
		sim     ghsim.Options
		prepare func(t *testing.T, b *simBundle)
		call    func(t *testing.T, b *simBundle) error
		want    errorClass
		status  int    // of an InvalidError
		message string // part of an InvalidError's message
	}{
		// POST .../actions/workflows/{workflow_id}/dispatches: the OpenAPI
		// lists 204 and 200 only.
		{name: "dispatch 200 with run details", want: classOK,
			call: func(t *testing.T, b *simBundle) error {
				res, err := b.client.DispatchWorkflow(ctx, simDispatch("build_01ok"))
				require.NotZero(t, res.RunID)
				return err
			}},
		{name: "dispatch 422 no workflow_dispatch trigger", want: classInvalid, status: 422, message: "Workflow does not have 'workflow_dispatch' trigger",
			prepare: func(t *testing.T, b *simBundle) {
				require.NoError(t, b.sim.SetFile(simRepo, "main", templates.InstallPath, noDispatchTrigger))
			},
			call: func(t *testing.T, b *simBundle) error {
				_, err := b.client.DispatchWorkflow(ctx, simDispatch("build_01trig"))
				return err
			}},
		{name: "dispatch 422 unknown ref", want: classInvalid, status: 422, message: "No ref found for: release/9",
			call: func(t *testing.T, b *simBundle) error {
				req := simDispatch("build_01ref")
				req.Ref = "release/9"
				_, err := b.client.DispatchWorkflow(ctx, req)
				return err
			}},
		{name: "dispatch 422 unexpected input", want: classInvalid, status: 422, message: `Unexpected inputs provided: ["colour"]`,
			call: func(t *testing.T, b *simBundle) error {
				req := simDispatch("build_01inp")
				req.Inputs["colour"] = "blue"
				_, err := b.client.DispatchWorkflow(ctx, req)
				return err
			}},
		{name: "dispatch 422 required input missing", want: classInvalid, status: 422, message: "Required input 'build_id' not provided",
			call: func(t *testing.T, b *simBundle) error {
				req := simDispatch("build_01req")
				delete(req.Inputs, templates.InputBuildID)
				_, err := b.client.DispatchWorkflow(ctx, req)
				return err
			}},
		{name: "dispatch 404 unknown workflow", want: classNotFound,
			call: func(t *testing.T, b *simBundle) error {
				req := simDispatch("build_01wf")
				req.Workflow = "missing.yml"
				_, err := b.client.DispatchWorkflow(ctx, req)
				return err
			}},
		{name: "dispatch 404 unknown repository", want: classNotFound,
			call: func(t *testing.T, b *simBundle) error {
				req := simDispatch("build_01repo")
				req.Repo = "acme/nope"
				_, err := b.client.DispatchWorkflow(ctx, req)
				return err
			}},
		{name: "dispatch 403 token cannot write", sim: ghsim.Options{Faults: ghsim.Faults{ReadOnly: true}},
			want: classInvalid, status: 403, message: "Resource not accessible by personal access token",
			call: func(t *testing.T, b *simBundle) error {
				_, err := b.client.DispatchWorkflow(ctx, simDispatch("build_01ro"))
				return err
			}},
		{name: "dispatch 401 bad credentials", sim: ghsim.Options{Tokens: []string{"ghp_another"}},
			want: classInvalid, status: 401, message: "Bad credentials",
			call: func(t *testing.T, b *simBundle) error {
				_, err := b.client.DispatchWorkflow(ctx, simDispatch("build_01cred"))
				return err
			}},
		{name: "dispatch 5xx", sim: ghsim.Options{Faults: ghsim.Faults{API5xx: 1}}, want: classTransient,
			call: func(t *testing.T, b *simBundle) error {
				_, err := b.client.DispatchWorkflow(ctx, simDispatch("build_01down"))
				return err
			}},

		// GET .../actions/workflows/{workflow_id}/runs: 200 listed; 404 for
		// an unknown workflow.
		{name: "list runs 200 without the build's run", want: classOK,
			call: func(t *testing.T, b *simBundle) error {
				runs, err := b.client.ListDispatchRuns(ctx, simRepo, simWorkflow, b.clock.Now().Add(-time.Minute))
				require.Empty(t, runs)
				return err
			}},
		{name: "list runs 404 unknown workflow", want: classNotFound,
			call: func(t *testing.T, b *simBundle) error {
				_, err := b.client.ListDispatchRuns(ctx, simRepo, "missing.yml", b.clock.Now())
				return err
			}},

		// GET .../actions/runs/{run_id} and .../jobs: 200 listed; 404 for a
		// deleted run.
		{name: "get run 404", want: classNotFound,
			call: func(t *testing.T, b *simBundle) error {
				_, err := b.client.GetRun(ctx, simRepo, 424242)
				return err
			}},
		{name: "list jobs 404", want: classNotFound,
			call: func(t *testing.T, b *simBundle) error {
				_, err := b.client.ListJobs(ctx, simRepo, 424242)
				return err
			}},

		// GET .../actions/jobs/{job_id}/logs: 302 listed; 404, 410, 403
		// reported.
		{name: "job log 410 expired", sim: ghsim.Options{Faults: ghsim.Faults{LogStatus: http.StatusGone}},
			want: classInvalid, status: 410,
			call: func(t *testing.T, b *simBundle) error {
				res := completedRun(t, b, "build_01gone")
				jobs, err := b.client.ListJobs(ctx, simRepo, res.RunID)
				require.NoError(t, err)
				_, err = b.client.JobLogs(ctx, simRepo, jobs[0].ID)
				return err
			}},
		{name: "job log 404 unknown job", want: classNotFound,
			call: func(t *testing.T, b *simBundle) error {
				_, err := b.client.JobLogs(ctx, simRepo, 424242)
				return err
			}},

		// POST .../actions/runs/{run_id}/cancel: 202 and 409 listed; 404
		// reported.
		{name: "cancel 202", want: classOK,
			call: func(t *testing.T, b *simBundle) error {
				res, err := b.client.DispatchWorkflow(ctx, simDispatch("build_01can"))
				require.NoError(t, err)
				return b.client.CancelRun(ctx, simRepo, res.RunID)
			}},
		{name: "cancel 409 completed run", want: classInvalid, status: 409, message: "Cannot cancel a workflow run that is completed.",
			call: func(t *testing.T, b *simBundle) error {
				return b.client.CancelRun(ctx, simRepo, completedRun(t, b, "build_01done").RunID)
			}},
		{name: "cancel 404 unknown run", want: classNotFound,
			call: func(t *testing.T, b *simBundle) error {
				return b.client.CancelRun(ctx, simRepo, 424242)
			}},
		{name: "cancel 403 token cannot write", want: classInvalid, status: 403, message: "Resource not accessible",
			call: func(t *testing.T, b *simBundle) error {
				res, err := b.client.DispatchWorkflow(ctx, simDispatch("build_01rocan"))
				require.NoError(t, err)
				b.sim.SetFaults(ghsim.Faults{ReadOnly: true})
				return b.client.CancelRun(ctx, simRepo, res.RunID)
			}},

		// Releases: list 200/404, assets 200, upload 201/422, update
		// 200/404, get asset 200/302/404.
		{name: "find asset without release", want: classNotFound,
			call: func(t *testing.T, b *simBundle) error {
				_, err := b.client.FindReleaseAsset(ctx, simRepo, "v9.9.9", "app.dmg")
				return err
			}},
		{name: "list releases 404 unknown repository", want: classNotFound,
			call: func(t *testing.T, b *simBundle) error {
				_, err := b.client.FindReleaseAsset(ctx, "acme/nope", "v1.0.0", "app.dmg")
				return err
			}},
		{name: "upload 422 already_exists", want: classInvalid, status: 422, message: "already_exists",
			call: func(t *testing.T, b *simBundle) error {
				completedRun(t, b, "build_01dup")
				name := templates.AssetName("Sim App", "1.0.0", "linux", "x64")
				_, err := b.client.UploadReleaseAsset(ctx, simRepo, "v1.0.0", name, "application/octet-stream", []byte("again"))
				return err
			}},
		{name: "upload 502 leaving a starter asset", sim: ghsim.Options{Faults: ghsim.Faults{UploadStarter: 1}}, want: classTransient,
			call: func(t *testing.T, b *simBundle) error {
				completedRun(t, b, "build_01st1")
				_, err := b.client.UploadReleaseAsset(ctx, simRepo, "v1.0.0", "latest.json", "application/json", []byte(`{"v":1}`))
				return err
			}},
		{name: "upload again over a starter asset", sim: ghsim.Options{Faults: ghsim.Faults{UploadStarter: 1}}, want: classOK,
			call: func(t *testing.T, b *simBundle) error {
				completedRun(t, b, "build_01st2")
				_, err := b.client.UploadReleaseAsset(ctx, simRepo, "v1.0.0", "latest.json", "application/json", []byte(`{"v":1}`))
				require.Error(t, err)
				b.sim.SetFaults(ghsim.Faults{})
				// The retry meets 422 already_exists: the client deletes the
				// starter asset, as GitHub documents, and uploads again.
				a, err := b.client.UploadReleaseAsset(ctx, simRepo, "v1.0.0", "latest.json", "application/json", []byte(`{"v":1}`))
				require.NoError(t, err)
				require.Equal(t, "latest.json", a.Name)
				got, ok := b.sim.AssetContent(simRepo, "v1.0.0", "latest.json")
				require.True(t, ok)
				require.JSONEq(t, `{"v":1}`, string(got))
				found, err := b.client.FindReleaseAsset(ctx, simRepo, "v1.0.0", "latest.json")
				require.NoError(t, err)
				require.Equal(t, a.ID, found.ID)
				return nil
			}},
		{name: "upload without release", want: classNotFound,
			call: func(t *testing.T, b *simBundle) error {
				_, err := b.client.UploadReleaseAsset(ctx, simRepo, "v9.9.9", "a.dmg", "application/octet-stream", []byte("x"))
				return err
			}},
		{name: "publish without release", want: classNotFound,
			call: func(t *testing.T, b *simBundle) error {
				_, err := b.client.PublishRelease(ctx, simRepo, "v9.9.9", "notes")
				return err
			}},
		{name: "get asset 404", want: classNotFound,
			call: func(t *testing.T, b *simBundle) error {
				_, err := b.client.AssetDownloadURL(ctx, simRepo, 424242)
				return err
			}},

		// GET /repos/{owner}/{repo}: 200, 301, 403, 404 listed.
		{name: "get repository 404", want: classNotFound,
			call: func(t *testing.T, b *simBundle) error {
				_, err := b.client.RepositoryPrivate(ctx, "acme/nope")
				return err
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupSim(t, tt.sim, ghsim.RepoOptions{}, forge.Options{})
			if tt.prepare != nil {
				tt.prepare(t, b)
			}
			class, invalid := classify(t, tt.call(t, b))
			require.Equal(t, tt.want, class)
			if tt.want == classInvalid {
				require.Equal(t, tt.status, invalid.Status)
				require.Contains(t, invalid.Message, tt.message)
			}
		})
	}
}
