package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/workflows"
)

// TestThreeReplicasOneSimulator: three `deskforge serve` processes (real
// processes) on one PostgreSQL database, in GitHub mode against one
// `deskforge sim` with faults on (webhooks dropped, duplicated, reordered;
// API 5xx; dispatches whose answer is lost), each replica receiving every
// webhook. 200 builds are triggered spread across the replicas; one
// replica is killed with SIGKILL while builds run and started again. Every
// build ends in success (the scenario has no failing version), the
// simulator counts exactly one dispatch per build (zero double dispatch),
// every webhook delivery reached a replica, and no River job is left
// stuck. It runs for about 6 minutes on two cores: the jobs the killed
// replica was running wait for River's rescuer
// (workflows.RescueStuckJobsAfter, 5 minutes) before they run again. Every
// job a build waits on has a timeout of at most RescueStuckJobsAfter (River
// rescues a job only after its own timeout too): a finalize job with a
// 15-minute timeout killed mid-way kept its build building past this test's
// deadline, and one whose work had committed but whose completion River had
// not yet written stayed "running" past the stuck-jobs deadline.
func TestThreeReplicasOneSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("three serve processes and 200 builds: skipped in -short mode")
	}
	if os.Getenv(dbtest.EnvURL) == "" {
		t.Skipf("the replica test needs PostgreSQL: set %s (e.g. postgres://postgres@127.0.0.1:5432/deskforge_test)", dbtest.EnvURL)
	}
	bin := deskforgeBinary(t)
	dbURL := dbtest.PostgresURL(t)

	ports := []string{freePort(t), freePort(t), freePort(t)}
	simArgs := []string{"--listen", "127.0.0.1:0", "--timing", "fast",
		"--faults", "drop=0.2,duplicate=0.2,reorder=0.3,api5xx=0.05,ambiguous=0.1,secondary=100000,primary=1000000,seed=13"}
	for _, p := range ports {
		simArgs = append(simArgs, "--webhook-url", "http://127.0.0.1:"+p+"/webhooks/github")
	}
	sim := startSim(t, bin, nil, simArgs...)

	base := map[string]string{
		"DESKFORGE_DATABASE_URL":          dbURL,
		"DESKFORGE_RATE_LIMIT_READS":      "off",
		"DESKFORGE_RATE_LIMIT_WRITES":     "off",
		"DESKFORGE_DISPATCHES_PER_MINUTE": "6000",
		"DESKFORGE_DISPATCHES_PER_HOUR":   "1000000",
		"DESKFORGE_RECONCILE_INTERVAL":    "2s",
		"DESKFORGE_STALE_AFTER":           "5s",
		"DESKFORGE_LOG_LEVEL":             "warn",
	}
	for k, v := range sim.env {
		base[k] = v
	}
	envOf := func(i int) map[string]string {
		env := map[string]string{"DESKFORGE_LISTEN": "127.0.0.1:" + ports[i], "DESKFORGE_PUBLIC_URL": "http://127.0.0.1:" + ports[i]}
		for k, v := range base {
			env[k] = v
		}
		return env
	}
	key := strings.TrimSpace(runCLI(t, bin, base, "apikey", "create", "--admin", "--name", "replicas"))
	var project struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, bin, base, "project", "create", "--name", "Replicas",
		"--url", "https://app.example.com", "--platforms", "mac,windows,linux", "--version", "1.0.0")), &project))
	replicas := make([]*demoProcess, 3)
	for i := range replicas {
		replicas[i] = startServe(t, bin, fmt.Sprintf("replica-%d", i), envOf(i))
		replicas[i].project = project.ID
	}

	const builds = 200
	platforms := []string{"mac", "windows", "linux"}
	ids := make([]string, builds)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []string
		replica = func(i int) *demoProcess {
			mu.Lock()
			defer mu.Unlock()
			return replicas[i%3]
		}
	)
	trigger := func(i int) {
		var last string
		for attempt := range 6 {
			code, data, err := tryCall(replica(i+attempt), key, http.MethodPost, "/projects/"+project.ID+"/builds",
				fmt.Sprintf(`{"platform":%q,"arch":"x64","version":"3.0.%d"}`, platforms[i%3], i),
				"Idempotency-Key", fmt.Sprintf("replica-test-%d", i))
			if err == nil && code == http.StatusCreated {
				var b processBuild
				if err := json.Unmarshal(data, &b); err == nil && b.ID != "" {
					ids[i] = b.ID
					return
				}
			}
			// The replica was killed under the request: the same
			// Idempotency-Key on another replica answers the same build.
			last = fmt.Sprintf("%d %s %v", code, data, err)
			time.Sleep(200 * time.Millisecond)
		}
		mu.Lock()
		errs = append(errs, fmt.Sprintf("trigger %d: %s", i, last))
		mu.Unlock()
	}
	sem := make(chan struct{}, 8)
	for i := range builds {
		if i == builds/2 {
			// Half the builds are in flight: kill one replica (no graceful
			// shutdown) and start it again on the same port and database.
			replica(1).kill()
			restarted := startServe(t, bin, "replica-1-restarted", envOf(1))
			restarted.project = project.ID
			mu.Lock()
			replicas[1] = restarted
			mu.Unlock()
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			trigger(i)
		}()
	}
	wg.Wait()
	require.Empty(t, errs)

	// A build whose job the killed replica was running may wait for
	// River's rescuer (RescueStuckJobsAfter, 5 minutes).
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	final := waitReplicaBuilds(t, replicas[0], conn, key, ids, 3*time.Minute+workflows.RescueStuckJobsAfter)
	for _, id := range ids {
		require.Equal(t, "success", final[id].Status, "build %s: %v", id, replicas[2].logMessages(key, id))
	}

	// No River job left stuck: everything the builds needed has run. Jobs
	// the killed replica was running stay marked running until River's
	// rescuer gives them to another replica (RescueStuckJobsAfter); they
	// run again then, and must not dispatch a build a second time, so the
	// dispatches are counted after.
	deadline := time.Now().Add(workflows.RescueStuckJobsAfter + 2*time.Minute)
	for {
		var stuck []string
		rows, err := conn.Query(ctx, `SELECT kind, state::text, count(*) FROM river_job
			WHERE state IN ('available', 'running', 'retryable') GROUP BY kind, state`)
		require.NoError(t, err)
		for rows.Next() {
			var kind, state string
			var n int
			require.NoError(t, rows.Scan(&kind, &state, &n))
			stuck = append(stuck, fmt.Sprintf("%s %s: %d", kind, state, n))
		}
		require.NoError(t, rows.Err())
		if len(stuck) == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "River jobs left unfinished: %v", stuck)
		time.Sleep(2 * time.Second)
	}

	// The rescued jobs changed no final status.
	for id, b := range replicas[0].waitBuilds(key, ids, time.Minute, terminal) {
		require.Equal(t, "success", b.Status, "build %s after the rescued jobs ran", id)
	}

	stats := sim.stats(t)
	for _, id := range ids {
		require.Equal(t, 1, stats.Dispatches[id], "build %s dispatched once", id)
	}
	require.Len(t, stats.Dispatches, builds, "no run for anything but these builds")
	// Each delivery goes to every replica: while one was down, the others
	// took it; no delivery found no replica.
	require.Positive(t, stats.Webhooks.Sent)
	require.Zero(t, stats.Webhooks.Lost, "webhook deliveries no replica took: %+v", stats.Webhooks)
}

// waitReplicaBuilds waits until every build is terminal; past timeout it
// fails with the log of each build still pending and the River jobs that
// are not finished, to say where it is stuck.
func waitReplicaBuilds(t *testing.T, p *demoProcess, conn *pgx.Conn, key string, ids []string, timeout time.Duration) map[string]processBuild {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := map[string]processBuild{}
		var pending []string
		for _, id := range ids {
			b := p.get(key, id)
			out[id] = b
			if !terminal(b) {
				pending = append(pending, id)
			}
		}
		if len(pending) == 0 {
			return out
		}
		if time.Now().After(deadline) {
			for _, id := range pending {
				t.Logf("build %s is %s; its log: %q", id, out[id].Status, p.logMessages(key, id))
			}
			rows, err := conn.Query(context.Background(), `SELECT id, kind, state::text, attempt, args::text, coalesce(errors::text, '') FROM river_job
				WHERE state NOT IN ('completed', 'cancelled') ORDER BY id`)
			if err == nil {
				for rows.Next() {
					var (
						id, attempt             int64
						kind, state, args, errs string
					)
					if rows.Scan(&id, &kind, &state, &attempt, &args, &errs) == nil {
						t.Logf("river job %d %s %s attempt %d args %s errors %.500s", id, kind, state, attempt, args, errs)
					}
				}
				rows.Close()
			}
			t.Fatalf("builds still pending after %s: %v", timeout, pending)
		}
		time.Sleep(time.Second)
	}
}

// tryCall is demoProcess.call returning transport errors instead of
// failing (the replica may be killed under the request).
func tryCall(p *demoProcess, key, method, path, body string, headers ...string) (int, []byte, error) {
	req, err := http.NewRequest(method, p.base+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, data, nil
}
