// Command hooks benchmarks outbound webhooks on SQLite and PostgreSQL:
//
//   - the cost a build transition's transaction pays for the events outbox
//     with 0 and with 5 subscribed endpoints (the event row, the lookup of
//     endpoints, 5 delivery rows and 5 River jobs), in alternating batches
//     of the same run;
//
//   - fan-out: N build events × 5 endpoints delivered by the River workers of
//     one process (the webhook queue as serve configures it) to local
//     receivers answering 204: deliveries per second and the CPU time this
//     process used per delivery (the database's CPU is not in it).
//
//     go run ./bench/hooks                       # SQLite only
//     go run ./bench/hooks -postgres postgres://postgres@127.0.0.1:5432/deskforge_test
//
// The PostgreSQL run works in a schema of its own, dropped at the end.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/hooks"
	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/server"
)

func main() {
	var (
		pgURL     = flag.String("postgres", os.Getenv("DESKFORGE_TEST_DATABASE_URL"), "PostgreSQL URL (empty: SQLite only); default $DESKFORGE_TEST_DATABASE_URL")
		events    = flag.Int("events", 10000, "build events to fan out")
		endpoints = flag.Int("endpoints", 5, "subscribed endpoints (local receivers)")
		txs       = flag.Int("txs", 1000, "build transitions measured with and without subscriptions (each)")
		workers   = flag.Int("workers", 50, "River workers of the webhook queue (serve uses 50)")
		cpuProf   = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	)
	flag.Parse()
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	dir, err := os.MkdirTemp("", "deskforge-bench-hooks")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	run("sqlite", "sqlite://"+filepath.Join(dir, "bench.db"), *events, *endpoints, *txs, *workers)
	if *pgURL != "" {
		u, drop, err := postgresSchema(*pgURL)
		if err != nil {
			fail(err)
		}
		defer drop()
		run("postgres", u, *events, *endpoints, *txs, *workers)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/hooks:", err)
	os.Exit(1)
}

func run(name, dbURL string, events, endpoints, txs, workers int) {
	ctx := context.Background()
	db, err := models.Open(ctx, dbURL)
	if err != nil {
		fail(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx, slog.New(slog.DiscardHandler)); err != nil {
		fail(err)
	}
	db.Outbox().SetRenderer(server.EventRenderer("https://deskforge.bench"))
	store := models.NewStore(db)
	project := models.Project{Name: "Bench", URL: "https://bench.example", Platforms: "mac,windows,linux", Version: "1.0.0"}
	if err := store.CreateProject(ctx, &project); err != nil {
		fail(err)
	}

	// Receivers and their (disabled) endpoints.
	var hookIDs []string
	for range endpoints {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // a receiver drains what it is sent
			w.WriteHeader(http.StatusNoContent)
		}))
		defer srv.Close()
		w, err := store.CreateWebhook(ctx, models.NewWebhookParams{URL: srv.URL, Events: []string{"build.*"}, ProjectID: project.ID})
		if err != nil {
			fail(err)
		}
		hookIDs = append(hookIDs, w.ID)
	}
	setEnabled := func(on bool) {
		if err := db.Gorm.Model(&models.Webhook{}).Where("id IN ?", hookIDs).Update("enabled", on).Error; err != nil {
			fail(err)
		}
	}

	// Transaction cost of a transition, alternating batches without and
	// with the subscriptions.
	builds := make([]models.Build, 2*txs)
	setEnabled(false)
	for i := range builds {
		builds[i] = createBuild(ctx, store, project.ID)
	}
	var without, with time.Duration
	const batch = 50
	for start := 0; start < len(builds); start += 2 * batch {
		setEnabled(false)
		without += transitions(ctx, store, builds[start:min(start+batch, len(builds))])
		setEnabled(true)
		with += transitions(ctx, store, builds[min(start+batch, len(builds)):min(start+2*batch, len(builds))])
	}
	perWithout, perWith := without/time.Duration(txs), with/time.Duration(txs)
	fmt.Printf("%-8s transition tx: %7.0f µs without subscriptions, %7.0f µs with %d (+%.0f µs)\n", name,
		us(perWithout), us(perWith), endpoints, us(perWith-perWithout))
	if err := db.Gorm.Exec("DELETE FROM event_deliveries").Error; err != nil {
		fail(err)
	}
	if err := db.Gorm.Exec("DELETE FROM river_job").Error; err != nil {
		fail(err)
	}

	// Fan-out: the events (and their deliveries and jobs) are written first,
	// then one process's workers deliver them all.
	setEnabled(true)
	t0 := time.Now()
	for range events {
		createBuild(ctx, store, project.ID)
	}
	written := time.Since(t0)
	total := events * endpoints
	hookWorkers := river.NewWorkers()
	hooks.New(store, hooks.Options{AllowPrivate: true}).RegisterWorkers(hookWorkers)
	client, err := river.NewClient[*sql.Tx](db.RiverDriver(), &river.Config{
		Queues:  map[string]river.QueueConfig{models.WebhookQueue: {MaxWorkers: workers}},
		Workers: hookWorkers,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fail(err)
	}
	cpu0, start := processCPU(), time.Now()
	if err := client.Start(ctx); err != nil {
		fail(err)
	}
	for {
		var done int64
		if err := db.Gorm.Model(&models.EventDelivery{}).Where("status = ?", models.DeliveryDelivered).Count(&done).Error; err != nil {
			fail(err)
		}
		if done >= int64(total) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	elapsed, cpu := time.Since(start), processCPU()-cpu0
	if err := client.Stop(ctx); err != nil {
		fail(err)
	}
	fmt.Printf("%-8s fan-out: %d events × %d endpoints written in %s (%.0f events/s); %d deliveries in %s: %.0f deliveries/s, %.0f µs CPU per delivery\n",
		name, events, endpoints, written.Round(time.Millisecond), float64(events)/written.Seconds(),
		total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), us(cpu/time.Duration(total)))
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// createBuild stores a queued build with its transition and event, as the
// engine does.
func createBuild(ctx context.Context, store *models.Store, projectID string) models.Build {
	now := time.Now().UTC()
	b := models.Build{ID: models.NewID("build"), ProjectID: projectID, Version: "1.0.0", Platform: "mac", Arch: "x64",
		Status: models.StatusQueued, CreatedAt: now, UpdatedAt: now}
	err := store.Tx(ctx, func(tx *gorm.DB) error {
		if err := models.CreateBuildTx(ctx, tx, &b); err != nil {
			return err
		}
		return models.RecordTransitionTx(ctx, tx, b.ID, "", models.StatusQueued, "", now, models.LevelInfo, "Build queued")
	})
	if err != nil {
		fail(err)
	}
	return b
}

// transitions moves each build to building, one transaction each, and
// returns the time spent in those transactions.
func transitions(ctx context.Context, store *models.Store, builds []models.Build) time.Duration {
	var spent time.Duration
	for i := range builds {
		now := time.Now()
		t0 := time.Now()
		err := store.Tx(ctx, func(tx *gorm.DB) error {
			_, err := models.TransitionBuildTx(ctx, tx, &builds[i], models.Transition{
				To: models.StatusBuilding, At: now, Level: models.LevelInfo, Message: "Job started",
				Fields: map[string]any{"started_at": now.UTC()},
			}, now)
			return err
		})
		spent += time.Since(t0)
		if err != nil {
			fail(err)
		}
	}
	return spent
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// postgresSchema creates a schema of its own on the server and returns a
// URL using it and a function dropping it.
func postgresSchema(raw string) (string, func(), error) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, raw)
	if err != nil {
		return "", nil, fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(ctx)
	var b [4]byte
	rand.Read(b[:])
	schema := "bench_hooks_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", nil, fmt.Errorf("parse postgres url: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	drop := func() {
		c, err := pgx.Connect(context.Background(), raw)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			fmt.Fprintln(os.Stderr, "drop schema:", err)
		}
	}
	return u.String(), drop, nil
}
