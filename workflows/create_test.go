package workflows_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
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
	"github.com/deskforge/deskforge/workflows"
)

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// failingInserter fails every job insert, after the build row was written
// in the same transaction.
type failingInserter struct{}

func (failingInserter) InsertTx(context.Context, *gorm.DB, river.JobArgs, *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	return nil, errors.New("queue unavailable")
}

type createBundle struct {
	ctx     context.Context
	db      *models.DB
	store   *models.Store
	engine  *workflows.Engine
	clock   *testClock
	client  *river.Client[*sql.Tx]
	webApp  models.Project
	ownRepo models.Project
}

func setupCreate(t *testing.T, dialect string) *createBundle {
	t.Helper()
	ctx := context.Background()
	db := dbtest.Open(t, dialect)
	store := models.NewStore(db)
	clock := &testClock{now: time.Date(2024, 1, 20, 10, 0, 0, 0, time.UTC)}
	engine := workflows.NewEngine(store, nil, clock, nil, workflows.Options{
		PublicURL:   "http://localhost:8080",
		BuilderRepo: "deskforge/builder",
		Runners:     templates.RunnerTable{"mac/arm64": "macos-26", "mac/x64": "macos-15-intel", "linux/x64": "ubuntu-24.04", "windows/x64": "windows-2025"},
	})
	client, err := river.NewClient[*sql.Tx](db.RiverDriver(), &river.Config{})
	require.NoError(t, err)

	webApp := models.Project{Name: "My App", URL: "https://example.com", Version: "1.2.3", AppID: "com.example.myapp",
		Platforms: "mac,linux", WindowWidth: 1024, WindowHeight: 768, WindowResizable: true, FeatureTray: true}
	require.NoError(t, store.CreateProject(ctx, &webApp))
	ownRepo := models.Project{Name: "Tool", Repository: "acme/tool", Workflow: "build.yml", Ref: "release", Platforms: "windows"}
	require.NoError(t, store.CreateProject(ctx, &ownRepo))
	return &createBundle{ctx: ctx, db: db, store: store, engine: engine, clock: clock, client: client, webApp: webApp, ownRepo: ownRepo}
}

func (b *createBundle) count(t *testing.T, table string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, b.db.Gorm.Raw("SELECT count(*) FROM "+table).Scan(&n).Error)
	return n
}

func TestCreateBuild(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			bundle := setupCreate(t, dialect)
			ctx := bundle.ctx

			t.Run("WebAppSnapshot", func(t *testing.T) {
				b, err := bundle.engine.CreateBuild(ctx, workflows.CreateBuildRequest{ProjectID: bundle.webApp.ID, Platform: "mac", Arch: "arm64"})
				require.NoError(t, err)
				require.True(t, strings.HasPrefix(b.ID, "build_"))
				require.Equal(t, models.StatusQueued, b.Status)
				require.Equal(t, "1.2.3", b.Version, "defaults to the project's version")
				require.Equal(t, "deskforge/builder", b.Repository)
				require.Equal(t, "deskforge.yml", b.Workflow)
				require.Equal(t, "main", b.Ref)
				require.Equal(t, "macos-26", b.Runner)
				wantAsset := "my-app-" + templates.ProjectTag(bundle.webApp.ID) + "-1.2.3-mac-arm64.dmg"
				require.Equal(t, wantAsset, b.AssetName, "the project tag keeps projects whose names slug alike apart")
				require.Equal(t, bundle.clock.Now(), b.CreatedAt)

				var cfg templates.BuildConfig
				require.NoError(t, json.Unmarshal([]byte(b.Config), &cfg))
				require.Equal(t, templates.BuildConfig{
					Name: "My App", URL: "https://example.com", AppID: "com.example.myapp", AssetName: wantAsset,
					Window:   templates.WindowConfig{Width: 1024, Height: 768, Resizable: true},
					Features: templates.Features{Tray: true},
				}, cfg)

				stored, err := bundle.store.GetBuild(ctx, b.ID)
				require.NoError(t, err)
				require.Equal(t, b.Config, stored.Config)
				require.Equal(t, int64(1), stored.LogSeq)

				entries, err := bundle.store.ReadLog(ctx, models.LogQuery{BuildID: b.ID, Limit: 10})
				require.NoError(t, err)
				require.Len(t, entries, 1)
				require.Equal(t, "Build queued", entries[0].Message)
				require.Equal(t, models.LevelInfo, entries[0].Level)

				var tr models.BuildTransition
				require.NoError(t, bundle.db.Gorm.Where("build_id = ?", b.ID).Take(&tr).Error)
				require.Equal(t, "", tr.FromStatus)
				require.Equal(t, models.StatusQueued, tr.ToStatus)

				jobs, err := bundle.client.JobList(ctx, river.NewJobListParams().Kinds("dispatch_build"))
				require.NoError(t, err)
				require.Len(t, jobs.Jobs, 1)
				var decoded workflows.DispatchBuildArgs
				require.NoError(t, json.Unmarshal(jobs.Jobs[0].EncodedArgs, &decoded))
				require.Equal(t, b.ID, decoded.BuildID)
			})

			t.Run("OwnRepositoryAndDefaults", func(t *testing.T) {
				b, err := bundle.engine.CreateBuild(ctx, workflows.CreateBuildRequest{ProjectID: bundle.ownRepo.ID, Platform: "windows", Version: "2.0.0-beta.1.exp.5114f85"})
				require.NoError(t, err)
				require.Equal(t, "x64", b.Arch)
				require.Equal(t, "acme/tool", b.Repository)
				require.Equal(t, "build.yml", b.Workflow)
				require.Equal(t, "release", b.Ref)
				require.Equal(t, "windows-2025", b.Runner)
				require.Equal(t, "tool-"+templates.ProjectTag(bundle.ownRepo.ID)+"-2.0.0-beta.1.exp.5114f85-windows-x64.msi", b.AssetName)
			})

			t.Run("RetryOf", func(t *testing.T) {
				b, err := bundle.engine.CreateBuild(ctx, workflows.CreateBuildRequest{ProjectID: bundle.ownRepo.ID, Platform: "windows", Version: "1.0.0", RetryOf: "build_01hqz0000000000000000000aa"})
				require.NoError(t, err)
				require.NotNil(t, b.RetryOf)
				require.Equal(t, "build_01hqz0000000000000000000aa", *b.RetryOf)
				entries, err := bundle.store.ReadLog(ctx, models.LogQuery{BuildID: b.ID, Limit: 10})
				require.NoError(t, err)
				require.Equal(t, "Build queued (retry of build_01hqz0000000000000000000aa)", entries[0].Message)
			})
		})
	}
}

func TestCreateBuildValidation(t *testing.T) {
	t.Parallel()
	bundle := setupCreate(t, models.DialectSQLite)
	noVersion := models.Project{Name: "NoVersion", URL: "https://example.org", Platforms: "linux"}
	require.NoError(t, bundle.store.CreateProject(bundle.ctx, &noVersion))

	tests := []struct {
		name  string
		req   workflows.CreateBuildRequest
		field string
	}{
		{"MissingPlatform", workflows.CreateBuildRequest{ProjectID: bundle.webApp.ID}, "platform"},
		{"UnknownPlatform", workflows.CreateBuildRequest{ProjectID: bundle.webApp.ID, Platform: "ios"}, "platform"},
		{"PlatformNotInProject", workflows.CreateBuildRequest{ProjectID: bundle.webApp.ID, Platform: "windows"}, "platform"},
		{"BadArch", workflows.CreateBuildRequest{ProjectID: bundle.webApp.ID, Platform: "mac", Arch: "x86"}, "arch"},
		{"LeadingV", workflows.CreateBuildRequest{ProjectID: bundle.webApp.ID, Platform: "mac", Version: "v1.0.0"}, "version"},
		{"TwoComponents", workflows.CreateBuildRequest{ProjectID: bundle.webApp.ID, Platform: "mac", Version: "1.0"}, "version"},
		{"LeadingZero", workflows.CreateBuildRequest{ProjectID: bundle.webApp.ID, Platform: "mac", Version: "01.0.0"}, "version"},
		{"NoVersionAnywhere", workflows.CreateBuildRequest{ProjectID: noVersion.ID, Platform: "linux"}, "version"},
		{"BuildMetadata", workflows.CreateBuildRequest{ProjectID: bundle.webApp.ID, Platform: "mac", Version: "1.0.0+build.5"}, "version"},
		{"NoRunner", workflows.CreateBuildRequest{ProjectID: noVersion.ID, Platform: "linux", Arch: "arm64", Version: "1.0.0"}, "arch"},
		{"LongIdempotencyKey", workflows.CreateBuildRequest{ProjectID: bundle.webApp.ID, Platform: "mac", IdempotencyKey: strings.Repeat("k", 256)}, "Idempotency-Key"},
		{"ControlInIdempotencyKey", workflows.CreateBuildRequest{ProjectID: bundle.webApp.ID, Platform: "mac", IdempotencyKey: "a\nb"}, "Idempotency-Key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bundle.engine.CreateBuild(bundle.ctx, tt.req)
			var fe *models.FieldError
			require.ErrorAs(t, err, &fe)
			require.ErrorIs(t, err, models.ErrInvalid)
			require.Equal(t, tt.field, fe.Field)
			require.NotEmpty(t, fe.Message)
		})
	}
	require.Zero(t, bundle.count(t, "builds"))
	require.Zero(t, bundle.count(t, "river_job"))

	_, err := bundle.engine.CreateBuild(bundle.ctx, workflows.CreateBuildRequest{ProjectID: "proj_missing", Platform: "mac"})
	require.ErrorIs(t, err, models.ErrNotFound)

	noBuilder := workflows.NewEngine(bundle.store, nil, bundle.clock, nil, workflows.Options{})
	noBuilder.SetInserter(failingInserter{})
	_, err = noBuilder.CreateBuild(bundle.ctx, workflows.CreateBuildRequest{ProjectID: bundle.webApp.ID, Platform: "mac"})
	var se *models.StateError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "builder_not_configured", se.Code)
}

func TestCreateBuildIdempotency(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			bundle := setupCreate(t, dialect)
			ctx := bundle.ctx
			req := workflows.CreateBuildRequest{ProjectID: bundle.webApp.ID, Platform: "mac", Arch: "arm64", IdempotencyKey: "deploy-42"}

			first, err := bundle.engine.CreateBuild(ctx, req)
			require.NoError(t, err)
			bundle.clock.Advance(23 * time.Hour)
			again, err := bundle.engine.CreateBuild(ctx, req)
			require.NoError(t, err)
			require.Equal(t, first.ID, again.ID)
			require.Equal(t, int64(1), bundle.count(t, "builds"))
			require.Equal(t, int64(1), bundle.count(t, "river_job"))

			other := req
			other.Platform = "linux"
			other.Arch = "x64"
			_, err = bundle.engine.CreateBuild(ctx, other)
			var se *models.StateError
			require.ErrorAs(t, err, &se)
			require.ErrorIs(t, err, models.ErrConflict)
			require.Equal(t, "idempotency_key_reused", se.Code)

			// The same key on another project is another key.
			onOther := workflows.CreateBuildRequest{ProjectID: bundle.ownRepo.ID, Platform: "windows", Version: "1.0.0", IdempotencyKey: "deploy-42"}
			b, err := bundle.engine.CreateBuild(ctx, onOther)
			require.NoError(t, err)
			require.NotEqual(t, first.ID, b.ID)

			// After 24 hours the key is free again.
			bundle.clock.Advance(2 * time.Hour)
			later, err := bundle.engine.CreateBuild(ctx, other)
			require.NoError(t, err)
			require.NotEqual(t, first.ID, later.ID)
			require.Equal(t, "linux", later.Platform)
		})
	}
}

func TestCreateBuildConcurrentIdempotentRequests(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			bundle := setupCreate(t, dialect)
			req := workflows.CreateBuildRequest{ProjectID: bundle.webApp.ID, Platform: "linux", IdempotencyKey: "same"}
			const n = 8
			ids := make([]string, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					b, err := bundle.engine.CreateBuild(bundle.ctx, req)
					ids[i], errs[i] = b.ID, err
				}()
			}
			wg.Wait()
			for i := range n {
				require.NoError(t, errs[i])
				require.Equal(t, ids[0], ids[i])
			}
			require.Equal(t, int64(1), bundle.count(t, "builds"))
			require.Equal(t, int64(1), bundle.count(t, "river_job"))
			require.Equal(t, int64(1), bundle.count(t, "idempotency_keys"))
		})
	}
}

func TestCreateBuildFailedInsertLeavesNothing(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			bundle := setupCreate(t, dialect)
			bundle.engine.SetInserter(failingInserter{})
			_, err := bundle.engine.CreateBuild(bundle.ctx, workflows.CreateBuildRequest{
				ProjectID: bundle.webApp.ID, Platform: "mac", IdempotencyKey: "k1",
			})
			require.ErrorContains(t, err, "queue unavailable")
			for _, table := range []string{"builds", "build_log_entries", "build_transitions", "idempotency_keys", "river_job"} {
				require.Zero(t, bundle.count(t, table), table)
			}
		})
	}
}

func TestCreateBuildSendsTheUpdateEndpointWithAutoUpdate(t *testing.T) {
	t.Parallel()
	bundle := setupCreate(t, models.DialectSQLite)
	p, err := bundle.store.UpdateProject(bundle.ctx, bundle.webApp.ID, func(p *models.Project) error {
		p.FeatureAutoUpdate = true
		return nil
	})
	require.NoError(t, err)
	b, err := bundle.engine.CreateBuild(bundle.ctx, workflows.CreateBuildRequest{ProjectID: p.ID, Platform: "linux", Arch: "x64"})
	require.NoError(t, err)
	var cfg templates.BuildConfig
	require.NoError(t, json.Unmarshal([]byte(b.Config), &cfg))
	require.True(t, cfg.Features.AutoUpdate)
	require.Equal(t, "http://localhost:8080/updates/"+p.ID+"/{{target}}/{{arch}}/{{current_version}}", cfg.UpdateEndpoint)
}
