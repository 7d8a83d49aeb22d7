package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/workflows/ghsim"
)

// These tests run the deskforge binary as real processes (built once per
// test run with `go build`): a demo killed with SIGKILL and restarted on
// its database, and two demos side by side on one PostgreSQL database.

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binaryPath != "" {
		os.RemoveAll(filepath.Dir(binaryPath))
	}
	os.Exit(code)
}

// deskforgeBinary builds the deskforge command once and returns its path.
func deskforgeBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the deskforge binary: skipped in -short mode")
	}
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "deskforge-bin-*")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "deskforge")
		out, err := exec.Command("go", "build", "-o", binaryPath, ".").CombinedOutput()
		if err != nil {
			binaryErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, binaryErr)
	return binaryPath
}

// demoProcess is one `deskforge serve --demo` process.
type demoProcess struct {
	t       testing.TB
	cmd     *exec.Cmd
	base    string // http://127.0.0.1:port
	key     string
	project string
	done    chan struct{}
}

var (
	bannerServerRe = regexp.MustCompile(`(http://127\.0\.0\.1:\d+)/projects/(proj_[a-z0-9]+)/builds`)
	bannerKeyRe    = regexp.MustCompile(`df_[a-z0-9]+`)
)

// startDemoProcess starts the binary with env (on top of the test's
// environment, DESKFORGE_* variables removed) and waits for its banner.
func startDemoProcess(t *testing.T, bin, name string, env map[string]string) *demoProcess {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--demo")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DESKFORGE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "DESKFORGE_LOG_FORMAT=json")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logFile, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	require.NoError(t, err)
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &demoProcess{t: t, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // killed at the end: its exit status says nothing
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

	banner := make(chan [3]string, 1)
	go func() {
		var seen strings.Builder
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			seen.WriteString(sc.Text() + "\n")
			m := bannerServerRe.FindStringSubmatch(seen.String())
			key := bannerKeyRe.FindString(seen.String())
			if !sent && m != nil && key != "" {
				banner <- [3]string{m[1], m[2], key}
				sent = true
			}
		}
	}()
	select {
	case b := <-banner:
		p.base, p.project, p.key = b[0], b[1], b[2]
	case <-p.done:
		t.Fatalf("%s exited before printing its banner", name)
	case <-time.After(90 * time.Second):
		t.Fatalf("%s printed no banner", name)
	}
	return p
}

// kill stops the process with SIGKILL (no graceful shutdown) and waits.
func (p *demoProcess) kill() {
	_ = p.cmd.Process.Kill() // fails only when it has already exited
	<-p.done
}

// call sends an API request with key and returns the status and body.
func (p *demoProcess) call(key, method, path, body string) (int, []byte) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.base+path, strings.NewReader(body))
	require.NoError(p.t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req) // follows the download's redirect to the simulator
	require.NoError(p.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(p.t, err)
	return resp.StatusCode, data
}

type processBuild struct {
	ID          string  `json:"id"`
	Status      string  `json:"status"`
	ArtifactURL *string `json:"artifactUrl"`
}

func (p *demoProcess) trigger(key, body string) processBuild {
	p.t.Helper()
	code, data := p.call(key, http.MethodPost, "/projects/"+p.project+"/builds", body)
	require.Equal(p.t, http.StatusCreated, code, "%s", data)
	var b processBuild
	require.NoError(p.t, json.Unmarshal(data, &b))
	return b
}

func (p *demoProcess) get(key, id string) processBuild {
	p.t.Helper()
	code, data := p.call(key, http.MethodGet, "/builds/"+id, "")
	require.Equal(p.t, http.StatusOK, code, "%s", data)
	var b processBuild
	require.NoError(p.t, json.Unmarshal(data, &b))
	return b
}

func (p *demoProcess) logMessages(key, id string) []string {
	p.t.Helper()
	code, data := p.call(key, http.MethodGet, "/builds/"+id+"/logs?limit=10000", "")
	require.Equal(p.t, http.StatusOK, code, "%s", data)
	var out struct {
		Logs []struct{ Message string } `json:"logs"`
	}
	require.NoError(p.t, json.Unmarshal(data, &out))
	var msgs []string
	for _, l := range out.Logs {
		msgs = append(msgs, l.Message)
	}
	return msgs
}

// waitBuilds waits until every build satisfies done and returns them.
func (p *demoProcess) waitBuilds(key string, ids []string, timeout time.Duration, done func(processBuild) bool) map[string]processBuild {
	p.t.Helper()
	out := map[string]processBuild{}
	deadline := time.Now().Add(timeout)
	for {
		pending := []string{}
		for _, id := range ids {
			b := p.get(key, id)
			out[id] = b
			if !done(b) {
				pending = append(pending, id+"="+b.Status)
			}
		}
		if len(pending) == 0 {
			return out
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("builds still pending after %s: %v", timeout, pending)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func terminal(b processBuild) bool {
	return b.Status != "queued" && b.Status != "building"
}

var dispatchedRe = regexp.MustCompile(`^Dispatched to workflow run (\d+)`)

// runsInLog returns the run ids a build's log says it was dispatched to.
func runsInLog(msgs []string) []string {
	var runs []string
	for _, m := range msgs {
		if s := dispatchedRe.FindStringSubmatch(m); s != nil {
			runs = append(runs, s[1])
		}
	}
	return runs
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// requireOwnDownload downloads a successful build through p and checks the
// bytes are its own installer's.
func requireOwnDownload(t *testing.T, p *demoProcess, key string, b processBuild) {
	t.Helper()
	require.NotNil(t, b.ArtifactURL)
	name, err := url.PathUnescape(path.Base(*b.ArtifactURL))
	require.NoError(t, err)
	code, data := p.call(key, http.MethodGet, "/builds/"+b.ID+"/download", "")
	require.Equal(t, http.StatusOK, code, "%s", data)
	require.Equal(t, ghsim.AssetBytes(name), data, "build %s downloads its own installer", b.ID)
}

// TestDemoRestartNeverMixesBuilds: a demo is killed (SIGKILL) while its
// builds run, and restarted on the same database and port. Its new
// simulator numbers runs from a time-based base, so the new builds never get
// the old builds' run ids: the new builds succeed with their own runs and
// logs, and the old builds, whose runs vanished with the old simulator, fail
// saying exactly that, with nothing of the new builds in their logs.
func TestDemoRestartNeverMixesBuilds(t *testing.T) {
	t.Parallel()
	bin := deskforgeBinary(t)
	env := map[string]string{
		"DESKFORGE_LISTEN":       "127.0.0.1:" + freePort(t),
		"DESKFORGE_DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "demo.db"),
	}
	first := startDemoProcess(t, bin, "first", env)
	var old []string
	for i := range 3 {
		old = append(old, first.trigger(first.key, fmt.Sprintf(`{"platform":"linux","arch":"x64","version":"1.0.%d"}`, i)).ID)
	}
	// Every old build has its run before the kill.
	first.waitBuilds(first.key, old, 60*time.Second, func(b processBuild) bool { return b.Status == "building" })
	first.kill()

	second := startDemoProcess(t, bin, "second", env)
	key := second.key
	var fresh []string
	for i := range 3 {
		fresh = append(fresh, second.trigger(key, fmt.Sprintf(`{"platform":"linux","arch":"x64","version":"1.1.%d"}`, i)).ID)
	}
	final := second.waitBuilds(key, append(append([]string{}, old...), fresh...), 240*time.Second, terminal)

	runOf := map[string]string{}
	builds := map[string]string{} // run id -> build
	for id := range final {
		runs := runsInLog(second.logMessages(key, id))
		require.Len(t, runs, 1, "build %s was dispatched to one run: %v", id, runs)
		require.NotContains(t, builds, runs[0], "run %s recorded for %s and %s", runs[0], builds[runs[0]], id)
		builds[runs[0]], runOf[id] = id, runs[0]
	}
	for _, id := range fresh {
		msgs := second.logMessages(key, id)
		require.Equal(t, "success", final[id].Status, "new build %s: %v", id, msgs)
		require.Equal(t, "Build completed successfully", msgs[len(msgs)-1])
		requireOwnDownload(t, second, key, final[id])
	}
	for _, id := range old {
		require.Equal(t, "failed", final[id].Status, "old build %s lost its run with the old simulator", id)
		msgs := second.logMessages(key, id)
		require.Equal(t, "Build failed: workflow run "+runOf[id]+" no longer exists on GitHub", msgs[len(msgs)-1], "the true reason")
		for _, m := range msgs {
			require.NotContains(t, m, "Build completed successfully", "old build %s", id)
			for _, f := range fresh {
				require.NotContains(t, m, runOf[f], "old build %s never receives new build %s's run", id, f)
			}
		}
	}
}

// TestTwoDemosOnOnePostgres: two demo processes, each with its own
// simulated GitHub, share one PostgreSQL database (and so their River
// jobs). Every build ends as its own simulator ran it, with its own run,
// log and installer: no build receives another's.
func TestTwoDemosOnOnePostgres(t *testing.T) {
	t.Parallel()
	bin := deskforgeBinary(t)
	dbURL := dbtest.PostgresURL(t)
	env := map[string]string{"DESKFORGE_LISTEN": "127.0.0.1:0", "DESKFORGE_DATABASE_URL": dbURL}
	a := startDemoProcess(t, bin, "demo-a", env)
	b := startDemoProcess(t, bin, "demo-b", env)
	require.Equal(t, a.project, b.project, "the second demo finds the demo project")
	key := b.key // the demo key of the last demo started

	createdBy := map[string]*demoProcess{}
	var ids []string
	platforms := []string{"linux", "mac", "windows"}
	for i := range 8 {
		p := a
		if i%2 == 1 {
			p = b
		}
		body := fmt.Sprintf(`{"platform":%q,"arch":"x64","version":"2.0.%d"}`, platforms[i%3], i)
		id := p.trigger(key, body).ID
		createdBy[id] = p
		ids = append(ids, id)
	}
	final := a.waitBuilds(key, ids, 240*time.Second, terminal)

	builds := map[string]string{}
	for _, id := range ids {
		require.Equal(t, "success", final[id].Status, "build %s", id)
		msgs := a.logMessages(key, id)
		runs := runsInLog(msgs)
		require.Len(t, runs, 1, "build %s was dispatched to one run: %v", id, runs)
		require.NotContains(t, builds, runs[0], "run %s recorded for %s and %s", runs[0], builds[runs[0]], id)
		builds[runs[0]] = id
		n := 0
		for _, m := range msgs {
			if m == "Build completed successfully" {
				n++
			}
		}
		require.Equal(t, 1, n, "build %s completed once: %v", id, msgs)
		requireOwnDownload(t, createdBy[id], key, final[id])
	}
}
