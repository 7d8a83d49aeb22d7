// Command api benchmarks DeskForge's Builds API over loopback: GET
// /builds/:id and the first and 500th page of GET /projects/:id/builds with
// 100,000 builds in the project, on SQLite and PostgreSQL, each next to a
// bare Gin handler answering the same JSON from memory, in the same run.
//
//	go run ./bench/api                       # SQLite only
//	go run ./bench/api -postgres postgres://postgres@127.0.0.1:5432/deskforge_test
//
// The PostgreSQL run works in a schema of its own, dropped at the end.
package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/deskforge/deskforge/client"
	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/server"
	"github.com/deskforge/deskforge/workflows"
)

func main() {
	var (
		pgURL    = flag.String("postgres", os.Getenv("DESKFORGE_TEST_DATABASE_URL"), "PostgreSQL URL (empty: SQLite only); default $DESKFORGE_TEST_DATABASE_URL")
		builds   = flag.Int("builds", 100000, "builds in the project")
		clients  = flag.Int("clients", 8, "concurrent clients")
		creators = flag.Int("creators", 64, "concurrent clients of the build-creation scenario")
		duration = flag.Duration("duration", 10*time.Second, "measuring time per scenario and server, split in 5 alternating rounds (each after a 1 s warm-up)")
		skipLite = flag.Bool("no-sqlite", false, "skip SQLite")
		only     = flag.String("only", "", "run only the scenarios whose name contains this")
		profile  = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	)
	flag.Parse()
	onlyScenario = *only
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	fmt.Printf("# %d builds, %d concurrent clients, %s per scenario and server (median of 5 alternating rounds), GOMAXPROCS=%d, %s\n\n",
		*builds, *clients, *duration, runtime.GOMAXPROCS(0), runtime.Version())
	var dialects []string
	if !*skipLite {
		dialects = append(dialects, models.DialectSQLite)
	}
	if *pgURL != "" {
		dialects = append(dialects, models.DialectPostgres)
	}
	for _, dialect := range dialects {
		if err := benchDialect(ctx, dialect, *pgURL, *builds, *clients, *creators, *duration); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", dialect, err)
			pprof.StopCPUProfile()
			os.Exit(1)
		}
	}
}

// onlyScenario filters the scenarios (the -only flag).
var onlyScenario string

// fixture is a database holding one project with many builds, served by
// DeskForge and by a bare Gin handler.
type fixture struct {
	db        *models.DB
	store     *models.Store
	projectID string
	key       string
	ids       []string // a sample of build ids for GET /builds/:id
	cursor500 string   // the cursor that yields page 500 (limit 50)
}

func benchDialect(ctx context.Context, dialect, pgURL string, builds, clients, creators int, d time.Duration) error {
	dbURL, cleanup, err := databaseURL(ctx, dialect, pgURL)
	if err != nil {
		return err
	}
	defer cleanup()
	f, err := newFixture(ctx, dialect, dbURL, builds)
	if err != nil {
		return err
	}
	defer f.db.Close()

	api, err := startDeskForge(f)
	if err != nil {
		return err
	}
	defer api.Close()
	bare, err := startBareGin(ctx, api.URL, f)
	if err != nil {
		return err
	}
	defer bare.Close()

	countCost, err := measureCount(ctx, f, func(ctx context.Context) error {
		_, err := f.store.CountBuilds(ctx, models.BuildFilter{ProjectID: f.projectID})
		return err
	})
	if err != nil {
		return err
	}
	rawCost, err := measureCount(ctx, f, func(ctx context.Context) error {
		var n int64
		return f.db.Gorm.WithContext(ctx).Model(&models.Build{}).Where("project_id = ?", f.projectID).Count(&n).Error
	})
	if err != nil {
		return err
	}
	fmt.Printf("## %s\n\nThe `total` of a page over the project's %d builds, alone (mean of 200): %s from build_counts; "+
		"a COUNT(*) over the builds would take %s.\n\n", dialect, builds, countCost, rawCost)
	fmt.Println("| request | bare Gin req/s | DeskForge req/s | DeskForge / bare | DeskForge p50 | DeskForge p99 |")
	fmt.Println("|---|---:|---:|---:|---:|---:|")
	scenarios := []struct {
		name string
		path func(i int) string
	}{
		{"GET /builds/:id", func(i int) string { return "/builds/" + f.ids[i%len(f.ids)] }},
		{"GET /projects/:id/builds (page 1)", func(int) string { return "/projects/" + f.projectID + "/builds" }},
		{"GET /projects/:id/builds (page 500)", func(int) string { return "/projects/" + f.projectID + "/builds?cursor=" + f.cursor500 }},
		{"GET /projects/:id/builds?status=failed (page 1)", func(int) string { return "/projects/" + f.projectID + "/builds?status=failed" }},
	}
	// Every round runs every scenario on bare Gin and on DeskForge, one after
	// the other, so that all of them see the same machine load (the
	// benchmark machine is shared); the medians over the rounds are
	// reported.
	var run []int
	for i, s := range scenarios {
		if strings.Contains(s.name, onlyScenario) {
			run = append(run, i)
		}
	}
	bares := make([][]result, len(scenarios))
	apis := make([][]result, len(scenarios))
	for range rounds {
		for _, i := range run {
			s := scenarios[i]
			b, err := load(ctx, bare.URL, f.key, s.path, nil, clients, d/rounds, nil)
			if err != nil {
				return fmt.Errorf("%s on bare Gin: %w", s.name, err)
			}
			a, err := load(ctx, api.URL, f.key, s.path, nil, clients, d/rounds, f.db)
			if err != nil {
				return fmt.Errorf("%s on DeskForge: %w", s.name, err)
			}
			bares[i], apis[i] = append(bares[i], b), append(apis[i], a)
		}
	}
	for _, i := range run {
		b, a := median(bares[i]), median(apis[i])
		fmt.Printf("| %s | %.0f | %.0f | %.0f %% | %s | %s |\n", scenarios[i].name, b.rps, a.rps, 100*a.rps/b.rps, a.p50, a.p99)
	}
	// CPU per request, summed over the rounds: the load on a shared
	// machine moves it far less than the rates. The process holds the
	// clients and the server; on PostgreSQL the database's own processes
	// (this database's backends) come on top. On an idle machine, where
	// both servers are CPU-bound, the rates' ratio tends to the ratio of
	// the CPU per request.
	fmt.Println()
	fmt.Println("| request | bare Gin CPU/request | DeskForge CPU/request (process) | database server CPU/request | bare / DeskForge (CPU) |")
	fmt.Println("|---|---:|---:|---:|---:|")
	for _, i := range run {
		bareCPU, _ := cpuPerRequest(bares[i])
		apiCPU, dbCPU := cpuPerRequest(apis[i])
		fmt.Printf("| %s | %.0fµs | %.0fµs | %.0fµs | %.0f %% |\n", scenarios[i].name, micros(bareCPU), micros(apiCPU), micros(dbCPU),
			100*float64(bareCPU)/float64(apiCPU+dbCPU))
	}
	if slices.Contains(run, 1) && slices.Contains(run, 2) {
		// Page 500 against page 1 of the same round, then the median.
		ratios := make([]float64, rounds)
		for r := range rounds {
			ratios[r] = apis[2][r].rps / apis[1][r].rps
		}
		slices.Sort(ratios)
		fmt.Printf("\nDeskForge page 500 / page 1 (median of the rounds' ratios): %.0f %%\n", 100*ratios[rounds/2])
	}
	fmt.Println()
	if strings.Contains(creationScenario, onlyScenario) {
		return benchCreation(ctx, f, api.URL, creators, d)
	}
	return nil
}

// creationScenario names the build-creation scenario (for -only).
const creationScenario = "POST /projects/:id/builds"

// benchCreation triggers builds of one fresh project from creators
// concurrent clients (the production path: idempotency, the published
// check, the build, its transition, its dispatch job, the counts), for
// rounds of d/rounds each after a 1 s warm-up, and prints the median
// round's creations/s and trigger latencies, and the count check.
func benchCreation(ctx context.Context, f *fixture, apiURL string, creators int, d time.Duration) error {
	p := models.Project{Name: "Bench Triggers", URL: "https://example.com", Version: "1.0.0", Platforms: "mac,windows,linux"}
	if err := f.store.CreateProject(ctx, &p); err != nil {
		return err
	}
	_, key, err := f.store.CreateAPIKey(ctx, models.NewAPIKeyParams{Name: "bench-triggers", Role: models.RoleProject, ProjectID: p.ID})
	if err != nil {
		return err
	}
	path := func(int) string { return "/projects/" + p.ID + "/builds" }
	body := []byte(`{"platform":"mac","arch":"arm64"}`)
	var rs []result
	for range rounds {
		r, err := load(ctx, apiURL, key, path, body, creators, d/rounds, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", creationScenario, err)
		}
		rs = append(rs, r)
	}
	m := median(rs)
	// The total the API would show against a COUNT(*) of the builds.
	total, err := f.store.CountBuilds(ctx, models.BuildFilter{ProjectID: p.ID})
	if err != nil {
		return err
	}
	var rows int64
	if err := f.db.Gorm.WithContext(ctx).Model(&models.Build{}).Where("project_id = ?", p.ID).Count(&rows).Error; err != nil {
		return err
	}
	if total != rows {
		return fmt.Errorf("%s: build_counts says %d builds, the builds table holds %d", creationScenario, total, rows)
	}
	fmt.Printf("| request | clients | DeskForge creations/s | p50 | p99 |\n|---|---:|---:|---:|---:|\n")
	fmt.Printf("| %s (one project) | %d | %.0f | %s | %s |\n\n", creationScenario, creators, m.rps, m.p50, m.p99)
	fmt.Printf("%d builds created; total from build_counts = COUNT(*) = %d.\n\n", rows, total)
	return nil
}

// databaseURL returns a fresh database: a temporary SQLite file, or a new
// schema on the PostgreSQL server.
func databaseURL(ctx context.Context, dialect, pgURL string) (string, func(), error) {
	if dialect == models.DialectSQLite {
		dir, err := os.MkdirTemp("", "deskforge-bench-")
		if err != nil {
			return "", nil, err
		}
		return "sqlite://" + filepath.Join(dir, "bench.db"), func() { os.RemoveAll(dir) }, nil
	}
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return "", nil, fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(ctx)
	schema := fmt.Sprintf("bench_%x", rand.Uint32())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	u, err := url.Parse(pgURL)
	if err != nil {
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), func() {
		c, err := pgx.Connect(context.Background(), pgURL)
		if err == nil {
			if _, err := c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
				fmt.Fprintln(os.Stderr, "drop schema:", err)
			}
			c.Close(context.Background())
		}
	}, nil
}

func newFixture(ctx context.Context, dialect, dbURL string, n int) (*fixture, error) {
	db, err := models.Open(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.DiscardHandler)
	if err := db.Migrate(ctx, quiet); err != nil {
		return nil, err
	}
	store := models.NewStore(db)
	p := models.Project{Name: "Bench App", URL: "https://example.com", Version: "1.0.0", Platforms: "mac,windows,linux"}
	if err := store.CreateProject(ctx, &p); err != nil {
		return nil, err
	}
	_, key, err := store.CreateAPIKey(ctx, models.NewAPIKeyParams{Name: "bench", Role: models.RoleProject, ProjectID: p.ID})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := insertBuilds(ctx, db, p.ID, n); err != nil {
		return nil, err
	}
	// What autovacuum would do after a bulk load: the triggers' updates of
	// build_counts leave PostgreSQL one dead row version per inserted build.
	maintenance := "ANALYZE"
	if dialect == models.DialectPostgres {
		maintenance = "VACUUM ANALYZE"
	}
	if err := db.Gorm.WithContext(ctx).Exec(maintenance).Error; err != nil {
		return nil, fmt.Errorf("%s: %w", maintenance, err)
	}
	fmt.Fprintf(os.Stderr, "%s: inserted %d builds in %s\n", dialect, n, time.Since(start).Round(time.Millisecond))

	var all []string
	if err := db.Gorm.WithContext(ctx).Model(&models.Build{}).Where("project_id = ?", p.ID).Order("id DESC").Pluck("id", &all).Error; err != nil {
		return nil, err
	}
	const pageSize, page = 50, 500
	if len(all) < pageSize*page {
		return nil, fmt.Errorf("need at least %d builds for page %d", pageSize*page, page)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = all[rng.IntN(len(all))]
	}
	return &fixture{db: db, store: store, projectID: p.ID, key: key, ids: ids, cursor500: all[pageSize*(page-1)-1]}, nil
}

// insertBuilds writes n builds in one INSERT … SELECT over a generated
// series: a fifth of each status; succeeded builds have times and an
// artifact so every field of the answer is filled.
func insertBuilds(ctx context.Context, db *models.DB, projectID string, n int) error {
	id := "printf('build_%026d', i)"
	if db.Dialect == models.DialectPostgres {
		id = "'build_' || lpad(i::text, 26, '0')"
	}
	created := time.Date(2024, 1, 20, 10, 0, 0, 0, time.UTC)
	return db.Gorm.WithContext(ctx).Exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO builds (id, project_id, version, platform, arch, status, created_at, updated_at, started_at, completed_at,
			artifact_name, artifact_size, log_seq)
		SELECT `+id+`, ?, '1.0.' || (i % 4),
			CASE i % 3 WHEN 0 THEN 'mac' WHEN 1 THEN 'windows' ELSE 'linux' END,
			CASE i % 2 WHEN 0 THEN 'x64' ELSE 'arm64' END,
			CASE i % 5 WHEN 0 THEN 'queued' WHEN 1 THEN 'building' WHEN 2 THEN 'success' WHEN 3 THEN 'failed' ELSE 'cancelled' END,
			?, ?, ?, ?, 'bench-app-1.0.0-mac-arm64.dmg', 45678912, 0
		FROM n`, n-1, projectID, created, created, created.Add(time.Minute), created.Add(15*time.Minute)).Error
}

// measureCount times a way of counting the project's builds, alone.
func measureCount(ctx context.Context, f *fixture, count func(context.Context) error) (time.Duration, error) {
	const rounds = 200
	start := time.Now()
	for range rounds {
		if err := count(ctx); err != nil {
			return 0, err
		}
	}
	return (time.Since(start) / rounds).Round(time.Microsecond), nil
}

// running is an HTTP server on a loopback port.
type running struct {
	URL string
	srv *http.Server
}

func (r *running) Close() { r.srv.Close() }

func serveOnLoopback(h http.Handler) (*running, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }() // ErrServerClosed when the benchmark ends
	return &running{URL: "http://" + ln.Addr().String(), srv: srv}, nil
}

// startDeskForge serves the real API (access log discarded, as the bare
// handler has none).
func startDeskForge(f *fixture) (*running, error) {
	engine := workflows.NewEngine(f.store, nil, nil, nil, workflows.Options{PublicURL: "http://localhost:8080", BuilderRepo: "deskforge/builder"})
	api := server.New(server.Options{Store: f.store, Engine: engine, PublicURL: "http://localhost:8080", Log: slog.New(slog.DiscardHandler)})
	return serveOnLoopback(api.Handler())
}

// startBareGin serves, from memory, the answers DeskForge gave for the same
// requests, decoded into the client package's types and encoded again per
// request.
func startBareGin(ctx context.Context, apiURL string, f *fixture) (*running, error) {
	c, err := client.New(client.Options{BaseURL: apiURL, APIKey: f.key, Strict: true})
	if err != nil {
		return nil, err
	}
	builds := map[string]client.Build{}
	for _, id := range f.ids {
		b, err := c.GetBuild(ctx, id)
		if err != nil {
			return nil, err
		}
		builds[id] = *b
	}
	pages := map[string]client.BuildList{}
	for q, filter := range map[string]client.BuildFilter{"": {}, "cursor=" + f.cursor500: {Cursor: f.cursor500}, "status=failed": {Status: "failed"}} {
		l, err := c.ListBuilds(ctx, f.projectID, filter)
		if err != nil {
			return nil, err
		}
		if len(l.Builds) != 50 {
			return nil, fmt.Errorf("page %q has %d builds, want 50", q, len(l.Builds))
		}
		pages[q] = *l
	}
	r := gin.New()
	r.GET("/builds/:id", func(c *gin.Context) { c.JSON(http.StatusOK, builds[c.Param("id")]) })
	r.GET("/projects/:id/builds", func(c *gin.Context) { c.JSON(http.StatusOK, pages[c.Request.URL.RawQuery]) })
	return serveOnLoopback(r)
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	// requests counts the measured requests; cpu is the benchmark
	// process's CPU time over them and backendCPU the database server's
	// (PostgreSQL's backends of this database; 0 otherwise).
	requests        int64
	cpu, backendCPU time.Duration
}

// cpuPerRequest sums the rounds' CPU times and requests: the process's
// and the database server's CPU per request.
func cpuPerRequest(rs []result) (process, backend time.Duration) {
	var n int64
	for _, r := range rs {
		n += r.requests
		process += r.cpu
		backend += r.backendCPU
	}
	if n == 0 {
		return 0, 0
	}
	return process / time.Duration(n), backend / time.Duration(n)
}

// micros is d in microseconds.
func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// processCPU is the CPU time the benchmark process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendCPU returns the CPU time used so far by each PostgreSQL server
// process serving the database of db (by pid, from /proc; the server runs
// on this machine), or nil when db is not PostgreSQL. Other databases'
// processes (other users of the server) are not counted.
func backendCPU(ctx context.Context, db *models.DB) map[int]time.Duration {
	if db.Dialect != models.DialectPostgres {
		return nil
	}
	rows, err := db.SQL.QueryContext(ctx, "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
	if err != nil {
		return nil
	}
	defer rows.Close()
	cpu := map[int]time.Duration{}
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) != nil {
			return nil
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields 14 and 15 (utime, stime) in clock ticks of 10 ms, counted
		// after the command name, which ends with the last ')'.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 13 {
			continue
		}
		utime, err1 := strconv.ParseInt(fields[11], 10, 64)
		stime, err2 := strconv.ParseInt(fields[12], 10, 64)
		if err1 == nil && err2 == nil {
			cpu[pid] = time.Duration(utime+stime) * 10 * time.Millisecond
		}
	}
	if rows.Err() != nil {
		return nil
	}
	return cpu
}

// cpuSince is the CPU time the processes of now used since then (a
// process absent from then started in between).
func cpuSince(then, now map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, t := range now {
		d += t - then[pid]
	}
	return d
}

// rounds is how many alternating bare/DeskForge rounds make a scenario.
const rounds = 5

// median returns the round with the median requests/s.
func median(rs []result) result {
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b result) int { return cmp.Compare(a.rps, b.rps) })
	return sorted[len(sorted)/2]
}

// load runs clients goroutines sending GETs (POSTs of body when it is not
// nil, expecting 201) for 1 s of warm-up, then d of measurement, over
// kept-alive connections.
//
// The CPU times of the measurement are the process's and, when db is not
// nil, those of db's PostgreSQL backends.
func load(ctx context.Context, base, key string, path func(int) string, body []byte, clients int, d time.Duration, db *models.DB) (result, error) {
	method, want := http.MethodGet, http.StatusOK
	if body != nil {
		method, want = http.MethodPost, http.StatusCreated
	}
	transport := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	var (
		measuring atomic.Bool
		stop      atomic.Bool
		count     atomic.Int64
		mu        sync.Mutex
		latencies []time.Duration
		firstErr  error
		wg        sync.WaitGroup
	)
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for i := w; !stop.Load(); i += clients {
				var rd io.Reader
				if body != nil {
					rd = bytes.NewReader(body)
				}
				req, _ := http.NewRequestWithContext(ctx, method, base+path(i), rd)
				req.Header.Set("Authorization", "Bearer "+key)
				if body != nil {
					req.Header.Set("Content-Type", "application/json")
				}
				start := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					var answer []byte
					answer, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != want {
						err = fmt.Errorf("status %d: %.300s", resp.StatusCode, answer)
					}
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				if measuring.Load() {
					count.Add(1)
					mine = append(mine, time.Since(start))
				}
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		}()
	}
	time.Sleep(time.Second)
	var backends0 map[int]time.Duration
	if db != nil {
		backends0 = backendCPU(ctx, db)
	}
	cpu0 := processCPU()
	measuring.Store(true)
	start := time.Now()
	time.Sleep(d)
	measuring.Store(false)
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	var backends time.Duration
	if db != nil {
		backends = cpuSince(backends0, backendCPU(ctx, db))
	}
	stop.Store(true)
	wg.Wait()
	if firstErr != nil {
		return result{}, firstErr
	}
	if len(latencies) == 0 {
		return result{}, errors.New("no request completed")
	}
	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		return latencies[int(p*float64(len(latencies)-1))].Round(10 * time.Microsecond)
	}
	return result{rps: float64(count.Load()) / elapsed.Seconds(), p50: pct(0.50), p99: pct(0.99),
		requests: count.Load(), cpu: cpu, backendCPU: backends}, nil
}
