// Package e2e tests DeskForge end to end over real HTTP: the API server
// (server.New) with its build engine on a real River client (SQLite, and
// PostgreSQL when DESKFORGE_TEST_DATABASE_URL is set), the GitHub simulator
// (workflows/ghsim) on an httptest server, and the go-github v62 client
// (workflows/github) between them. Webhooks travel from the simulator to
// the server's /webhooks/github, signed.
package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/client"
	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/server"
	"github.com/deskforge/deskforge/templates"
	"github.com/deskforge/deskforge/workflows"
	"github.com/deskforge/deskforge/workflows/ghsim"
	ghclient "github.com/deskforge/deskforge/workflows/github"
)

const (
	webhookSecret = "e2e webhook secret"
	githubToken   = "ghp_e2e"
	builderRepo   = "deskforge/builder"
	appRepo       = "acme/desktop"
)

// config is what a test changes in the harness.
type config struct {
	dialect  string
	faults   ghsim.Faults
	webhooks bool // the simulator delivers webhooks to DeskForge
	scenario []ghsim.Rule
	// secondaryLimit is the simulator's writes per minute (0 = GitHub's 80).
	secondaryLimit int
	// privateRepo makes the builder repository private.
	privateRepo bool
	// downloadMode is the engine's download mode ("" = redirect).
	downloadMode string
	// maxQueue fails builds whose run stays queued this long.
	maxQueue time.Duration
	// noRun fails builds whose run never appears after this long.
	noRun time.Duration
	// workers is River's MaxWorkers (default 10).
	workers int
	// staleAfter and reconcileEvery pace the reconciler (defaults 250ms
	// and 100ms).
	staleAfter, reconcileEvery time.Duration
	// logWait is the engine's LogWaitTimeout (default 5s); maxBuild its
	// MaxBuildDuration (default the engine's).
	logWait, maxBuild time.Duration
	// secondaryWait and maxSecondaryWait are the GitHub client's waits
	// after a secondary limit without Retry-After (defaults 1 and 16 min).
	secondaryWait, maxSecondaryWait time.Duration
	// timing paces simulated runs (default ghsim.FastTiming); stepPoll is
	// the engine's StepPollInterval (default 8s).
	timing   *ghsim.Timing
	stepPoll time.Duration
}

// harness is one DeskForge server (restartable) on one database, and one
// simulated GitHub.
type harness struct {
	t   *testing.T
	ctx context.Context
	cfg config

	db    *models.DB
	store *models.Store

	sim      *ghsim.Sim
	simSrv   *httptest.Server
	simClock *simClock

	mu      sync.Mutex
	node    *node
	dfURL   string
	adminKy string
	project models.Project
	apiKey  string
	client  *http.Client // raw requests; redirects are not followed
}

// typed returns the client package on the running node with the project
// key, as an outside program uses it (following redirects to GitHub), but
// strict: it refuses answers with fields the client does not know.
func (h *harness) typed() *client.Client {
	return h.typedWith(h.apiKey)
}

func (h *harness) typedWith(key string) *client.Client {
	h.t.Helper()
	h.mu.Lock()
	base := h.dfURL
	h.mu.Unlock()
	c, err := client.New(client.Options{BaseURL: base, APIKey: key, HTTPClient: h.simSrv.Client(), Strict: true})
	require.NoError(h.t, err)
	return c
}

// node is one running DeskForge process: HTTP server, engine and River.
type node struct {
	srv    *httptest.Server
	river  *river.Client[*sql.Tx]
	engine *workflows.Engine
	gh     *ghclient.Client
}

// simClock is the simulator's clock: real time plus an offset that a test
// can push forward (to let a rate-limit window pass without waiting).
type simClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().UTC().Add(c.offset)
}

func (c *simClock) jump(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

func testLogger() *slog.Logger {
	if os.Getenv("E2E_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newHarness(t *testing.T, cfg config) *harness {
	t.Helper()
	if cfg.dialect == "" {
		cfg.dialect = models.DialectSQLite
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := &harness{t: t, ctx: ctx, cfg: cfg, simClock: &simClock{}}
	h.db = dbtest.Open(t, cfg.dialect)
	h.store = models.NewStore(h.db)

	timing := ghsim.FastTiming()
	timing.TickInterval = 5 * time.Millisecond
	if cfg.timing != nil {
		timing = *cfg.timing
	}
	faults := cfg.faults
	if faults.Reorder > 0 && faults.ReorderDelay == 0 {
		faults.ReorderDelay = 40 * time.Millisecond
	}
	h.cfg.faults = faults
	h.sim, h.simSrv = ghsim.NewServer(ghsim.Options{
		Clock:          h.simClock,
		Timing:         timing,
		Scenario:       cfg.scenario,
		Faults:         faults,
		Tokens:         []string{githubToken},
		SecondaryLimit: cfg.secondaryLimit,
		Logger:         testLogger(),
	})
	t.Cleanup(h.simSrv.Close)
	require.NoError(t, h.sim.AddRepo(builderRepo, ghsim.RepoOptions{Private: cfg.privateRepo}))
	require.NoError(t, h.sim.AddRepo(appRepo, ghsim.RepoOptions{}))
	simCtx, stopSim := context.WithCancel(ctx)
	simDone := make(chan struct{})
	go func() {
		defer close(simDone)
		_ = h.sim.Run(simCtx) // returns the context's error when the test ends
	}()
	t.Cleanup(func() { stopSim(); <-simDone })

	h.start()
	t.Cleanup(h.stop)
	t.Cleanup(func() {
		if t.Failed() {
			h.dump()
		}
	})

	// An admin key, a web-app project on the builder repository, and its key.
	var err error
	_, h.adminKy, err = h.store.CreateAPIKey(ctx, models.NewAPIKeyParams{Name: "admin", Role: models.RoleAdmin})
	require.NoError(t, err)
	h.project = models.Project{Name: "My App", URL: "https://example.com", Version: "1.0.0", Platforms: "mac,windows,linux",
		WindowWidth: 1200, WindowHeight: 800, WindowResizable: true}
	require.NoError(t, h.store.CreateProject(ctx, &h.project))
	_, h.apiKey, err = h.store.CreateAPIKey(ctx, models.NewAPIKeyParams{Name: "ci", Role: models.RoleProject, ProjectID: h.project.ID})
	require.NoError(t, err)
	return h
}

// start brings a DeskForge node up on the harness's database.
func (h *harness) start() {
	h.t.Helper()
	n := &node{}
	var err error
	n.gh, err = ghclient.New(h.ctx, ghclient.Options{
		BaseURL:               h.sim.BaseURL() + "/",
		Token:                 githubToken,
		HTTPClient:            h.simSrv.Client(),
		WritesPerMinute:       600000,
		WriteBurst:            10000,
		WritesPerHour:         100_000_000, // the simulator has no hourly budget unless told
		SecondaryLimitWait:    h.cfg.secondaryWait,
		MaxSecondaryLimitWait: h.cfg.maxSecondaryWait,
		Logger:                testLogger(),
	})
	require.NoError(h.t, err)
	maxQueue := cmpOr(h.cfg.maxQueue, time.Minute)
	n.engine = workflows.NewEngine(h.store, n.gh, nil, testLogger(), workflows.Options{
		BuilderRepo:       builderRepo,
		DownloadMode:      h.cfg.downloadMode,
		ReconcileInterval: cmpOr(h.cfg.reconcileEvery, 100*time.Millisecond),
		StaleAfter:        cmpOr(h.cfg.staleAfter, 250*time.Millisecond),
		NoRunTimeout:      cmpOr(h.cfg.noRun, 20*time.Second),
		MaxQueueDuration:  maxQueue,
		LogWaitTimeout:    cmpOr(h.cfg.logWait, 5*time.Second),
		MaxBuildDuration:  h.cfg.maxBuild,
		PollDelay:         50 * time.Millisecond,
		DispatchSettle:    200 * time.Millisecond,
		RetryDelay:        50 * time.Millisecond,
		MaxRetryDelay:     400 * time.Millisecond,
		HTTPClient:        h.simSrv.Client(),
		StepPollInterval:  h.cfg.stepPoll,
	})
	workers := river.NewWorkers()
	n.engine.RegisterWorkers(workers)
	n.river, err = river.NewClient(h.db.RiverDriver(), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cmpOr(h.cfg.workers, 10)}},
		Workers:           workers,
		PeriodicJobs:      n.engine.PeriodicJobs(),
		FetchCooldown:     20 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		Logger:            testLogger(),
		TestOnly:          true,
		// As serve configures River.
		JobTimeout:           workflows.JobTimeout,
		RescueStuckJobsAfter: workflows.RescueStuckJobsAfter,
	})
	require.NoError(h.t, err)
	require.NoError(h.t, n.river.Start(h.ctx))

	handler := server.New(server.Options{
		Store: h.store, Engine: n.engine, PublicURL: "http://deskforge.test",
		WebhookSecret: []byte(webhookSecret), Log: testLogger(),
	}).Handler()
	n.srv = httptest.NewServer(handler)
	raw := n.srv.Client()
	raw.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	h.mu.Lock()
	h.node = n
	h.client = raw
	h.dfURL = n.srv.URL
	h.mu.Unlock()
	if h.cfg.webhooks {
		h.sim.SetWebhook(h.dfURL+"/webhooks/github", webhookSecret)
	}
}

// stop shuts the node down as a process stop would: the HTTP server
// closes, River cancels running jobs (they are retried by the next node).
func (h *harness) stop() {
	h.mu.Lock()
	n := h.node
	h.node = nil
	h.mu.Unlock()
	if n == nil {
		return
	}
	n.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.river.StopAndCancel(ctx); err != nil && !errors.Is(err, context.Canceled) {
		h.t.Logf("stop river: %v", err)
	}
}

// api sends an authenticated request and decodes a JSON answer into out
// (when not nil); it returns the status and raw body.
func (h *harness) api(method, path string, body any, out any) (int, []byte) {
	h.t.Helper()
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		require.NoError(h.t, err)
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(h.ctx, method, h.dfURL+path, r)
	require.NoError(h.t, err)
	req.Header.Set("Authorization", "Bearer "+h.apiKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	h.mu.Lock()
	client := h.client
	h.mu.Unlock()
	resp, err := client.Do(req)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	if out != nil && resp.StatusCode < 300 {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields() // the client package's types are the whole wire format
		require.NoError(h.t, dec.Decode(out), "%s", data)
	}
	return resp.StatusCode, data
}

// trigger creates a build through the API.
func (h *harness) trigger(platform, arch, version string) client.TriggeredBuild {
	h.t.Helper()
	b, err := h.typed().TriggerBuild(h.ctx, h.project.ID, client.TriggerRequest{Platform: platform, Arch: arch, Version: version})
	require.NoError(h.t, err)
	return *b
}

func (h *harness) get(id string) client.Build {
	h.t.Helper()
	b, err := h.typed().GetBuild(h.ctx, id)
	require.NoError(h.t, err)
	return *b
}

func (h *harness) logs(id string) []client.LogEntry {
	h.t.Helper()
	page, err := h.typed().BuildLogs(h.ctx, id, client.LogOptions{Limit: 10000})
	require.NoError(h.t, err)
	require.Equal(h.t, id, page.BuildID)
	return page.Logs
}

// waitTerminal waits until every build is terminal and returns them.
func (h *harness) waitTerminal(timeout time.Duration, ids ...string) map[string]client.Build {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	out := map[string]client.Build{}
	for {
		pending := 0
		for _, id := range ids {
			if b, ok := out[id]; ok && isTerminal(b.Status) {
				continue
			}
			b, err := h.store.GetBuild(h.ctx, id)
			require.NoError(h.t, err)
			if isTerminal(b.Status) {
				out[id] = h.get(id)
				continue
			}
			pending++
		}
		if pending == 0 {
			return out
		}
		if time.Now().After(deadline) {
			var stuck []string
			for _, id := range ids {
				if _, ok := out[id]; !ok {
					b, _ := h.store.GetBuild(h.ctx, id)
					stuck = append(stuck, fmt.Sprintf("%s=%s(run %v, conclusion %q, dispatched %v)", id, b.Status, ptr(b.RunID), b.RunConclusion, b.DispatchedAt != nil))
				}
			}
			h.t.Fatalf("%d builds not terminal after %s: %v", pending, timeout, stuck)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitStatus waits until a build has status.
func (h *harness) waitStatus(id, status string, timeout time.Duration) {
	h.t.Helper()
	require.Eventually(h.t, func() bool {
		b, err := h.store.GetBuild(h.ctx, id)
		return err == nil && b.Status == status
	}, timeout, 20*time.Millisecond, "build %s never became %s", id, status)
}

// transitions returns a build's stored status changes.
func (h *harness) transitions(id string) []string {
	h.t.Helper()
	var ts []models.BuildTransition
	require.NoError(h.t, h.db.Gorm.Where("build_id = ?", id).Order("id").Find(&ts).Error)
	var out []string
	for _, tr := range ts {
		out = append(out, tr.FromStatus+">"+tr.ToStatus)
	}
	return out
}

// runsByBuild counts the simulator's runs per build id.
func (h *harness) runsByBuild() map[string]int {
	out := map[string]int{}
	for _, repo := range []string{builderRepo, appRepo} {
		for _, r := range h.sim.Runs(repo) {
			out[templates.RunNameBuildID(r.DisplayTitle)]++
		}
	}
	return out
}

// download fetches a build's installer as an outside client does
// (following the redirect to GitHub) and returns the bytes.
func (h *harness) download(id string) []byte {
	h.t.Helper()
	a, err := h.typed().OpenArtifact(h.ctx, id, 0)
	require.NoError(h.t, err)
	defer a.Body.Close()
	data, err := io.ReadAll(a.Body)
	require.NoError(h.t, err)
	require.Equal(h.t, a.Size, int64(len(data)))
	return data
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func isTerminal(s string) bool { return models.IsTerminal(s) }

func ptr[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// waitJobs waits until n River jobs of kind have completed.
func (h *harness) waitJobs(kind string, n int64) {
	h.t.Helper()
	require.Eventually(h.t, func() bool {
		var done int64
		err := h.db.Gorm.Raw("SELECT count(*) FROM river_job WHERE kind = ? AND state = 'completed'", kind).Scan(&done).Error
		return err == nil && done >= n
	}, 60*time.Second, 20*time.Millisecond, "%d %s jobs never completed", n, kind)
}

// fillWriteWindow spends n of the token's writes for the current minute
// (cancelling a run that does not exist still counts as a write).
func (h *harness) fillWriteWindow(n int) {
	h.t.Helper()
	for i := 0; i < n; i++ {
		req, err := http.NewRequestWithContext(h.ctx, http.MethodPost, h.sim.BaseURL()+"/repos/"+builderRepo+"/actions/runs/999999999/cancel", nil)
		require.NoError(h.t, err)
		req.Header.Set("Authorization", "Bearer "+githubToken)
		resp, err := h.simSrv.Client().Do(req)
		require.NoError(h.t, err)
		resp.Body.Close()
		require.Equal(h.t, http.StatusNotFound, resp.StatusCode)
	}
}

// dump logs the simulator's counters and the builds' states, to debug a
// failed test.
func (h *harness) dump() {
	c := h.sim.Counters()
	for name, ec := range c.Endpoints {
		h.t.Logf("sim %-70s %+v", name, ec)
	}
	var rows []struct {
		Status string
		N      int
	}
	h.db.Gorm.Raw("SELECT status, count(*) AS n FROM builds GROUP BY status").Scan(&rows)
	h.t.Logf("builds by status: %+v", rows)
	var jobs []struct {
		Kind  string
		State string
		N     int
	}
	h.db.Gorm.Raw("SELECT kind, state, count(*) AS n FROM river_job GROUP BY kind, state").Scan(&jobs)
	h.t.Logf("river jobs: %+v", jobs)
	var reasons []struct {
		FailureReason string
		N             int
	}
	h.db.Gorm.Raw("SELECT failure_reason, count(*) AS n FROM builds GROUP BY failure_reason").Scan(&reasons)
	h.t.Logf("failure reasons: %+v", reasons)
	simStates := map[string]int{}
	for _, r := range append(h.sim.Runs(builderRepo), h.sim.Runs(appRepo)...) {
		simStates[r.Status+"/"+r.Conclusion+"/"+string(r.Outcome)]++
	}
	h.t.Logf("simulated runs: %v", simStates)
	var total, worst time.Duration
	ds := h.sim.Deliveries()
	for _, d := range ds {
		total += d.Duration
		worst = max(worst, d.Duration)
	}
	if len(ds) > 0 {
		h.t.Logf("webhook deliveries: %d, mean answer %s, slowest %s", len(ds), total/time.Duration(len(ds)), worst)
	}
}
