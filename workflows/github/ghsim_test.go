package github_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/templates"
	"github.com/deskforge/deskforge/workflows"
	"github.com/deskforge/deskforge/workflows/ghsim"
	forge "github.com/deskforge/deskforge/workflows/github"
)

// These tests run the Client against the GitHub simulator over real HTTP,
// complementing ghsim's own end-to-end test (workflows/ghsim/forge_test.go)
// with what the Client promises: conditional polling, webhook parsing of
// what the simulator sends, rate limits, faults and GHES.

const (
	simRepo     = "acme/builder"
	simWorkflow = "deskforge.yml"
	simSecret   = "It's a Secret to Everybody"
)

type simBundle struct {
	sim    *ghsim.Sim
	server *httptest.Server
	clock  *ghsim.FakeClock
	client *forge.Client
}

// setupSim starts a simulator with one repository and a Client on it.
// Pacing is loose unless opts says otherwise.
func setupSim(t *testing.T, simOpts ghsim.Options, repo ghsim.RepoOptions, opts forge.Options) *simBundle {
	t.Helper()
	clock := ghsim.NewFakeClock(time.Now().UTC().Truncate(time.Second))
	simOpts.Clock = clock
	simOpts.Timing = ghsim.FastTiming()
	sim, server := ghsim.NewServer(simOpts)
	t.Cleanup(server.Close)
	require.NoError(t, sim.AddRepo(simRepo, repo))

	opts.BaseURL = server.URL
	opts.Token = "ghp_client_under_test"
	if opts.WritesPerMinute == 0 {
		opts.WritesPerMinute, opts.WriteBurst = 60_000, 100
	}
	client, err := forge.New(context.Background(), opts)
	require.NoError(t, err)
	return &simBundle{sim: sim, server: server, clock: clock, client: client}
}

func simDispatch(buildID string) workflows.DispatchRequest {
	return workflows.DispatchRequest{Repo: simRepo, Workflow: simWorkflow, Ref: "main", Inputs: map[string]string{
		templates.InputBuildID: buildID, templates.InputPlatform: "linux", templates.InputArch: "x64",
		templates.InputVersion: "1.0.0", templates.InputRunner: "ubuntu-24.04",
		templates.InputConfig: `{"name":"Sim App","assetName":""}`,
	}}
}

// finish advances the simulator past the end of every run dispatched so far.
func (b *simBundle) finish() {
	b.clock.Advance(b.sim.Timing().RunDuration() + b.sim.Timing().LogDelay)
	b.sim.Tick()
}

func (b *simBundle) endpoint(name string) ghsim.EndpointCounter {
	return b.sim.Counters().Endpoints[name]
}

func TestSimulatorConditionalPolling(t *testing.T) {
	t.Parallel()
	b := setupSim(t, ghsim.Options{}, ghsim.RepoOptions{}, forge.Options{})
	ctx := context.Background()
	res, err := b.client.DispatchWorkflow(ctx, simDispatch("build_01poll"))
	require.NoError(t, err)
	require.NotZero(t, res.RunID)

	first, err := b.client.GetRun(ctx, simRepo, res.RunID)
	require.NoError(t, err)
	require.Equal(t, "deskforge build_01poll linux-x64 v1.0.0", first.DisplayTitle)
	second, err := b.client.GetRun(ctx, simRepo, res.RunID)
	require.NoError(t, err)
	require.Equal(t, first, second)
	runs := b.endpoint("GET /repos/{owner}/{repo}/actions/runs/{run_id}")
	require.Equal(t, 2, runs.Requests)
	require.Equal(t, 1, runs.NotModified, "the second poll is a free 304")
	require.Equal(t, 1, runs.Counted)

	jobs, err := b.client.ListJobs(ctx, simRepo, res.RunID)
	require.NoError(t, err)
	again, err := b.client.ListJobs(ctx, simRepo, res.RunID)
	require.NoError(t, err)
	require.Equal(t, jobs, again)
	require.Equal(t, 1, b.endpoint("GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs").NotModified)

	b.finish()
	done, err := b.client.GetRun(ctx, simRepo, res.RunID)
	require.NoError(t, err)
	require.Equal(t, "completed", done.Status, "a changed run is not served from the cache")
	require.Equal(t, "success", done.Conclusion)
	require.Equal(t, 1, b.endpoint("GET /repos/{owner}/{repo}/actions/runs/{run_id}").NotModified)
}

// webhookSink receives the simulator's deliveries the way the server does:
// ValidateWebhook, then ParseWebhook.
type webhookSink struct {
	mu     sync.Mutex
	events []workflows.WebhookEvent
	errs   []error
}

func (s *webhookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err == nil {
		err = forge.ValidateWebhook(r.Header.Get(forge.HeaderSignature256), body, []byte(simSecret))
	}
	var event workflows.WebhookEvent
	if err == nil {
		event, err = forge.ParseWebhook(r.Header.Get(forge.HeaderEvent), body)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs = append(s.errs, err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	s.events = append(s.events, event)
	w.WriteHeader(http.StatusAccepted)
}

func TestSimulatorWebhooksParse(t *testing.T) {
	t.Parallel()
	b := setupSim(t, ghsim.Options{}, ghsim.RepoOptions{}, forge.Options{})
	sink := &webhookSink{}
	receiver := httptest.NewServer(sink)
	t.Cleanup(receiver.Close)
	b.sim.SetWebhook(receiver.URL, simSecret)

	ctx := context.Background()
	res, err := b.client.DispatchWorkflow(ctx, simDispatch("build_01hook"))
	require.NoError(t, err)
	b.sim.Tick()
	b.finish()
	b.sim.Tick()

	sink.mu.Lock()
	defer sink.mu.Unlock()
	require.Empty(t, sink.errs)
	var runCompleted *workflows.Run
	var jobCompleted *workflows.Job
	for _, e := range sink.events {
		require.Equal(t, simRepo, e.Repo)
		switch e.Event {
		case "workflow_run":
			require.NotNil(t, e.Run)
			require.Equal(t, res.RunID, e.Run.ID)
			require.Equal(t, "build_01hook", templates.RunNameBuildID(e.Run.DisplayTitle))
			if e.Action == "completed" {
				runCompleted = e.Run
			}
		case "workflow_job":
			require.NotNil(t, e.Job)
			require.Equal(t, res.RunID, e.Job.RunID)
			if e.Action == "completed" {
				jobCompleted = e.Job
			}
		}
	}
	require.NotNil(t, runCompleted, "events: %+v", sink.events)
	require.Equal(t, "success", runCompleted.Conclusion)
	require.NotNil(t, jobCompleted)
	require.Equal(t, "success", jobCompleted.Conclusion)
	require.Equal(t, []string{"ubuntu-24.04"}, jobCompleted.Labels)
	require.NotEmpty(t, jobCompleted.RunnerName)
	require.False(t, jobCompleted.StartedAt.IsZero())
	require.False(t, jobCompleted.CompletedAt.Before(jobCompleted.StartedAt))
	require.NotEmpty(t, jobCompleted.Steps)
	for _, s := range jobCompleted.Steps {
		require.Equal(t, "completed", s.Status, "step %q", s.Name)
	}

	// The same job read through the API agrees with the webhook.
	jobs, err := b.client.ListJobs(ctx, simRepo, res.RunID)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	require.Equal(t, *jobCompleted, jobs[0])
}

func TestSimulatorWebhookWrongSecret(t *testing.T) {
	t.Parallel()
	b := setupSim(t, ghsim.Options{}, ghsim.RepoOptions{}, forge.Options{})
	sink := &webhookSink{}
	receiver := httptest.NewServer(sink)
	t.Cleanup(receiver.Close)
	b.sim.SetWebhook(receiver.URL, "not the receiver's secret")

	_, err := b.client.DispatchWorkflow(context.Background(), simDispatch("build_01badsig"))
	require.NoError(t, err)
	b.sim.Tick()

	sink.mu.Lock()
	defer sink.mu.Unlock()
	require.Empty(t, sink.events)
	require.NotEmpty(t, sink.errs)
	for _, err := range sink.errs {
		require.ErrorIs(t, err, forge.ErrBadSignature)
	}
}

func TestSimulatorRateLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		faults    ghsim.Faults
		writes    bool
		secondary bool
		wait      time.Duration // expected distance of Until from now
	}{
		{name: "primary 403", faults: ghsim.Faults{PrimaryLimit: 3}, wait: time.Hour},
		{name: "primary 429", faults: ghsim.Faults{PrimaryLimit: 3, RateLimit429: true}, wait: time.Hour},
		{name: "secondary 403", faults: ghsim.Faults{SecondaryLimit: 3}, writes: true, secondary: true, wait: time.Minute},
		{name: "secondary 429", faults: ghsim.Faults{SecondaryLimit: 3, RateLimit429: true}, writes: true, secondary: true, wait: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupSim(t, ghsim.Options{Faults: tt.faults}, ghsim.RepoOptions{}, forge.Options{})
			ctx := context.Background()
			call := func() error {
				if tt.writes {
					_, err := b.client.DispatchWorkflow(ctx, simDispatch("build_01limit"))
					return err
				}
				_, err := b.client.RepositoryPrivate(ctx, simRepo)
				return err
			}
			for range 3 {
				require.NoError(t, call())
			}
			err := call()
			var rl *workflows.RateLimitError
			require.ErrorAs(t, err, &rl)
			require.Equal(t, tt.secondary, rl.Secondary)
			require.WithinDuration(t, time.Now().Add(tt.wait), rl.Until, 5*time.Second)
		})
	}
}

func TestSimulatorPacingKeepsUnderTheSecondaryLimit(t *testing.T) {
	t.Parallel()
	// The simulator allows 80 writes a minute; the client's default pace is
	// 60 a minute, so a burst of 100 dispatches never reaches the limit:
	// what cannot go out is refused locally with a time to come back.
	b := setupSim(t, ghsim.Options{}, ghsim.RepoOptions{}, forge.Options{
		WritesPerMinute: forge.DefaultWritesPerMinute, MaxPacingWait: time.Millisecond,
	})
	ctx := context.Background()
	sent, paced := 0, 0
	for range 100 {
		_, err := b.client.DispatchWorkflow(ctx, simDispatch("build_01burst"))
		var rl *workflows.RateLimitError
		switch {
		case err == nil:
			sent++
		case errors.As(err, &rl) && rl.Message == "paced locally":
			paced++
			require.True(t, rl.Until.After(time.Now()))
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	require.Equal(t, 100, sent+paced)
	require.LessOrEqual(t, sent, 2)
	dispatches := b.endpoint("POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches")
	require.Equal(t, sent, dispatches.Requests)
	require.Zero(t, dispatches.RateLimited)
}

func TestSimulatorFaultsAndRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("5xx is transient", func(t *testing.T) {
		t.Parallel()
		b := setupSim(t, ghsim.Options{Faults: ghsim.Faults{API5xx: 1}}, ghsim.RepoOptions{}, forge.Options{})
		_, err := b.client.GetRun(ctx, simRepo, 1)
		var te *workflows.TransientError
		require.ErrorAs(t, err, &te)
		require.Contains(t, []int{http.StatusInternalServerError, http.StatusBadGateway}, te.Status)
	})
	t.Run("undeclared input is invalid", func(t *testing.T) {
		t.Parallel()
		b := setupSim(t, ghsim.Options{}, ghsim.RepoOptions{}, forge.Options{})
		req := simDispatch("build_01bad")
		req.Inputs["colour"] = "blue"
		_, err := b.client.DispatchWorkflow(ctx, req)
		var ie *workflows.InvalidError
		require.ErrorAs(t, err, &ie)
		require.Equal(t, http.StatusUnprocessableEntity, ie.Status)
		require.Contains(t, ie.Message, "colour")
		require.True(t, b.client.SupportsRunDetails())
	})
	t.Run("unknown workflow is not found", func(t *testing.T) {
		t.Parallel()
		b := setupSim(t, ghsim.Options{}, ghsim.RepoOptions{}, forge.Options{})
		req := simDispatch("build_01none")
		req.Workflow = "missing.yml"
		_, err := b.client.DispatchWorkflow(ctx, req)
		require.ErrorIs(t, err, workflows.ErrNotFound)
	})
	t.Run("log not available while the job runs", func(t *testing.T) {
		t.Parallel()
		b := setupSim(t, ghsim.Options{}, ghsim.RepoOptions{}, forge.Options{})
		res, err := b.client.DispatchWorkflow(ctx, simDispatch("build_01log"))
		require.NoError(t, err)
		b.clock.Advance(b.sim.Timing().Queued + b.sim.Timing().PerStep)
		b.sim.Tick()
		jobs, err := b.client.ListJobs(ctx, simRepo, res.RunID)
		require.NoError(t, err)
		require.Len(t, jobs, 1)
		require.Equal(t, "in_progress", jobs[0].Status)
		_, err = b.client.JobLogs(ctx, simRepo, jobs[0].ID)
		require.ErrorIs(t, err, workflows.ErrNotFound)
	})
}

func TestSimulatorGHES(t *testing.T) {
	t.Parallel()
	b := setupSim(t, ghsim.Options{GHES: true}, ghsim.RepoOptions{}, forge.Options{})
	ctx := context.Background()
	since := b.clock.Now().Add(-time.Minute)
	for _, id := range []string{"build_01ghesa", "build_01ghesb"} {
		res, err := b.client.DispatchWorkflow(ctx, simDispatch(id))
		require.NoError(t, err)
		require.Zero(t, res.RunID)
	}
	require.False(t, b.client.SupportsRunDetails())
	dispatches := b.endpoint("POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches")
	require.Equal(t, 3, dispatches.Requests, "one rejected dispatch, then two without the key")

	runs, err := b.client.ListDispatchRuns(ctx, simRepo, simWorkflow, since)
	require.NoError(t, err)
	var ids []string
	for _, r := range runs {
		ids = append(ids, templates.RunNameBuildID(r.DisplayTitle))
	}
	require.ElementsMatch(t, []string{"build_01ghesa", "build_01ghesb"}, ids)
}

func TestSimulatorPrivateRepositoryAsset(t *testing.T) {
	t.Parallel()
	b := setupSim(t, ghsim.Options{}, ghsim.RepoOptions{Private: true}, forge.Options{})
	ctx := context.Background()
	private, err := b.client.RepositoryPrivate(ctx, simRepo)
	require.NoError(t, err)
	require.True(t, private)

	_, err = b.client.DispatchWorkflow(ctx, simDispatch("build_01priv"))
	require.NoError(t, err)
	b.finish()

	name := templates.AssetName("Sim App", "1.0.0", "linux", "x64")
	asset, err := b.client.FindReleaseAsset(ctx, simRepo, "v1.0.0", name)
	require.NoError(t, err, "the release is a draft: only the list shows it")
	require.Equal(t, name, asset.Name)
	require.True(t, asset.Draft)
	signed, err := b.client.AssetDownloadURL(ctx, simRepo, asset.ID)
	require.NoError(t, err)

	resp, err := http.Get(signed) // no token: the URL is enough
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, ghsim.AssetBytes(name), body)
	require.Equal(t, asset.Size, int64(len(body)))
	sum := sha256.Sum256(body)
	require.Equal(t, hex.EncodeToString(sum[:]), asset.SHA256, "the digest names the bytes")
}
