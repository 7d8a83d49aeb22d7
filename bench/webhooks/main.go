// Command webhooks benchmarks POST /webhooks/github: signed workflow_job
// deliveries (GitHub's real payload, a fresh X-GitHub-Delivery each) sent
// over loopback by concurrent clients to a DeskForge server, on SQLite and
// PostgreSQL. Each accepted delivery (202) has been verified (HMAC-SHA256),
// parsed (go-github), recorded and its apply job inserted into River, in one
// transaction; River's workers do not run, so the numbers are the
// receiver's acceptance rate alone. It also prints the CPU time this
// process (server and clients) used per accepted delivery, which varies
// less than the rate on a busy machine; the database's CPU is not in it.
//
//	go run ./bench/webhooks                       # SQLite only
//	go run ./bench/webhooks -postgres postgres://postgres@127.0.0.1:5432/deskforge_test
//
// The PostgreSQL run works in a schema of its own, dropped at the end. Its
// pool size is the URL's pool_max_conns (set to -pool when absent).
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/server"
	"github.com/deskforge/deskforge/workflows"
)

const secret = "bench webhook secret"

func main() {
	var (
		pgURL    = flag.String("postgres", os.Getenv("DESKFORGE_TEST_DATABASE_URL"), "PostgreSQL URL (empty: SQLite only); default $DESKFORGE_TEST_DATABASE_URL")
		clients  = flag.Int("clients", 32, "concurrent clients")
		pool     = flag.Int("pool", 32, "PostgreSQL pool size when the URL sets no pool_max_conns")
		duration = flag.Duration("duration", 10*time.Second, "measuring time per database (after a 1 s warm-up)")
		payload  = flag.String("payload", "server/testdata/github-webhooks/webhook-workflow-job-in-progress-1.json", "webhook payload (workflow_job)")
		noLite   = flag.Bool("no-sqlite", false, "skip SQLite")
		cpuProf  = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
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
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	body, err := os.ReadFile(*payload)
	if err != nil {
		fail(fmt.Errorf("read payload (run from the repository root): %w", err))
	}
	fmt.Printf("POST /webhooks/github, workflow_job payload of %d bytes, %d clients, %s per database, GOMAXPROCS=%d\n",
		len(body), *clients, *duration, runtime.GOMAXPROCS(0))
	if !*noLite {
		dir, err := os.MkdirTemp("", "bench-webhooks-")
		if err != nil {
			fail(err)
		}
		defer os.RemoveAll(dir)
		run("sqlite", "sqlite://"+filepath.Join(dir, "bench.db"), body, *clients, *duration)
	}
	if *pgURL != "" {
		u, drop, err := postgresSchema(*pgURL, *pool)
		if err != nil {
			fail(err)
		}
		defer drop()
		run("postgres", u, body, *clients, *duration)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/webhooks:", err)
	os.Exit(1)
}

// run starts a server on a fresh database and measures it.
func run(name, dbURL string, body []byte, clients int, d time.Duration) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	db, err := models.Open(ctx, dbURL)
	if err != nil {
		fail(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx, log); err != nil {
		fail(err)
	}
	store := models.NewStore(db)
	engine := workflows.NewEngine(store, nil, nil, log, workflows.Options{})
	srv := &http.Server{Handler: server.New(server.Options{Store: store, Engine: engine, WebhookSecret: []byte(secret), Log: log}).Handler()}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	go func() { _ = srv.Serve(l) }() // ErrServerClosed when the benchmark ends
	defer srv.Close()
	target := "http://" + l.Addr().String() + "/webhooks/github"
	signature := sign(body)

	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	measure := func(d time.Duration) (int64, []time.Duration, error) {
		var accepted atomic.Int64
		var firstErr atomic.Value
		lat := make([][]time.Duration, clients)
		deadline := time.Now().Add(d)
		var wg sync.WaitGroup
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					req, _ := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("X-GitHub-Event", "workflow_job")
					req.Header.Set("X-GitHub-Delivery", guid())
					req.Header.Set("X-GitHub-Hook-ID", "1")
					req.Header.Set("X-Hub-Signature-256", signature)
					t0 := time.Now()
					resp, err := httpClient.Do(req)
					if err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body) // drained for the connection's reuse
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						firstErr.CompareAndSwap(nil, fmt.Errorf("status %d", resp.StatusCode))
						return
					}
					lat[c] = append(lat[c], time.Since(t0))
					accepted.Add(1)
				}
			}()
		}
		wg.Wait()
		var all []time.Duration
		for _, l := range lat {
			all = append(all, l...)
		}
		if e, ok := firstErr.Load().(error); ok {
			return accepted.Load(), all, e
		}
		return accepted.Load(), all, nil
	}
	if _, _, err := measure(time.Second); err != nil {
		fail(fmt.Errorf("%s warm-up: %w", name, err))
	}
	cpu0 := processCPU()
	n, lat, err := measure(d)
	cpu := processCPU() - cpu0
	if err != nil {
		fail(fmt.Errorf("%s: %w", name, err))
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(float64(len(lat)-1)*p)] }
	var jobs int64
	if err := db.Gorm.Raw("SELECT count(*) FROM river_job WHERE kind = ?", workflows.ApplyEventArgs{}.Kind()).Scan(&jobs).Error; err != nil {
		fail(err)
	}
	fmt.Printf("%-8s %8.0f deliveries/s accepted  (p50 %s, p99 %s; %d apply jobs queued; %.0f µs CPU per delivery in this process, clients included)\n",
		name, float64(n)/d.Seconds(), pct(0.5).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), jobs,
		float64(cpu.Microseconds())/float64(n))
}

// processCPU is the user and system CPU time this process has used so far:
// per delivery, a measure that holds up on a machine shared with other
// work, where deliveries/s depends on what else runs.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func sign(body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func guid() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// postgresSchema creates a schema of its own on the server and returns a
// URL using it (with pool_max_conns set) and a function dropping it.
func postgresSchema(raw string, pool int) (string, func(), error) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, raw)
	if err != nil {
		return "", nil, fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(ctx)
	schema := "bench_wh_" + guid()[:8]
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", nil, errors.New("bad postgres url")
	}
	q := u.Query()
	q.Set("search_path", schema)
	if q.Get("pool_max_conns") == "" {
		q.Set("pool_max_conns", fmt.Sprint(pool))
	}
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
