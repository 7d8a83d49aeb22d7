package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/server"
	"github.com/deskforge/deskforge/workflows"
)

// The Builds API's hot paths in process (no network between client and
// server; PostgreSQL, when configured, over its URL). Besides ns/op they
// report cpu-µs/op, the process's CPU time per request, which a loaded
// machine changes far less than the wall time (BENCHMARKS.md, "Builds API"):
//
//	go test ./server -run XXX -bench 'GetBuild|ListBuilds' -benchtime 2s

// benchAPI serves a project of 2,000 builds (a fifth of each status) and
// returns the handler, a key of the project, its id and some build ids.
func benchAPI(b *testing.B, dialect string) (http.Handler, string, string, []string) {
	ctx := context.Background()
	db := dbtest.Open(b, dialect)
	store := models.NewStore(db)
	engine := workflows.NewEngine(store, nil, nil, nil, workflows.Options{PublicURL: "http://localhost:8080"})
	h := server.New(server.Options{Store: store, Engine: engine, PublicURL: "http://localhost:8080"}).Handler()
	p := models.Project{Name: "Bench App", URL: "https://example.com", Version: "1.0.0", Platforms: "mac,windows,linux"}
	require.NoError(b, store.CreateProject(ctx, &p))
	_, key, err := store.CreateAPIKey(ctx, models.NewAPIKeyParams{Name: "bench", Role: models.RoleProject, ProjectID: p.ID})
	require.NoError(b, err)
	id := "printf('build_%026d', i)"
	if db.Dialect == models.DialectPostgres {
		id = "'build_' || lpad(i::text, 26, '0')"
	}
	created := time.Date(2024, 1, 20, 10, 0, 0, 0, time.UTC)
	require.NoError(b, db.Gorm.Exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO builds (id, project_id, version, platform, arch, status, created_at, updated_at, started_at, completed_at,
			artifact_name, artifact_size, log_seq)
		SELECT `+id+`, ?, '1.0.' || (i % 4),
			CASE i % 3 WHEN 0 THEN 'mac' WHEN 1 THEN 'windows' ELSE 'linux' END,
			CASE i % 2 WHEN 0 THEN 'x64' ELSE 'arm64' END,
			CASE i % 5 WHEN 0 THEN 'queued' WHEN 1 THEN 'building' WHEN 2 THEN 'success' WHEN 3 THEN 'failed' ELSE 'cancelled' END,
			?, ?, ?, ?, 'bench-app-1.0.0-mac-arm64.dmg', 45678912, 0
		FROM n`, 1999, p.ID, created, created, created.Add(time.Minute), created.Add(15*time.Minute)).Error)
	var ids []string
	require.NoError(b, db.Gorm.Model(&models.Build{}).Limit(100).Pluck("id", &ids).Error)
	return h, key, p.ID, ids
}

// processCPU is the CPU time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchGets sends GETs of path(i) to h and reports cpu-µs/op.
func benchGets(b *testing.B, h http.Handler, key string, path func(int) string) {
	n := 0
	start := processCPU()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, path(n), nil)
		req.Header.Set("Authorization", "Bearer "+key)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code, w.Body.String())
		}
		n++
	}
	b.ReportMetric(float64((processCPU()-start).Microseconds())/float64(n), "cpu-µs/op")
}

func BenchmarkGetBuild(b *testing.B) {
	for _, dialect := range dbtest.Dialects() {
		b.Run(dialect, func(b *testing.B) {
			h, key, _, ids := benchAPI(b, dialect)
			benchGets(b, h, key, func(i int) string { return "/builds/" + ids[i%len(ids)] })
		})
	}
}

func BenchmarkListBuilds(b *testing.B) {
	for _, dialect := range dbtest.Dialects() {
		b.Run(dialect, func(b *testing.B) {
			h, key, projectID, _ := benchAPI(b, dialect)
			benchGets(b, h, key, func(int) string { return "/projects/" + projectID + "/builds" })
		})
	}
}
