// Command sse benchmarks DeskForge's build event streams: many SSE clients
// (GET /builds/:id/events) following builds that are building, on one
// server. A writer changes the builds as the engine does (a step entry and
// its progress in one transaction, then, at the end, the transition to
// success) and notes when each transaction committed; every client notes
// when each event reached it. It reports events delivered per second, the
// delay from commit to client (p50, p99, max) and the process's peak RSS
// (server and clients together: an upper bound for the server).
//
//	go run ./bench/sse                                  # SQLite
//	go run ./bench/sse -database-url postgres://postgres@127.0.0.1:5432/db
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/server"
	"github.com/deskforge/deskforge/workflows"
)

func main() {
	var (
		dbURL    = flag.String("database-url", "", "database (default: a fresh SQLite file in a temporary directory)")
		builds   = flag.Int("builds", 100, "building builds")
		clients  = flag.Int("clients", 1000, "SSE clients, spread evenly over the builds")
		interval = flag.Duration("interval", time.Second, "time between two steps of one build")
		duration = flag.Duration("duration", 30*time.Second, "how long the builds run before they succeed")
	)
	flag.Parse()
	if err := run(*dbURL, *builds, *clients, *interval, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "sse:", err)
		os.Exit(1)
	}
}

// commits remembers when the writer's transactions committed, by build id
// and log sequence number.
type commits struct {
	mu sync.Mutex
	at map[string]map[int64]time.Time
}

func (c *commits) set(build string, seq int64, t time.Time) {
	c.mu.Lock()
	c.at[build][seq] = t
	c.mu.Unlock()
}

func (c *commits) get(build string, seq int64) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.at[build][seq]
	return t, ok
}

// arrival is one log event received by a client.
type arrival struct {
	build string
	seq   int64
	at    time.Time
}

func run(dbURL string, nBuilds, nClients int, interval, duration time.Duration) error {
	ctx := context.Background()
	if dbURL == "" {
		dir, err := os.MkdirTemp("", "deskforge-bench-sse")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		dbURL = "sqlite://" + filepath.Join(dir, "bench.db")
	}
	db, err := models.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx, slog.New(slog.DiscardHandler)); err != nil {
		return err
	}
	db.Outbox().SetRenderer(server.EventRenderer("http://bench"))
	store := models.NewStore(db)
	engine := workflows.NewEngine(store, nil, nil, nil, workflows.Options{PublicURL: "http://bench", BuilderRepo: "bench/builder"})
	api := server.New(server.Options{Store: store, Engine: engine, PublicURL: "http://bench"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }() // ErrServerClosed when the benchmark ends
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	_, key, err := store.CreateAPIKey(ctx, models.NewAPIKeyParams{Name: "bench", Role: models.RoleAdmin})
	if err != nil {
		return err
	}
	p := models.Project{Name: "Bench", URL: "https://example.com", Version: "1.0.0", Platforms: "linux"}
	if err := store.CreateProject(ctx, &p); err != nil {
		return err
	}
	ids := make([]string, nBuilds)
	cm := &commits{at: map[string]map[int64]time.Time{}}
	for i := range ids {
		now := time.Now()
		b := models.Build{ID: models.NewID("build"), ProjectID: p.ID, Version: "1.0.0", Platform: "linux", Arch: "x64",
			Status: models.StatusQueued, CreatedAt: now, UpdatedAt: now}
		if err := db.Gorm.Create(&b).Error; err != nil {
			return err
		}
		err := store.Tx(ctx, func(tx *gorm.DB) error {
			if err := models.RecordTransitionTx(ctx, tx, b.ID, "", models.StatusQueued, "created", now, models.LevelInfo, "Build queued"); err != nil {
				return err
			}
			_, err := models.TransitionBuildTx(ctx, tx, &b, models.Transition{To: models.StatusBuilding, At: now,
				Level: models.LevelInfo, Message: "Job started on bench", Fields: map[string]any{"started_at": now}}, now)
			return err
		})
		if err != nil {
			return err
		}
		ids[i] = b.ID
		cm.at[b.ID] = map[int64]time.Time{}
	}

	// The clients connect and read the builds' first entries.
	arrivals := make(chan arrival, 1<<16)
	var connected, finished sync.WaitGroup
	var received atomic.Int64
	transport := &http.Transport{MaxIdleConnsPerHost: nClients, DisableCompression: true}
	hc := &http.Client{Transport: transport}
	for i := range nClients {
		id := ids[i%nBuilds]
		connected.Add(1)
		finished.Add(1)
		go func() {
			defer finished.Done()
			if err := follow(hc, base, key, id, &connected, arrivals, &received); err != nil {
				fmt.Fprintln(os.Stderr, "client:", err)
			}
		}()
	}
	connected.Wait()

	var rss atomic.Int64
	stopRSS := make(chan struct{})
	go func() {
		for {
			rss.Store(max(rss.Load(), readRSS()))
			select {
			case <-stopRSS:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	var delays []time.Duration
	collected := make(chan struct{})
	pending := map[[2]any]time.Time{}
	go func() {
		defer close(collected)
		for a := range arrivals {
			if t, ok := cm.get(a.build, a.seq); ok {
				delays = append(delays, max(0, a.at.Sub(t)))
			} else {
				pending[[2]any{a.build, a.seq}] = a.at
			}
		}
	}()

	// The writer: each build logs a step (with its progress) every
	// interval, staggered, then succeeds.
	fmt.Printf("%d clients on %d building builds (%s); one step per build every %s for %s\n",
		nClients, nBuilds, db.Dialect, interval, duration)
	start := time.Now()
	var writers sync.WaitGroup
	var writes atomic.Int64
	for i, id := range ids {
		writers.Add(1)
		go func() {
			defer writers.Done()
			time.Sleep(time.Duration(i) * interval / time.Duration(nBuilds))
			steps := int(duration / interval)
			for n := 1; n <= steps+1; n++ {
				var seq int64
				err := store.Tx(ctx, func(tx *gorm.DB) error {
					b, err := store.LockBuildTx(ctx, tx, id)
					if err != nil {
						return err
					}
					now := time.Now()
					if n > steps {
						_, err := models.TransitionBuildTx(ctx, tx, &b, models.Transition{To: models.StatusSuccess, At: now,
							Level: models.LevelSuccess, Message: "Build completed successfully", Fields: map[string]any{"completed_at": now}}, now)
						seq = b.LogSeq + 1
						return err
					}
					msg := fmt.Sprintf("Step %d/%d started: step %d", n, steps, n)
					if err := models.AppendLogTx(ctx, tx, id, models.LogLine{Timestamp: now, Level: models.LevelInfo, Message: msg}); err != nil {
						return err
					}
					seq = b.LogSeq + 1
					return models.UpdateBuildTx(ctx, tx, id, now, map[string]any{"progress_step": n, "progress_steps": steps, "progress_name": "step " + strconv.Itoa(n)})
				})
				cm.set(id, seq, time.Now())
				writes.Add(1)
				if err != nil {
					fmt.Fprintln(os.Stderr, "writer:", err)
					return
				}
				time.Sleep(interval)
			}
		}()
	}
	writers.Wait()
	finished.Wait() // every stream closed after its build's success
	elapsed := time.Since(start)
	close(arrivals)
	<-collected
	close(stopRSS)
	for k, at := range pending {
		if t, ok := cm.get(k[0].(string), k[1].(int64)); ok {
			delays = append(delays, max(0, at.Sub(t)))
		}
	}
	slices.Sort(delays)
	pct := func(q float64) time.Duration { return delays[min(len(delays)-1, int(q*float64(len(delays))))] }
	total := received.Load()
	fmt.Printf("transactions: %d; events delivered: %d (%.0f/s over %s)\n", writes.Load(), total, float64(total)/elapsed.Seconds(), elapsed.Round(time.Millisecond))
	fmt.Printf("commit → client delay of log events (%d): p50 %s, p99 %s, max %s\n", len(delays),
		pct(0.5).Round(100*time.Microsecond), pct(0.99).Round(100*time.Microsecond), delays[len(delays)-1].Round(100*time.Microsecond))
	fmt.Printf("peak RSS (server and clients): %.0f MB\n", float64(rss.Load())/(1<<20))
	return nil
}

// follow reads a build's stream to its end, sending each log event's
// arrival (after the build's first two entries, present when it connected).
func follow(hc *http.Client, base, key, id string, connected *sync.WaitGroup, arrivals chan<- arrival, received *atomic.Int64) error {
	req, err := http.NewRequest(http.MethodGet, base+"/builds/"+id+"/events", nil)
	if err != nil {
		connected.Done()
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Last-Event-ID", "2")
	resp, err := hc.Do(req)
	connected.Done()
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("build %s: status %d", id, resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	var seq int64
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			seq, _ = strconv.ParseInt(line[4:], 10, 64)
		case strings.HasPrefix(line, "event: "):
			received.Add(1)
			if line == "event: log" {
				arrivals <- arrival{build: id, seq: seq, at: time.Now()}
			}
		}
	}
	return sc.Err()
}

// readRSS returns the process's resident set size in bytes (Linux).
func readRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
