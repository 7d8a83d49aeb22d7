package workflows

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/templates"
)

// fakeForge is an in-memory GitHub for unit tests. Errors queued in errs
// (by method name) are returned, one per call, before the method does
// anything else.
type fakeForge struct {
	mu sync.Mutex

	nextID     int64
	runs       map[int64]*Run
	jobs       map[int64][]Job // by run id
	assets     map[string]Asset
	logs       map[int64]string // by job id; missing = 404
	private    bool
	noDetails  bool // GHES: dispatch returns RunID 0
	errs       map[string][]error
	dispatches []DispatchRequest
	cancelled  []int64
	calls      map[string]int
	// dispatchErrAfterCreate makes the next dispatch create its run and
	// then fail, as when GitHub's answer is lost.
	dispatchErrAfterCreate error
}

func newFakeForge() *fakeForge {
	return &fakeForge{
		nextID: 1000,
		runs:   map[int64]*Run{},
		jobs:   map[int64][]Job{},
		assets: map[string]Asset{},
		logs:   map[int64]string{},
		errs:   map[string][]error{},
		calls:  map[string]int{},
	}
}

func (f *fakeForge) fail(method string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[method] = append(f.errs[method], errs...)
}

// enter counts a call and pops a queued error. The caller holds f.mu.
func (f *fakeForge) enter(method string) error {
	f.calls[method]++
	if q := f.errs[method]; len(q) > 0 {
		f.errs[method] = q[1:]
		return q[0]
	}
	return nil
}

func (f *fakeForge) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func (f *fakeForge) DispatchWorkflow(_ context.Context, req DispatchRequest) (DispatchResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("DispatchWorkflow"); err != nil {
		return DispatchResult{}, err
	}
	f.dispatches = append(f.dispatches, req)
	f.nextID++
	i := req.Inputs
	run := &Run{
		ID: f.nextID, Repo: req.Repo, Event: "workflow_dispatch", Status: "queued",
		DisplayTitle: templates.DisplayTitle(i["build_id"], i["platform"], i["arch"], i["version"]),
		HTMLURL:      fmt.Sprintf("https://github.com/%s/actions/runs/%d", req.Repo, f.nextID),
		CreatedAt:    time.Now().UTC(), UpdatedAt: time.Now().UTC(), RunAttempt: 1,
	}
	f.runs[run.ID] = run
	f.jobs[run.ID] = []Job{{ID: run.ID * 10, RunID: run.ID, Name: "build", Status: "queued", Labels: []string{i["runner"]}}}
	if err := f.dispatchErrAfterCreate; err != nil {
		f.dispatchErrAfterCreate = nil
		return DispatchResult{}, err
	}
	if f.noDetails {
		return DispatchResult{}, nil
	}
	return DispatchResult{RunID: run.ID, RunURL: "api/" + fmt.Sprint(run.ID), HTMLURL: run.HTMLURL}, nil
}

func (f *fakeForge) ListDispatchRuns(_ context.Context, repo, workflow string, since time.Time) ([]Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("ListDispatchRuns"); err != nil {
		return nil, err
	}
	var out []Run
	for _, r := range f.runs {
		if r.Repo == repo && !r.CreatedAt.Before(since) {
			out = append(out, *r)
		}
	}
	return out, nil
}

func (f *fakeForge) GetRun(_ context.Context, repo string, runID int64) (Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("GetRun"); err != nil {
		return Run{}, err
	}
	r, ok := f.runs[runID]
	if !ok {
		return Run{}, ErrNotFound
	}
	return *r, nil
}

func (f *fakeForge) ListJobs(_ context.Context, repo string, runID int64) ([]Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("ListJobs"); err != nil {
		return nil, err
	}
	return append([]Job(nil), f.jobs[runID]...), nil
}

func (f *fakeForge) JobLogs(_ context.Context, repo string, jobID int64) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("JobLogs"); err != nil {
		return nil, err
	}
	l, ok := f.logs[jobID]
	if !ok {
		return nil, ErrNotFound
	}
	return io.NopCloser(strings.NewReader(l)), nil
}

func (f *fakeForge) CancelRun(_ context.Context, repo string, runID int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("CancelRun"); err != nil {
		return err
	}
	r, ok := f.runs[runID]
	if !ok {
		return ErrNotFound
	}
	if r.Status == "completed" {
		return &InvalidError{Status: 409, Message: "Cannot cancel a workflow run that is completed."}
	}
	f.cancelled = append(f.cancelled, runID)
	return nil
}

func (f *fakeForge) FindReleaseAsset(_ context.Context, repo, tag, name string) (Asset, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("FindReleaseAsset"); err != nil {
		return Asset{}, err
	}
	a, ok := f.assets[repo+"|"+tag+"|"+name]
	if !ok {
		return Asset{}, ErrNotFound
	}
	return a, nil
}

func (f *fakeForge) AssetDownloadURL(_ context.Context, repo string, assetID int64) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("AssetDownloadURL"); err != nil {
		return "", err
	}
	return fmt.Sprintf("https://signed.example/%d?token=short", assetID), nil
}

func (f *fakeForge) OpenAsset(_ context.Context, repo string, assetID int64, _ http.Header) (*http.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("OpenAsset"); err != nil {
		return nil, err
	}
	body := fmt.Sprintf("asset %d", assetID)
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Header: http.Header{"Content-Length": {fmt.Sprint(len(body))}},
		Body: io.NopCloser(strings.NewReader(body))}, nil
}

func (f *fakeForge) RepositoryPrivate(_ context.Context, repo string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("RepositoryPrivate"); err != nil {
		return false, err
	}
	return f.private, nil
}

// setRun changes a run and its job as GitHub would, and returns copies.
func (f *fakeForge) setRun(runID int64, fn func(r *Run, j *Job)) (Run, Job) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.runs[runID]
	j := &f.jobs[runID][0]
	fn(r, j)
	return *r, *j
}

// fakeInserter records the jobs the engine inserts; tests run them by hand.
type fakeInserter struct {
	mu     sync.Mutex
	jobs   []river.JobArgs
	queues map[string]string // job kind → queue of its last insertion ("" for the default)
}

func (i *fakeInserter) InsertTx(_ context.Context, _ *gorm.DB, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.jobs = append(i.jobs, args)
	if i.queues == nil {
		i.queues = map[string]string{}
	}
	i.queues[args.Kind()] = ""
	if opts != nil {
		i.queues[args.Kind()] = opts.Queue
	}
	return &rivertype.JobInsertResult{Job: &rivertype.JobRow{Kind: args.Kind()}}, nil
}

// take returns and forgets the recorded jobs of a kind.
func (i *fakeInserter) take(kind string) []river.JobArgs {
	i.mu.Lock()
	defer i.mu.Unlock()
	var out, rest []river.JobArgs
	for _, j := range i.jobs {
		if j.Kind() == kind {
			out = append(out, j)
		} else {
			rest = append(rest, j)
		}
	}
	i.jobs = rest
	return out
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testBundle is what an engine unit test needs.
type testBundle struct {
	ctx      context.Context
	db       *models.DB
	store    *models.Store
	forge    *fakeForge
	inserter *fakeInserter
	clock    *fakeClock
	engine   *Engine
}

func setup(t *testing.T, dialect string) *testBundle {
	t.Helper()
	db := dbtest.Open(t, dialect)
	store := models.NewStore(db)
	forge := newFakeForge()
	clock := &fakeClock{now: time.Now().UTC().Truncate(time.Second)}
	e := NewEngine(store, forge, clock, slog.New(slog.DiscardHandler), Options{
		PublicURL:   "http://deskforge.test",
		BuilderRepo: "acme/builder",
	})
	ins := &fakeInserter{}
	e.SetInserter(ins)
	return &testBundle{ctx: context.Background(), db: db, store: store, forge: forge, inserter: ins, clock: clock, engine: e}
}

// newBuild inserts a queued build as the API does (with its "Build queued"
// entry) and returns it.
func (tb *testBundle) newBuild(t *testing.T) models.Build {
	t.Helper()
	now := tb.clock.Now()
	b := models.Build{
		ID: models.NewID("build"), ProjectID: "proj_test", Version: "1.2.3", Platform: "mac", Arch: "arm64",
		Status: models.StatusQueued, CreatedAt: now, UpdatedAt: now, ForgeHost: DefaultForgeHost,
		Repository: "acme/app", Workflow: "deskforge.yml", Ref: "main", Runner: "macos-15",
		Config: `{"name":"App"}`, AssetName: "app-1.2.3-mac-arm64.dmg",
	}
	require.NoError(t, tb.db.Gorm.Create(&b).Error)
	require.NoError(t, tb.store.Tx(tb.ctx, func(tx *gorm.DB) error {
		return models.RecordTransitionTx(tb.ctx, tx, b.ID, "", models.StatusQueued, "created", now, models.LevelInfo, "Build queued")
	}))
	return b
}

func (tb *testBundle) build(t *testing.T, id string) models.Build {
	t.Helper()
	b, err := tb.store.LoadBuild(tb.ctx, id)
	require.NoError(t, err)
	return b
}

func (tb *testBundle) logs(t *testing.T, id string) []models.BuildLogEntry {
	t.Helper()
	var entries []models.BuildLogEntry
	require.NoError(t, tb.db.Gorm.Where("build_id = ?", id).Order("seq").Find(&entries).Error)
	return entries
}

func (tb *testBundle) transitions(t *testing.T, id string) []string {
	t.Helper()
	var ts []models.BuildTransition
	require.NoError(t, tb.db.Gorm.Where("build_id = ?", id).Order("id").Find(&ts).Error)
	var out []string
	for _, tr := range ts {
		out = append(out, tr.FromStatus+">"+tr.ToStatus)
	}
	return out
}

// dispatched creates a build and dispatches it; it returns the build and
// its run id.
func (tb *testBundle) dispatched(t *testing.T) (models.Build, int64) {
	t.Helper()
	b := tb.newBuild(t)
	require.NoError(t, tb.engine.dispatchBuild(tb.ctx, b.ID, false))
	b = tb.build(t, b.ID)
	require.NotNil(t, b.RunID)
	return b, *b.RunID
}

// runFinalize runs the recorded finalize jobs.
func (tb *testBundle) runFinalize(t *testing.T) error {
	t.Helper()
	var last error
	for _, j := range tb.inserter.take(FinalizeBuildArgs{}.Kind()) {
		last = tb.engine.finalizeBuild(tb.ctx, j.(FinalizeBuildArgs))
	}
	return last
}

func messages(entries []models.BuildLogEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Level+": "+e.Message)
	}
	return out
}

func (f *fakeForge) UploadReleaseAsset(context.Context, string, string, string, string, []byte) (Asset, error) {
	return Asset{}, &InvalidError{Status: 501, Message: "the fake forge does not upload"}
}

func (f *fakeForge) PublishRelease(context.Context, string, string, string) (string, error) {
	return "", &InvalidError{Status: 501, Message: "the fake forge does not publish"}
}
