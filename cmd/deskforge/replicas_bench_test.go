package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models/dbtest"
)

// Environment knobs of BenchmarkReplicas.
const (
	// benchBuildsEnv is the number of builds triggered per configuration
	// and iteration (default defaultBenchBuilds).
	benchBuildsEnv = "DESKFORGE_BENCH_BUILDS"
	// benchReplicasEnv is the replica counts to run, in order (default
	// "1,3"; "3,1" runs the same configurations the other way round).
	benchReplicasEnv = "DESKFORGE_BENCH_REPLICAS"
	// benchWebhooksEnv says how the simulator's webhooks reach the
	// replicas: "balanced" (default), each delivery to one replica in
	// turn through a round-robin proxy, as a load balancer in front of
	// them does; "fanout", each delivery to every replica, as
	// TestThreeReplicasOneSimulator has it (one hook per replica).
	benchWebhooksEnv = "DESKFORGE_BENCH_WEBHOOKS"
	// benchJobWorkersEnv is each replica's DESKFORGE_JOB_WORKERS (default:
	// serve's default).
	benchJobWorkersEnv = "DESKFORGE_BENCH_JOB_WORKERS"
)

// defaultBenchBuilds is the number of builds per configuration and
// iteration. The GitHub write budgets (DESKFORGE_DISPATCHES_PER_MINUTE and
// _PER_HOUR, shared by the replicas) are raised out of the way, so that
// the runs measure the orchestration, not the pacing.
const defaultBenchBuilds = 50

// BenchmarkReplicas measures builds orchestrated per minute and GitHub
// requests per build with one `deskforge serve` process and with three, on
// the same machine, each configuration on a fresh PostgreSQL schema against
// a fresh `deskforge sim --timing fast` with no injected faults (its rate
// limits raised out of the way, as in TestThreeReplicasOneSimulator). The
// builds (defaultBenchBuilds unless DESKFORGE_BENCH_BUILDS says otherwise)
// are triggered 8 at a time, round-robin across the replicas; the clock
// runs from the first trigger until every build is terminal (read from the
// database every 100 ms). The simulator's webhooks reach the replicas
// through a round-robin proxy standing for a load balancer (or, with
// DESKFORGE_BENCH_WEBHOOKS=fanout, each reaches every replica). Each
// iteration starts fresh processes on a fresh schema and the results are
// summed: with -benchtime 2x the figures are of 2 × 50 builds per
// configuration (after the single iteration the testing package always
// runs first). Run it with
//
//	DESKFORGE_TEST_DATABASE_URL=postgres://… go test ./cmd/deskforge -run '^$' -bench Replicas -benchtime 2x
//
// Requests per build are the simulator's REST API requests (its /repos/
// routes) during that window minus the answers 304 the replicas'
// Prometheus metrics counted: the requests that count against GitHub's
// primary rate limit, as "GitHub API requests per successful build" in
// BENCHMARKS.md counts them. Dispatches per build come from the
// simulator's runs per build and must be exactly 1.
func BenchmarkReplicas(b *testing.B) {
	if os.Getenv(dbtest.EnvURL) == "" {
		b.Skipf("the replica benchmark needs PostgreSQL: set %s (e.g. postgres://postgres@127.0.0.1:5432/deskforge_test)", dbtest.EnvURL)
	}
	builds := defaultBenchBuilds
	if v := os.Getenv(benchBuildsEnv); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(b, err, benchBuildsEnv)
		require.Positive(b, n, benchBuildsEnv)
		builds = n
	}
	order := []int{1, 3}
	if v := os.Getenv(benchReplicasEnv); v != "" {
		order = nil
		for _, s := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			require.NoError(b, err, benchReplicasEnv)
			require.Positive(b, n, benchReplicasEnv)
			order = append(order, n)
		}
	}
	webhooks := cmp.Or(os.Getenv(benchWebhooksEnv), "balanced")
	if webhooks != "balanced" && webhooks != "fanout" {
		b.Fatalf("%s=%q: want balanced or fanout", benchWebhooksEnv, webhooks)
	}
	fanOut := webhooks == "fanout"
	bin := deskforgeBinary(b)

	results := map[int]replicaRun{}
	for _, n := range order {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			var sum replicaRun
			for range b.N {
				sum.add(runReplicas(b, bin, n, builds, fanOut))
			}
			results[n] = sum
			b.ReportMetric(sum.buildsPerMinute(), "builds/min")
			b.ReportMetric(sum.perBuild(sum.counted), "requests/build")
			b.ReportMetric(sum.perBuild(sum.dispatches), "dispatches/build")
			b.ReportMetric(sum.perBuild(float64(sum.serveCPU.Milliseconds())), "serve-cpu-ms/build")
			b.ReportMetric(sum.perBuild(float64(sum.pgCPU.Milliseconds())), "pg-cpu-ms/build")
			b.Logf("%d replica(s), %d builds: %s", n, sum.builds, sum.detail())
		})
	}
	one, three := results[1], results[3]
	if one.builds == 0 || three.builds == 0 {
		return
	}
	// Printed, not logged: a benchmark with sub-benchmarks prints no log
	// of its own.
	fmt.Printf("three replicas vs one (%d builds each, webhooks %s, load average %s before the last 3-replica run):\n"+
		"| | 1 replica | 3 replicas | 3 vs 1 |\n|---|---:|---:|---:|\n"+
		"| builds/min | %.0f | %.0f | %.2f |\n"+
		"| GitHub requests/build (rate-limited) | %.2f | %.2f | %.2f |\n"+
		"| dispatches/build | %.2f | %.2f | |\n"+
		"| serve CPU ms/build | %.1f | %.1f | %.2f |\n"+
		"| PostgreSQL CPU ms/build | %.1f | %.1f | %.2f |\n",
		three.builds, webhooks, three.load,
		one.buildsPerMinute(), three.buildsPerMinute(), three.buildsPerMinute()/one.buildsPerMinute(),
		one.perBuild(one.counted), three.perBuild(three.counted), three.perBuild(three.counted)/one.perBuild(one.counted),
		one.perBuild(one.dispatches), three.perBuild(three.dispatches),
		one.perBuild(float64(one.serveCPU.Milliseconds())), three.perBuild(float64(three.serveCPU.Milliseconds())),
		three.perBuild(float64(three.serveCPU))/one.perBuild(float64(one.serveCPU)),
		one.perBuild(float64(one.pgCPU.Milliseconds())), three.perBuild(float64(three.pgCPU.Milliseconds())),
		three.perBuild(float64(three.pgCPU))/one.perBuild(float64(one.pgCPU)))
}

// replicaRun is what one configuration measured: counts and times summed
// over iterations, shares and averages (machine, idleCPU, active, load) of
// the last.
type replicaRun struct {
	builds     int
	wall       time.Duration // first trigger to every build terminal
	triggering time.Duration // first trigger to the last one answered
	requests   float64       // simulator REST API requests in the window
	notMod     float64       // of which the replicas saw answered 304
	counted    float64       // requests - notMod
	dispatches float64
	deliveries float64 // webhook deliveries the simulator sent in the window
	byRoute    map[string]int
	serveCPU   time.Duration // user+system CPU of the serve processes in the window
	idleCPU    float64       // their CPU share (of one core) idle, before the window
	simCPU     time.Duration
	pgCPU      time.Duration // backends of the database, approximately (see pgBackendCPU)
	machine    float64       // busy share of all cores in the window
	cores      int
	active     float64        // mean active PostgreSQL backends of the database
	waits      map[string]int // samples of active backends by wait event type
	load       string
}

func (r *replicaRun) add(o replicaRun) {
	r.builds += o.builds
	r.wall += o.wall
	r.triggering += o.triggering
	r.requests += o.requests
	r.notMod += o.notMod
	r.counted += o.counted
	r.dispatches += o.dispatches
	r.deliveries += o.deliveries
	r.serveCPU += o.serveCPU
	r.simCPU += o.simCPU
	r.pgCPU += o.pgCPU
	r.machine, r.cores, r.active, r.load, r.idleCPU = o.machine, o.cores, o.active, o.load, o.idleCPU
	if r.byRoute == nil {
		r.byRoute, r.waits = map[string]int{}, map[string]int{}
	}
	for k, v := range o.byRoute {
		r.byRoute[k] += v
	}
	for k, v := range o.waits {
		r.waits[k] += v
	}
}

func (r replicaRun) buildsPerMinute() float64 {
	return float64(r.builds) / r.wall.Minutes()
}

func (r replicaRun) perBuild(v float64) float64 { return v / float64(r.builds) }

func (r replicaRun) detail() string {
	var routes []string
	for k, v := range r.byRoute {
		routes = append(routes, fmt.Sprintf("%s: %.2f", k, r.perBuild(float64(v))))
	}
	slices.Sort(routes)
	var waits []string
	for k, v := range r.waits {
		waits = append(waits, fmt.Sprintf("%s %.0f%%", k, 100*float64(v)/float64(max(1, r.samplesActive()))))
	}
	slices.Sort(waits)
	return fmt.Sprintf("wall %s (triggers answered in %s), %.0f builds/min; GitHub requests/build %.2f "+
		"(%.2f answered 304, %.2f counted), dispatches/build %.2f, webhook deliveries/build %.2f; CPU ms/build: serve %.1f, sim %.1f, PostgreSQL %.1f; serve processes idle: %.1f%% of a core; "+
		"machine busy %.0f%% of %d cores; active PostgreSQL backends %.1f on average, their waits: [%s]; "+
		"requests/build by route: [%s]; load average before: %s",
		r.wall.Round(10*time.Millisecond), r.triggering.Round(10*time.Millisecond), r.buildsPerMinute(),
		r.perBuild(r.requests), r.perBuild(r.notMod), r.perBuild(r.counted), r.perBuild(r.dispatches), r.perBuild(r.deliveries),
		r.perBuild(float64(r.serveCPU.Milliseconds())), r.perBuild(float64(r.simCPU.Milliseconds())),
		r.perBuild(float64(r.pgCPU.Milliseconds())), 100*r.idleCPU,
		100*r.machine, r.cores, r.active, strings.Join(waits, ", "), strings.Join(routes, "; "), r.load)
}

func (r replicaRun) samplesActive() int {
	n := 0
	for _, v := range r.waits {
		n += v
	}
	return n
}

// runReplicas starts a simulator and n serve processes on a fresh schema,
// triggers builds and measures them; the processes stop and the schema is
// dropped when b's cleanup runs (the end of the sub-benchmark).
func runReplicas(b *testing.B, bin string, n, builds int, fanOut bool) replicaRun {
	b.StopTimer()
	dbURL := dbtest.PostgresURL(b)
	ports := make([]string, n)
	metricsPorts := make([]string, n)
	simArgs := []string{"--listen", "127.0.0.1:0", "--timing", "fast", "--faults", "secondary=100000,primary=1000000"}
	balancer := &webhookBalancer{}
	for i := range ports {
		ports[i], metricsPorts[i] = freePort(b), freePort(b)
		replicaURL := "http://127.0.0.1:" + ports[i]
		if fanOut {
			simArgs = append(simArgs, "--webhook-url", replicaURL+"/webhooks/github")
			continue
		}
		u, err := url.Parse(replicaURL)
		require.NoError(b, err)
		proxy := httputil.NewSingleHostReverseProxy(u)
		// The simulator's first delivery (a ping, not counted) comes
		// before the replicas listen: answered 502 without a log line.
		proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
		balancer.replicas = append(balancer.replicas, proxy)
	}
	if !fanOut {
		lb := httptest.NewServer(balancer)
		defer lb.Close()
		simArgs = append(simArgs, "--webhook-url", lb.URL+"/webhooks/github")
	}
	sim := startSim(b, bin, nil, simArgs...)
	base := map[string]string{
		"DESKFORGE_DATABASE_URL":      dbURL,
		"DESKFORGE_RATE_LIMIT_READS":  "off",
		"DESKFORGE_RATE_LIMIT_WRITES": "off",
		// GitHub's write budgets (60 a minute, 500 an hour by default)
		// would pace the dispatches: the runs would measure the pacing.
		"DESKFORGE_DISPATCHES_PER_MINUTE": "60000",
		"DESKFORGE_DISPATCHES_PER_HOUR":   "1000000",
		"DESKFORGE_LOG_LEVEL":             "warn",
	}
	if n := os.Getenv(benchJobWorkersEnv); n != "" {
		base["DESKFORGE_JOB_WORKERS"] = n
	}
	for k, v := range sim.env {
		base[k] = v
	}
	key := strings.TrimSpace(runCLI(b, bin, base, "apikey", "create", "--admin", "--name", "bench"))
	var project struct{ ID string }
	require.NoError(b, json.Unmarshal([]byte(runCLI(b, bin, base, "project", "create", "--name", "Replicas",
		"--url", "https://app.example.com", "--platforms", "mac,windows,linux", "--version", "1.0.0")), &project))
	replicas := make([]*demoProcess, n)
	for i := range replicas {
		env := map[string]string{
			"DESKFORGE_LISTEN":         "127.0.0.1:" + ports[i],
			"DESKFORGE_PUBLIC_URL":     "http://127.0.0.1:" + ports[i],
			"DESKFORGE_METRICS_LISTEN": "127.0.0.1:" + metricsPorts[i],
		}
		for k, v := range base {
			env[k] = v
		}
		replicas[i] = startServe(b, bin, fmt.Sprintf("replica-%d", i), env)
	}
	// Stopped here too (cleanup stops them again, harmlessly) so that a
	// later iteration does not share the machine with them.
	defer func() {
		for _, p := range replicas {
			p.kill()
		}
		_ = sim.cmd.Process.Kill() // fails only when it has already exited
		<-sim.done
	}()

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(b, err)
	defer conn.Close(ctx)
	// Let the replicas settle (leader election, first periodic jobs) so
	// the window holds the builds' work, then measure what they cost idle.
	time.Sleep(3 * time.Second)
	const idleWindow = 3 * time.Second
	idleBefore := processCPU(b, replicas)
	time.Sleep(idleWindow)
	idle := processCPU(b, replicas) - idleBefore

	load := loadAverage(b)
	statsBefore := sim.stats(b)
	notModBefore := notModified(b, metricsPorts)
	pgBefore := pgBackendCPU(b, conn)
	serveBefore, simBefore := processCPU(b, replicas), procCPU(b, sim.cmd.Process.Pid)
	busyBefore, totalBefore := machineCPU(b)

	b.StartTimer()
	start := time.Now()
	platforms := []string{"mac", "windows", "linux"}
	ids := make([]string, builds)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []string
	)
	sem := make(chan struct{}, 8)
	for i := range builds {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			code, data, err := tryCall(replicas[i%n], key, http.MethodPost, "/projects/"+project.ID+"/builds",
				fmt.Sprintf(`{"platform":%q,"arch":"x64","version":"3.0.%d"}`, platforms[i%3], i))
			var created processBuild
			if err == nil && code == http.StatusCreated {
				err = json.Unmarshal(data, &created)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil || code != http.StatusCreated || created.ID == "" {
				errs = append(errs, fmt.Sprintf("trigger %d: %d %s %v", i, code, data, err))
				return
			}
			ids[i] = created.ID
		}()
	}

	// Watch the database while the triggers run and until every build is
	// terminal: the end of the window, and what its backends wait on.
	triggered := make(chan time.Duration, 1)
	go func() {
		wg.Wait()
		triggered <- time.Since(start)
	}()
	var (
		triggering time.Duration
		waits      = map[string]int{}
		samples    int
		active     int
	)
	deadline := start.Add(10 * time.Minute)
	for {
		select {
		case triggering = <-triggered:
		default:
		}
		var pending, total int
		require.NoError(b, conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status IN ('queued', 'building')), count(*) FROM builds`).
			Scan(&pending, &total))
		if triggering > 0 && pending == 0 && total == builds {
			break
		}
		rows, err := conn.Query(ctx, `SELECT coalesce(wait_event_type, 'CPU'), count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid() GROUP BY 1`)
		require.NoError(b, err)
		for rows.Next() {
			var kind string
			var c int
			require.NoError(b, rows.Scan(&kind, &c))
			waits[kind] += c
			active += c
		}
		require.NoError(b, rows.Err())
		samples++
		require.True(b, time.Now().Before(deadline), "builds still pending after 10 minutes: %d of %d", pending, total)
		time.Sleep(100 * time.Millisecond)
	}
	wall := time.Since(start)
	b.StopTimer()
	require.Empty(b, errs)

	busyAfter, totalAfter := machineCPU(b)
	serveAfter, simAfter := processCPU(b, replicas), procCPU(b, sim.cmd.Process.Pid)
	pgAfter := pgBackendCPU(b, conn)
	statsAfter := sim.stats(b)
	notModAfter := notModified(b, metricsPorts)

	var failed []string
	rows, err := conn.Query(ctx, `SELECT id, status FROM builds WHERE status <> 'success'`)
	require.NoError(b, err)
	for rows.Next() {
		var id, status string
		require.NoError(b, rows.Scan(&id, &status))
		failed = append(failed, id+"="+status)
	}
	require.NoError(b, rows.Err())
	require.Empty(b, failed, "every build succeeds (no faults)")
	for _, id := range ids {
		require.Equal(b, 1, statsAfter.Dispatches[id]-statsBefore.Dispatches[id], "build %s dispatched once", id)
	}
	require.Len(b, statsAfter.Dispatches, builds, "no run for anything but these builds")
	require.Zero(b, statsAfter.Webhooks.Lost, "webhook deliveries no replica took: %+v", statsAfter.Webhooks)

	out := replicaRun{
		builds: builds, wall: wall, triggering: triggering, byRoute: map[string]int{},
		serveCPU: serveAfter - serveBefore, simCPU: simAfter - simBefore,
		load: load, waits: waits, idleCPU: float64(idle) / float64(idleWindow),
	}
	for route, v := range statsAfter.Requests {
		if d := v - statsBefore.Requests[route]; d > 0 {
			out.byRoute[route] = d
			if isAPIRoute(route) {
				out.requests += float64(d)
			}
		}
	}
	for id, v := range statsAfter.Dispatches {
		out.dispatches += float64(v - statsBefore.Dispatches[id])
	}
	out.deliveries = float64(statsAfter.Webhooks.Sent - statsBefore.Webhooks.Sent)
	out.notMod = notModAfter - notModBefore
	out.counted = out.requests - out.notMod
	for pid, after := range pgAfter {
		out.pgCPU += after - pgBefore[pid] // a backend opened in the window counts from zero
	}
	out.machine = float64(busyAfter-busyBefore) / float64(totalAfter-totalBefore)
	out.cores = cpuCores(b)
	if samples > 0 {
		out.active = float64(active) / float64(samples)
	}
	return out
}

// webhookBalancer stands for the load balancer in front of the replicas:
// it passes each request to the next replica in turn.
type webhookBalancer struct {
	replicas []*httputil.ReverseProxy
	next     atomic.Uint64
}

func (l *webhookBalancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.replicas[(l.next.Add(1)-1)%uint64(len(l.replicas))].ServeHTTP(w, r)
}

// isAPIRoute says whether a simulator route is GitHub's REST API, whose
// requests count against the rate limit (unless answered 304), as
// TestAPIRequestsPerBuild counts them; the simulator's own routes (the
// signed log download a job log request redirects to) are not.
func isAPIRoute(route string) bool { return strings.Contains(route, " /repos/") }

// notModified sums the GitHub answers 304 the replicas' Prometheus
// metrics counted (deskforge_github_requests_total{status="304"}).
func notModified(b *testing.B, metricsPorts []string) float64 {
	b.Helper()
	var sum float64
	for _, port := range metricsPorts {
		resp, err := http.Get("http://127.0.0.1:" + port + "/metrics")
		require.NoError(b, err)
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(b, err)
		require.Equal(b, http.StatusOK, resp.StatusCode, "%s", data)
		for line := range strings.SplitSeq(string(data), "\n") {
			if !strings.HasPrefix(line, "deskforge_github_requests_total{") || !strings.Contains(line, `status="304"`) {
				continue
			}
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			require.NoError(b, err, line)
			sum += v
		}
	}
	return sum
}

// processCPU sums the CPU time the replicas used so far.
func processCPU(b *testing.B, replicas []*demoProcess) time.Duration {
	b.Helper()
	var sum time.Duration
	for _, p := range replicas {
		sum += procCPU(b, p.cmd.Process.Pid)
	}
	return sum
}

// clockTick is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// procCPU is the user and system CPU time of a process, from
// /proc/PID/stat; zero when the process is gone.
func procCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if os.IsNotExist(err) {
		return 0
	}
	require.NoError(b, err)
	// Fields after the command name (which may hold spaces): state is
	// field 3, utime 14, stime 15.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	require.Greater(b, len(fields), 12, "/proc/%d/stat", pid)
	utime, err := strconv.ParseInt(fields[11], 10, 64)
	require.NoError(b, err)
	stime, err := strconv.ParseInt(fields[12], 10, 64)
	require.NoError(b, err)
	return time.Duration(utime+stime) * clockTick
}

// pgBackendCPU is the CPU time so far of each PostgreSQL backend connected
// to the benchmark's database (by pid). Backends that close during the
// window are missed; the replicas' pools keep theirs open.
func pgBackendCPU(b *testing.B, conn *pgx.Conn) map[int]time.Duration {
	b.Helper()
	rows, err := conn.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	require.NoError(b, err)
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	require.NoError(b, err)
	out := map[int]time.Duration{}
	for _, pid := range pids {
		out[int(pid)] = procCPU(b, int(pid))
	}
	return out
}

// machineCPU returns the busy and total jiffies of all cores (/proc/stat).
func machineCPU(b *testing.B) (busy, total int64) {
	b.Helper()
	f, err := os.Open("/proc/stat")
	require.NoError(b, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	require.True(b, sc.Scan())
	fields := strings.Fields(sc.Text())
	require.Equal(b, "cpu", fields[0])
	for i, s := range fields[1:] {
		v, err := strconv.ParseInt(s, 10, 64)
		require.NoError(b, err)
		if i >= 8 { // guest times are already in user and nice
			break
		}
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

// cpuCores counts the machine's cores (/proc/stat's cpuN lines).
func cpuCores(b *testing.B) int {
	b.Helper()
	data, err := os.ReadFile("/proc/stat")
	require.NoError(b, err)
	n := 0
	for line := range strings.SplitSeq(string(data), "\n") {
		if strings.HasPrefix(line, "cpu") && len(line) > 3 && line[3] >= '0' && line[3] <= '9' {
			n++
		}
	}
	return n
}

// loadAverage is /proc/loadavg's three load averages.
func loadAverage(b *testing.B) string {
	b.Helper()
	data, err := os.ReadFile("/proc/loadavg")
	require.NoError(b, err)
	f := strings.Fields(string(data))
	require.GreaterOrEqual(b, len(f), 3)
	return strings.Join(f[:3], " ")
}
