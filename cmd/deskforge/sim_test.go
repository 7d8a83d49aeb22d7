package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// cleanEnv is the test's environment without DESKFORGE_* variables, plus
// the given ones and JSON logs.
func cleanEnv(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DESKFORGE_") {
			out = append(out, kv)
		}
	}
	out = append(out, "DESKFORGE_LOG_FORMAT=json")
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// runCLI runs one deskforge command to completion and returns its stdout.
func runCLI(t testing.TB, bin string, env map[string]string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv(env)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "deskforge %v: %s", args, stderr.String())
	return string(out)
}

// simProcess is one `deskforge sim` process.
type simProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
	// env holds the variables it printed (DESKFORGE_GITHUB_API_URL, …).
	env map[string]string
}

var exportRe = regexp.MustCompile(`^export (DESKFORGE_[A-Z_]+)=(\S+)$`)

// startSim starts `deskforge sim` with args and reads the four export
// lines it prints.
func startSim(t testing.TB, bin string, env map[string]string, args ...string) *simProcess {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"sim"}, args...)...)
	cmd.Env = cleanEnv(env)
	logFile, err := os.Create(filepath.Join(t.TempDir(), "sim.log"))
	require.NoError(t, err)
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &simProcess{cmd: cmd, done: make(chan struct{}), env: map[string]string{}}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			logs, _ := os.ReadFile(logFile.Name())
			t.Logf("sim log (last 8 KiB):\n%s", logs[max(0, len(logs)-8<<10):])
		}
	})
	exports := make(chan map[string]string, 1)
	var header strings.Builder
	go func() {
		got := map[string]string{}
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := exportRe.FindStringSubmatch(sc.Text()); m != nil {
				got[m[1]] = m[2]
			} else {
				header.WriteString(sc.Text() + "\n")
			}
			if len(got) == 4 {
				exports <- got
				break
			}
		}
		_, _ = bufio.NewReader(stdout).WriteTo(devNull{})
	}()
	select {
	case p.env = <-exports:
	case <-p.done:
		t.Fatal("deskforge sim exited before printing its environment")
	case <-time.After(60 * time.Second):
		t.Fatal("deskforge sim printed no environment")
	}
	require.Contains(t, header.String(), "survives nothing", "the simulator says its state is not kept")
	for _, k := range []string{"DESKFORGE_GITHUB_API_URL", "DESKFORGE_GITHUB_TOKEN", "DESKFORGE_GITHUB_WEBHOOK_SECRET", "DESKFORGE_BUILDER_REPO"} {
		require.NotEmpty(t, p.env[k], k)
	}
	return p
}

type devNull struct{}

func (devNull) Write(p []byte) (int, error) { return len(p), nil }

// stats reads GET /_sim/stats.
func (p *simProcess) stats(t testing.TB) simStats {
	t.Helper()
	resp, err := http.Get(strings.TrimSuffix(p.env["DESKFORGE_GITHUB_API_URL"], "/") + simStatsPath)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var s simStats
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&s))
	return s
}

// startServe starts `deskforge serve` (GitHub mode) with env and waits
// until it answers /readyz.
func startServe(t testing.TB, bin, name string, env map[string]string) *demoProcess {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = cleanEnv(env)
	logFile, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	require.NoError(t, err)
	cmd.Stderr, cmd.Stdout = logFile, logFile
	require.NoError(t, cmd.Start())
	p := &demoProcess{t: t, cmd: cmd, done: make(chan struct{}), base: "http://" + env["DESKFORGE_LISTEN"]}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			logs, _ := os.ReadFile(logFile.Name())
			t.Logf("%s log (last 8 KiB):\n%s", name, logs[max(0, len(logs)-8<<10):])
		}
	})
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(p.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was ready", name)
		case <-time.After(200 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "%s not ready within 90 s", name)
	}
}

// TestSimServesAServe: `deskforge serve` in GitHub mode, configured with
// the lines `deskforge sim` printed, runs a build on it: the build
// succeeds from the simulator's webhooks and polling, and the simulator's
// stats count exactly one dispatch for it.
func TestSimServesAServe(t *testing.T) {
	t.Parallel()
	bin := deskforgeBinary(t)
	listen := "127.0.0.1:" + freePort(t)
	sim := startSim(t, bin, nil, "--listen", "127.0.0.1:0", "--timing", "fast",
		"--webhook-url", "http://"+listen+"/webhooks/github")

	env := map[string]string{
		"DESKFORGE_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "serve.db"),
		"DESKFORGE_LISTEN":       listen,
		"DESKFORGE_PUBLIC_URL":   "http://" + listen,
	}
	for k, v := range sim.env {
		env[k] = v
	}
	key := strings.TrimSpace(runCLI(t, bin, env, "apikey", "create", "--admin", "--name", "sim-test"))
	var project struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, bin, env, "project", "create", "--name", "Sim App",
		"--url", "https://app.example.com", "--platforms", "linux", "--version", "1.0.0")), &project))
	serve := startServe(t, bin, "serve", env)
	serve.project = project.ID

	b := serve.trigger(key, `{"platform":"linux","arch":"x64","version":"1.0.1"}`)
	final := serve.waitBuilds(key, []string{b.ID}, 120*time.Second, terminal)
	require.Equal(t, "success", final[b.ID].Status, "log: %v", serve.logMessages(key, b.ID))

	stats := sim.stats(t)
	require.Equal(t, map[string]int{b.ID: 1}, stats.Dispatches, "one dispatch for the build")
	require.Positive(t, stats.Webhooks.Sent, "the simulator sent its webhooks to the serve")
	require.Zero(t, stats.Webhooks.Lost+stats.Webhooks.Partial, "the serve took every delivery")
	require.Equal(t, 1, stats.Requests["POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches"])
	require.Positive(t, stats.Requests["GET /repos/{owner}/{repo}/releases/tags/{tag}"]+stats.Requests["GET /repos/{owner}/{repo}/releases"],
		"the engine looked the installer up on the release: %v", stats.Requests)
}

// TestSimFanOut: the simulator's webhook transport sends each delivery,
// headers and body intact, to every --webhook-url, and reports a failure
// of any receiver to the simulator (which records the delivery as failed).
func TestSimFanOut(t *testing.T) {
	type got struct{ event, sig, body string }
	received := make(chan got, 4)
	ok := func(status int) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			received <- got{r.Header.Get("X-GitHub-Event"), r.Header.Get("X-Hub-Signature-256"), string(body)}
			w.WriteHeader(status)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	var hooks webhookURLs
	for _, srv := range []*httptest.Server{ok(http.StatusAccepted), ok(http.StatusOK)} {
		require.NoError(t, hooks.Set(srv.URL+"/webhooks/github"))
	}
	f := &fanOut{targets: hooks, next: http.DefaultTransport}
	send := func() *http.Response {
		req, err := http.NewRequest(http.MethodPost, hooks[0].String(), strings.NewReader(`{"action":"completed"}`))
		require.NoError(t, err)
		req.Header.Set("X-GitHub-Event", "workflow_run")
		req.Header.Set("X-Hub-Signature-256", "sha256=abc")
		resp, err := f.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	require.Equal(t, http.StatusOK, send().StatusCode)
	for range 2 {
		require.Equal(t, got{"workflow_run", "sha256=abc", `{"action":"completed"}`}, <-received)
	}

	require.NoError(t, hooks.Set(ok(http.StatusServiceUnavailable).URL))
	f.targets = hooks
	require.Equal(t, http.StatusBadGateway, send().StatusCode, "one receiver failed")
	for range 3 {
		<-received
	}
	require.Equal(t, webhookStats{Sent: 2, Partial: 1}, f.stats())
	require.Error(t, hooks.Set("ftp://example.com/"), "only http(s) receivers")
}
