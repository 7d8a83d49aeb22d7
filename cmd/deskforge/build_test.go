package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/client"
	"github.com/deskforge/deskforge/workflows/ghsim"
)

// demoServer is `serve --demo` running in the test, with the key and
// project its banner printed.
type demoServer struct {
	url     string
	key     string
	project string
	banner  *strings.Builder
	logs    *strings.Builder
	// stop shuts the server down and returns serve's error.
	stop func() error
}

// startDemoServer runs `serve --demo` on a loopback port with a fresh
// SQLite database; env adds settings. timing paces the simulated runs
// (zero: the demo's 20 s per build).
func startDemoServer(t *testing.T, env map[string]string, timing ghsim.Timing) *demoServer {
	t.Helper()
	all := map[string]string{
		"DESKFORGE_LISTEN":       "127.0.0.1:0",
		"DESKFORGE_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "demo.db"),
		"DESKFORGE_LOG_FORMAT":   "json",
	}
	for k, v := range env {
		all[k] = v
	}
	cfg, err := loadServeConfig(t, all, "--demo")
	require.NoError(t, err)
	cfg.demoTiming = timing
	ctx, cancel := context.WithCancel(context.Background())
	d := &demoServer{banner: &strings.Builder{}, logs: &strings.Builder{}}
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, &lockedBuilder{b: d.banner}, &lockedBuilder{b: d.logs}, func(a net.Addr) { addrs <- a })
	}()
	select {
	case a := <-addrs:
		d.url = localURL(a)
	case err := <-done:
		cancel()
		t.Fatalf("serve --demo returned early: %v", err)
	case <-time.After(2 * time.Minute): // generous: a loaded machine under -race
		cancel()
		t.Fatal("serve --demo did not start listening")
	}
	var once sync.Once
	var stopErr error
	d.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(2 * time.Minute):
				stopErr = fmt.Errorf("serve --demo did not shut down")
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Errorf("demo server: %v", err)
		}
	})
	d.key = regexp.MustCompile(`df_[a-z0-9]+`).FindString(d.banner.String())
	d.project = regexp.MustCompile(`proj_[a-z0-9]+`).FindString(d.banner.String())
	require.NotEmpty(t, d.key, "the banner prints an admin key")
	require.NotEmpty(t, d.project, "the banner names the demo project")
	return d
}

// fastTiming runs a simulated build in well under a second.
func fastTiming() ghsim.Timing {
	return ghsim.Timing{Queued: 50 * time.Millisecond, PerStep: 50 * time.Millisecond, LogDelay: 20 * time.Millisecond, TickInterval: 10 * time.Millisecond}
}

// cli runs `deskforge build SUB args…` against d (--url and --api-key
// added before args, so that args may override them) and returns its exit
// status, stdout and stderr.
func (d *demoServer) cli(ctx context.Context, sub string, args ...string) (int, string, string) {
	var stdout, stderr strings.Builder
	full := append([]string{"build", sub, "--url", d.url, "--api-key", d.key}, args...)
	code := run(ctx, full, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestBuildCommands runs the build commands against one `serve --demo`
// (fast simulated runs, downloads proxied so that a cut transfer can be
// resumed through a proxy).
func TestBuildCommands(t *testing.T) {
	t.Parallel()
	d := startDemoServer(t, map[string]string{"DESKFORGE_DOWNLOAD_MODE": "proxy"}, fastTiming())
	for name, test := range map[string]func(*testing.T, *demoServer){
		"TriggerWaitExitStatus":                testBuildTriggerWaitExitStatus,
		"LogsFollowPrintsTheWholeLogOnce":      testBuildLogsFollowPrintsTheWholeLogOnce,
		"DownloadResumesAnInterruptedDownload": testBuildDownloadResumesAnInterruptedDownload,
		"FollowStopsOnInterrupt":               testBuildFollowStopsOnInterrupt,
		"CommandErrors":                        testBuildCommandErrors,
	} {
		t.Run(name, func(t *testing.T) { test(t, d) })
	}
}

func testBuildTriggerWaitExitStatus(t *testing.T, d *demoServer) {
	t.Parallel()
	tests := []struct {
		version string
		code    int
		status  string
	}{
		{"1.0.0", 0, "success"},
		{"1.0.0-fail", 1, "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := d.cli(t.Context(), "trigger", "--project", d.project, "--platform", "linux",
				"--arch", "arm64", "--version", tt.version, "--wait", "--interval", "50ms")
			require.Equal(t, tt.code, code, "stdout: %s\nstderr: %s", out, errOut)
			// Not a terminal: one plain line per change, nothing redrawn.
			require.NotContains(t, out, "\r")
			require.NotContains(t, out, "\x1b")
			lines := strings.Split(strings.TrimSpace(out), "\n")
			require.Regexp(t, `^build_[0-9a-z]{26} · queued$`, lines[0])
			id := strings.Fields(lines[0])[0]
			require.Regexp(t, `^`+id+` · `+tt.status+` · linux/arm64 · `+regexp.QuoteMeta(tt.version)+` · in \d+s`, lines[len(lines)-1])
			for _, l := range lines[1 : len(lines)-1] {
				require.True(t, strings.HasPrefix(l, id+" · "), l)
			}

			// --json: the final build, decodable by the client package.
			code, out, _ = d.cli(t.Context(), "trigger", "--platform", "linux", "--version", tt.version, "--wait", "--json", "--interval", "50ms")
			require.Equal(t, tt.code, code)
			var b client.Build
			require.NoError(t, json.Unmarshal([]byte(out), &b), out)
			require.Equal(t, tt.status, b.Status)
			require.Equal(t, d.url+"/builds/"+b.ID+"/logs", b.BuildLog, "the demo's public URL follows --listen")
		})
	}
}

func testBuildLogsFollowPrintsTheWholeLogOnce(t *testing.T, d *demoServer) {
	t.Parallel()
	code, out, errOut := d.cli(t.Context(), "trigger", "--platform", "mac", "--version", "2.0.0")
	require.Equal(t, 0, code, errOut)
	id := strings.TrimSpace(out)
	require.Regexp(t, `^build_[0-9a-z]{26}$`, id)

	code, followed, errOut := d.cli(t.Context(), "logs", id, "--follow", "--interval", "20ms")
	require.Equal(t, 0, code, errOut)

	// The whole log, as the server has it now that the build is over.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, d.url+"/builds/"+id+"/logs?format=text", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+d.key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	whole, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, string(whole), followed, "every entry exactly once, in order, and nothing else")
	require.Contains(t, followed, "[success] Build completed successfully")

	// Without --follow, with a level: the warnings and errors only.
	code, out, _ = d.cli(t.Context(), "logs", "--level", "warning", id)
	require.Equal(t, 0, code)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line != "" {
			require.Regexp(t, `^\S+ \[(warning|error)\] `, line)
		}
	}
	// --json: one entry a line.
	code, out, _ = d.cli(t.Context(), "logs", id, "--json")
	require.Equal(t, 0, code)
	var rendered strings.Builder
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e client.LogEntry
		require.NoError(t, json.Unmarshal([]byte(line), &e))
		if i == 0 {
			require.Equal(t, "Build queued", e.Message)
		}
		rendered.WriteString(e.String() + "\n")
	}
	require.Equal(t, string(whole), rendered.String())
}

// cuttingProxy forwards to target, but cuts the first download answer
// after half its bytes, as a dropped connection would.
type cuttingProxy struct {
	proxy  *httputil.ReverseProxy
	cut    atomic.Bool
	mu     sync.Mutex
	ranges []string
}

func newCuttingProxy(t *testing.T, target string) *httptest.Server {
	u, err := url.Parse(target)
	require.NoError(t, err)
	p := &cuttingProxy{proxy: httputil.NewSingleHostReverseProxy(u)}
	p.proxy.ErrorLog = nil
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv
}

func (p *cuttingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/download") {
		p.proxy.ServeHTTP(w, r)
		return
	}
	p.mu.Lock()
	p.ranges = append(p.ranges, r.Header.Get("Range"))
	p.mu.Unlock()
	if p.cut.Swap(true) {
		p.proxy.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	p.proxy.ServeHTTP(rec, r)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	body := rec.Body.Bytes()
	w.Write(body[:len(body)/2])
	w.(http.Flusher).Flush()
	panic(http.ErrAbortHandler)
}

func testBuildDownloadResumesAnInterruptedDownload(t *testing.T, d *demoServer) {
	t.Parallel()
	code, out, errOut := d.cli(t.Context(), "trigger", "--platform", "windows", "--version", "3.0.0", "--wait", "--json", "--interval", "50ms")
	require.Equal(t, 0, code, errOut)
	var b client.Build
	require.NoError(t, json.Unmarshal([]byte(out), &b))
	name := filepath.Base(*b.ArtifactURL)
	want := ghsim.AssetBytes(name)

	proxy := newCuttingProxy(t, d.url)
	dir := t.TempDir()
	dest := filepath.Join(dir, name)
	code, stdout, stderr := d.cli(t.Context(), "download", b.ID, "-o", dest, "--url", proxy.URL)
	require.Equal(t, 0, code, stderr)
	got, err := os.ReadFile(dest)
	require.NoError(t, err)
	sum := sha256.Sum256(want)
	gotSum := sha256.Sum256(got)
	require.Equal(t, hex.EncodeToString(sum[:]), hex.EncodeToString(gotSum[:]))
	require.Contains(t, stdout, dest+" (")
	require.Contains(t, stdout, "sha256 "+hex.EncodeToString(sum[:]))
	require.Contains(t, stderr, "resuming", "the interruption is reported")
	require.NoFileExists(t, dest+client.PartialSuffix)
	require.Equal(t, name, artifactName(&b), "without -o, the file is named after the artifact")

	// The transfer resumed where it stopped.
	p := proxy.Config.Handler.(*cuttingProxy)
	p.mu.Lock()
	defer p.mu.Unlock()
	require.Equal(t, []string{"", fmt.Sprintf("bytes=%d-", len(want)/2)}, p.ranges)
}

// testBuildFollowStopsOnInterrupt: Ctrl-C stops following; the build goes on.
func testBuildFollowStopsOnInterrupt(t *testing.T, d *demoServer) {
	t.Parallel()
	code, out, _ := d.cli(t.Context(), "trigger", "--platform", "linux", "--version", "4.0.0-hang")
	require.Equal(t, 0, code)
	id := strings.TrimSpace(out)
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr strings.Builder
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"build", "logs", "--follow", id, "--interval", "20ms", "--url", d.url, "--api-key", d.key}, &stdout, &stderr)
	}()
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case code = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("following did not stop")
	}
	require.Equal(t, exitInterrupted, code)
	require.Contains(t, stderr.String(), "stopped following "+id+"; it goes on on the server")
	code, out, _ = d.cli(t.Context(), "get", id, "--json")
	require.Equal(t, 0, code)
	var b client.Build
	require.NoError(t, json.Unmarshal([]byte(out), &b))
	require.Equal(t, "queued", b.Status, "the build was not cancelled")

	// Cancel it for real, then retry it.
	code, out, _ = d.cli(t.Context(), "cancel", id)
	require.Equal(t, 0, code)
	require.Contains(t, out, id)
	require.Eventually(t, func() bool {
		_, out, _ := d.cli(t.Context(), "get", id)
		return strings.Contains(out, "cancelled")
	}, 30*time.Second, 50*time.Millisecond)
	code, out, _ = d.cli(t.Context(), "retry", id, "--json")
	require.Equal(t, 0, code)
	var retry client.Build
	require.NoError(t, json.Unmarshal([]byte(out), &retry))
	require.Equal(t, id, *retry.RetryOf)
}

func testBuildCommandErrors(t *testing.T, d *demoServer) {
	t.Parallel()
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	tests := []struct {
		name string
		args []string // after "build"
		code int
		want string
	}{
		{"NoPlatform", []string{"trigger"}, exitUsage, "needs --platform"},
		{"UnknownFlag", []string{"list", "--colour"}, exitUsage, "flag provided but not defined"},
		{"StrayArgument", []string{"list", "extra"}, exitUsage, "takes no arguments"},
		{"NoBuildID", []string{"get"}, exitUsage, "needs exactly one build id"},
		{"InvalidPlatform", []string{"trigger", "--platform", "amiga"}, exitUsage, "--platform: platform must be one of"},
		{"UnknownBuild", []string{"get", "build_00000000000000000000000000"}, exitServer, "not_found"},
		{"BadKey", []string{"list", "--api-key", "df_wrong"}, exitServer, "unauthorized"},
		{"ServerDown", []string{"list", "--url", downURL}, exitServer, "connection refused"},
		{"NotReady", []string{"download", "BUILD"}, exitFailed, "only a successful build"},
	}
	_, out, _ := d.cli(t.Context(), "trigger", "--platform", "mac", "--version", "5.0.0-hang")
	hanging := strings.TrimSpace(out)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{}, tt.args[1:]...)
			for i, a := range args {
				if a == "BUILD" {
					args[i] = hanging
				}
			}
			code, stdout, stderr := d.cli(t.Context(), tt.args[0], args...)
			require.Equal(t, tt.code, code, "stdout: %s\nstderr: %s", stdout, stderr)
			require.Contains(t, stderr, tt.want)
		})
	}
}

func TestBuildLiveViewOnATerminal(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	v := newBuildView(&out, true, false, false)
	created := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	v.now = func() time.Time { return created.Add(72 * time.Second) }
	v.color = false
	b := client.Build{ID: "build_x", Status: "building", Platform: "mac", Arch: "arm64", Version: "1.0.0", CreatedAt: created,
		Progress: &client.Progress{Step: 3, Steps: 6, Name: "Build installer"}}
	v.update(client.Update{Build: &b})
	v.update(client.Update{Logs: []client.LogEntry{{Timestamp: created, Level: "info", Message: "Step started: Build installer"}}})
	dur := int64(80)
	final := b
	final.Status, final.Progress, final.Duration = "success", nil, &dur
	v.finish(&final)
	require.Equal(t,
		clearLine+"⠋ build_x · building · step 3/6 Build installer · 1m12s"+
			clearLine+"2026-01-01T10:00:00Z [info] Step started: Build installer\n"+
			clearLine+"⠋ build_x · building · step 3/6 Build installer · 1m12s"+
			clearLine+"✓ build_x · success · mac/arm64 · 1.0.0 · in 1m20s\n",
		out.String())
}

func TestProgressBarLine(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	p := newProgressBar(&out, true)
	start := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	now := start
	p.now = func() time.Time { return now }
	p.set(0, 4<<20)
	now = start.Add(2 * time.Second)
	p.set(1<<20, 4<<20)
	require.Equal(t, "[======>                 ]  25%  1.0 MiB / 4.0 MiB  512.0 KiB/s  ETA 6s", p.line(now))
	p.stop()
	require.True(t, strings.HasSuffix(out.String(), "ETA 6s\n"), out.String())
}
