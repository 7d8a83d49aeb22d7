package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/deskforge/deskforge/client"
	"github.com/deskforge/deskforge/templates"
	ghforge "github.com/deskforge/deskforge/workflows/github"
)

// TestGiteaRealForge runs `deskforge serve` against a real forge: Gitea with
// Gitea Actions and a real runner in host mode, built and started by the
// scripts in .ci/gitea (a copy of the team's ../shared/gitea: build.sh,
// start.sh, stop.sh). It drives a success, a failure
// (fail=1), a cancel while running (sleep_seconds), a build whose webhooks
// never arrive (the repository's webhook switched off: polling finishes it)
// and checks that every build ends in the right state with its job log, and
// that the downloaded installer's bytes are the release asset's.
//
// It runs only with DESKFORGE_GITEA_E2E=1 (.ci/run sets it): the forge's
// cold build takes about 8 minutes. DESKFORGE_GITEA_SCRIPTS overrides the
// scripts' directory.
func TestGiteaRealForge(t *testing.T) {
	if os.Getenv("DESKFORGE_GITEA_E2E") != "1" {
		t.Skip("real-forge e2e: set DESKFORGE_GITEA_E2E=1 (builds the forge with .ci/gitea's scripts; .ci/run does)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	forge := startGitea(t, freePort(t))
	forge.commitWorkflow(t, "deskforge-e2e.yml", filepath.Join("testdata", "gitea", "deskforge-e2e.yml"))
	df := startDeskForgeServe(t, ctx, forge)

	success := df.createProject(t, "Gitea Success", "https://example.com/app")
	failing := df.createProject(t, "Gitea Failing", "https://example.com/app?fail=1")
	slow := df.createProject(t, "Gitea Slow", "https://example.com/app?sleep_seconds=45")
	quiet := df.createProject(t, "Gitea Quiet", "https://example.com/app?sleep_seconds=4")

	api := df.client(t)
	trigger := func(project, version string) string {
		b, err := api.TriggerBuild(ctx, project, client.TriggerRequest{Platform: "linux", Arch: "x64", Version: version})
		require.NoError(t, err)
		return b.ID
	}

	// Success and failure, side by side (the runner takes two jobs).
	okID := trigger(success, "1.0.1")
	failID := trigger(failing, "1.0.2")
	builds := df.waitTerminal(t, ctx, 4*time.Minute, okID, failID)

	ok := builds[okID]
	require.Equal(t, client.StatusSuccess, ok.Status, "%+v", ok.Error)
	require.NotNil(t, ok.ArtifactURL)
	okLog := df.logText(t, ctx, okID)
	require.Contains(t, okLog, "deskforge build "+okID, "the job log (fetched from Gitea's 200 answer) is in the build log")
	require.Contains(t, okLog, "Step 1/3 started: Show inputs", "steps numbered from 0 by Gitea are logged from 1")
	require.Contains(t, okLog, "Build completed successfully")
	df.checkDownload(t, ctx, forge, okID, "1.0.1")

	failed := builds[failID]
	require.Equal(t, client.StatusFailed, failed.Status)
	require.NotNil(t, failed.Error)
	require.Equal(t, "step_failed", failed.Error.Code, failed.Error.Message)
	require.NotNil(t, failed.Error.Step)
	require.Equal(t, "Build installer", *failed.Error.Step)
	require.Contains(t, failed.Error.Message, "build failed on purpose")
	require.Contains(t, df.logText(t, ctx, failID), "build failed on purpose (fail=1)")

	// Cancel while running: through Gitea's web route (no REST cancel).
	slowID := trigger(slow, "1.0.3")
	df.waitLog(t, ctx, 3*time.Minute, slowID, "sleeping 45s")
	_, err := api.CancelBuild(ctx, slowID)
	require.NoError(t, err)
	cancelled := df.waitTerminal(t, ctx, 3*time.Minute, slowID)[slowID]
	require.Equal(t, client.StatusCancelled, cancelled.Status, "%+v", cancelled.Error)
	cancelLog := df.logText(t, ctx, slowID)
	require.Contains(t, cancelLog, "sleeping 45s", "the cancelled job's log was fetched")
	require.Equal(t, 1, strings.Count(cancelLog, "Build cancelled"),
		"Gitea delivers the cancelled job's completion more than once: applied once")

	// Webhooks that never arrive: the hook is switched off, polling alone
	// (reconcile every second, stale after 3 s) finishes the build.
	forge.setHookActive(t, false)
	time.Sleep(2 * time.Second) // deliveries of the earlier builds still in flight
	hooksBefore := df.webhookRequests(t)
	require.Positive(t, hooksBefore, "the earlier builds were followed through webhooks")
	quietID := trigger(quiet, "1.0.4")
	quietBuild := df.waitTerminal(t, ctx, 4*time.Minute, quietID)[quietID]
	require.Equal(t, client.StatusSuccess, quietBuild.Status, "%+v", quietBuild.Error)
	require.Contains(t, df.logText(t, ctx, quietID), "deskforge build "+quietID)
	df.checkDownload(t, ctx, forge, quietID, "1.0.4")
	require.Equal(t, hooksBefore, df.webhookRequests(t), "no webhook reached DeskForge while the quiet build ran")
	serveLog, err := os.ReadFile(df.logPath)
	require.NoError(t, err)
	require.Contains(t, string(serveLog), "GitHub credentials checked", "the start-up check passes on Gitea (GET /user, the builder repository)")
	require.NotContains(t, string(serveLog), "CHECK FAILED")

	// The Gitea template's upload step, run against this Gitea: it creates
	// a draft, replaces an asset of the same name, and what it uploaded is
	// found and downloaded (a draft: with the token) by DeskForge's forge.
	forge.checkTemplateUpload(t, ctx)
}

// giteaForge is the forge start.sh started, with what env.sh says.
type giteaForge struct {
	scripts string
	work    string
	env     map[string]string
	api     string // API root, trailing slash
}

// giteaScripts is the directory of the forge's scripts: .ci/gitea in the
// repository (a copy of the team's ../shared/gitea; the e2e package runs
// in <repo>/e2e), or DESKFORGE_GITEA_SCRIPTS.
func giteaScripts(t *testing.T) string {
	dir := os.Getenv("DESKFORGE_GITEA_SCRIPTS")
	if dir == "" {
		dir = filepath.Join("..", ".ci", "gitea")
	}
	abs, err := filepath.Abs(dir)
	require.NoError(t, err)
	for _, f := range []string{"build.sh", "start.sh", "stop.sh"} {
		if _, err := os.Stat(filepath.Join(abs, f)); err != nil {
			t.Fatalf("the real-forge e2e needs %s (the Gitea scripts; set DESKFORGE_GITEA_SCRIPTS): %v", filepath.Join(abs, f), err)
		}
	}
	return abs
}

// startGitea builds (seconds when built) and starts a fresh forge on
// giteaPort, in a work dir of its own, with its webhook pointing at the
// DeskForge that startDeskForgeServe starts on dfPort.
func startGitea(t *testing.T, dfPort int) *giteaForge {
	scripts := giteaScripts(t)
	run := func(env []string, name string, args ...string) string {
		cmd := exec.Command("bash", append([]string{filepath.Join(scripts, name)}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		require.NoError(t, err, "%s: %s", name, out.String())
		return out.String()
	}
	start := time.Now()
	run(nil, "build.sh")
	t.Logf("build.sh: %s", time.Since(start).Round(time.Second))

	work := filepath.Join(t.TempDir(), "gitea-work") // start.sh makes it
	env := []string{"GITEA_WORK_DIR=" + work, fmt.Sprintf("GITEA_PORT=%d", freePort(t))}
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"runner.out", "gitea/log/gitea.log"} {
				if b, err := os.ReadFile(filepath.Join(work, f)); err == nil {
					t.Logf("--- %s (last 4 KiB)\n%s", f, b[max(0, len(b)-4096):])
				}
			}
		}
		cmd := exec.Command("bash", filepath.Join(scripts, "stop.sh"))
		cmd.Env = append(os.Environ(), env...)
		out, _ := cmd.CombinedOutput()
		t.Logf("stop.sh: %s", out)
	})
	run(env, "start.sh", fmt.Sprintf("http://127.0.0.1:%d/webhooks/github", dfPort))
	f := &giteaForge{scripts: scripts, work: work, env: readEnvFile(t, filepath.Join(work, "env.sh"))}
	f.api = f.env["GITEA_API_URL"]
	require.NotEmpty(t, f.api, "env.sh has GITEA_API_URL")
	return f
}

// readEnvFile reads the export lines of env.sh.
func readEnvFile(t *testing.T, path string) map[string]string {
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "export ")
		if !ok {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env
}

// call sends one request to Gitea's API with the admin token.
func (f *giteaForge) call(t *testing.T, method, path string, body any) []byte {
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, f.api+path, r)
	require.NoError(t, err)
	req.Header.Set("Authorization", "token "+f.env["GITEA_TOKEN"])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	require.Less(t, resp.StatusCode, 300, "%s %s: %s", method, path, out)
	return out
}

// commitWorkflow commits the local file as .github/workflows/name.
func (f *giteaForge) commitWorkflow(t *testing.T, name, local string) {
	content, err := os.ReadFile(local)
	require.NoError(t, err)
	f.call(t, http.MethodPost, "repos/"+f.env["GITEA_REPO"]+"/contents/.github/workflows/"+name, map[string]any{
		"branch": "main", "message": "add " + name, "content": base64.StdEncoding.EncodeToString(content),
	})
}

// scopedToken creates an access token of the admin user with only these
// scopes (the README's advice for DeskForge's token).
func (f *giteaForge) scopedToken(t *testing.T, scopes ...string) string {
	body, err := json.Marshal(map[string]any{"name": fmt.Sprintf("deskforge-%d", time.Now().UnixNano()), "scopes": scopes})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, f.api+"users/"+f.env["GITEA_ADMIN_USER"]+"/tokens", bytes.NewReader(body))
	require.NoError(t, err)
	req.SetBasicAuth(f.env["GITEA_ADMIN_USER"], f.env["GITEA_ADMIN_PASSWORD"])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "create token: %s", out)
	var tok struct {
		SHA1 string `json:"sha1"`
	}
	require.NoError(t, json.Unmarshal(out, &tok))
	require.NotEmpty(t, tok.SHA1)
	return tok.SHA1
}

// setHookActive switches the repository's webhook on or off.
func (f *giteaForge) setHookActive(t *testing.T, active bool) {
	f.call(t, http.MethodPatch, "repos/"+f.env["GITEA_REPO"]+"/hooks/"+f.env["GITEA_HOOK_ID"], map[string]any{"active": active})
}

// releaseAsset downloads an asset of release v<version> from its
// browser_download_url, as a user of Gitea would.
func (f *giteaForge) releaseAsset(t *testing.T, version, name string) []byte {
	var rel struct {
		Assets []struct {
			Name string `json:"name"`
			URL  string `json:"browser_download_url"`
		} `json:"assets"`
	}
	require.NoError(t, json.Unmarshal(f.call(t, http.MethodGet, "repos/"+f.env["GITEA_REPO"]+"/releases/tags/v"+version, nil), &rel))
	for _, a := range rel.Assets {
		if a.Name == name {
			resp, err := http.Get(a.URL)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			data, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			return data
		}
	}
	t.Fatalf("release v%s has no asset %s", version, name)
	return nil
}

// checkTemplateUpload runs the "Upload to release" step of the Gitea webapp
// template with bash, as a runner would (job token: the admin token here),
// twice, and reads the result back through the Gitea forge.
func (f *giteaForge) checkTemplateUpload(t *testing.T, ctx context.Context) {
	t.Helper()
	content, err := templates.GetFor(templates.ForgeGitea, "webapp")
	require.NoError(t, err)
	var w struct {
		Jobs map[string]struct {
			Steps []struct {
				Name string `yaml:"name"`
				Run  string `yaml:"run"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	require.NoError(t, yaml.Unmarshal(content, &w))
	script := ""
	for _, s := range w.Jobs["build"].Steps {
		if s.Name == "Upload to release" {
			script = s.Run
		}
	}
	require.NotEmpty(t, script)
	var branch struct {
		Commit struct {
			ID string `json:"id"`
		} `json:"commit"`
	}
	require.NoError(t, json.Unmarshal(f.call(t, http.MethodGet, "repos/"+f.env["GITEA_REPO"]+"/branches/main", nil), &branch))

	// runStep runs the step for one installer of a release; withSig adds a
	// Tauri updater signature (the AppImage is its own updater artifact).
	runStep := func(version, name string, data []byte, withSig bool) (string, error) {
		dir := t.TempDir()
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, data, 0o644))
		sum := sha256Hex(data)
		require.NoError(t, os.WriteFile(path+".sha256", []byte(sum+"  "+name+"\n"), 0o644))
		cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script)
		cmd.Env = append(os.Environ(),
			"GITHUB_API_URL="+strings.TrimSuffix(f.api, "/"), "GITHUB_REPOSITORY="+f.env["GITEA_REPO"], "GITHUB_SHA="+branch.Commit.ID,
			"TOKEN="+f.env["GITEA_TOKEN"], "ASSET_NAME="+name, "ASSET_PATH="+path, "ASSET_SHA256="+sum,
			"RELEASE_TAG=v"+version, "RUNNER_TEMP="+dir)
		if withSig {
			require.NoError(t, os.WriteFile(path+".sig", []byte("signature of "+sum), 0o644))
			cmd.Env = append(cmd.Env, "UPDATER_NAME="+name, "UPDATER_PATH="+path, "UPDATER_SIG="+path+".sig")
		}
		out, err := cmd.CombinedOutput()
		t.Logf("template upload step: %s", out)
		return string(out), err
	}
	const version, name = "7.1.0", "template-7.1.0-linux-x64.AppImage"
	upload := func(data []byte) (string, error) { return runStep(version, name, data, false) }
	_, err = upload([]byte("first upload"))
	require.NoError(t, err)
	second := []byte("second upload, a rebuild")
	_, err = runStep(version, name, second, true)
	require.NoError(t, err)
	require.Equal(t, "signature of "+sha256Hex(second), string(f.releaseAssetDraft(t, version, name+".sig")), "the updater signature is uploaded")

	// Two builds of one version at once: Gitea refuses the second release
	// of a tag (409), and both installers land on one release.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, arch := range []string{"x64", "arm64"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = runStep("7.3.0", "template-7.3.0-linux-"+arch+".AppImage", []byte("installer "+arch), false)
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	var parallel struct {
		Assets []struct {
			Name string `json:"name"`
		} `json:"assets"`
	}
	require.NoError(t, json.Unmarshal(f.call(t, http.MethodGet, "repos/"+f.env["GITEA_REPO"]+"/releases/tags/v7.3.0", nil), &parallel))
	require.Len(t, parallel.Assets, 4, "both installers and their checksums on the one release: %+v", parallel.Assets)

	var rel struct {
		Draft  bool `json:"draft"`
		Assets []struct {
			Name string `json:"name"`
		} `json:"assets"`
	}
	require.NoError(t, json.Unmarshal(f.call(t, http.MethodGet, "repos/"+f.env["GITEA_REPO"]+"/releases/tags/v"+version, nil), &rel))
	require.True(t, rel.Draft, "the step creates a missing release as a draft")
	var names []string
	for _, a := range rel.Assets {
		names = append(names, a.Name)
	}
	require.ElementsMatch(t, []string{name, name + ".sha256", name + ".sig"}, names, "a rebuild replaces the assets of its name")

	client, err := ghforge.NewGitea(ctx, ghforge.GiteaOptions{Options: ghforge.Options{BaseURL: f.api, Token: f.env["GITEA_TOKEN"]}})
	require.NoError(t, err)
	asset, err := client.FindReleaseAsset(ctx, f.env["GITEA_REPO"], "v"+version, name)
	require.NoError(t, err)
	require.True(t, asset.Draft)
	require.Equal(t, int64(len(second)), asset.Size)
	resp, err := client.OpenAsset(ctx, f.env["GITEA_REPO"], asset.ID, http.Header{})
	require.NoError(t, err)
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, second, got, "the draft's asset is downloaded with the token")

	// What publishing a DeskForge release does (update manifests, then the
	// release made public), through the same client.
	manifest := []byte(`{"version":"7.1.0"}`)
	uploaded, err := client.UploadReleaseAsset(ctx, f.env["GITEA_REPO"], "v"+version, "latest.json", "application/json", manifest)
	require.NoError(t, err)
	require.Equal(t, "latest.json", uploaded.Name)
	require.Equal(t, int64(len(manifest)), uploaded.Size)
	htmlURL, err := client.PublishRelease(ctx, f.env["GITEA_REPO"], "v"+version, "Release notes")
	require.NoError(t, err)
	require.Contains(t, htmlURL, "/releases/tag/v"+version)
	var published struct {
		Draft bool   `json:"draft"`
		Body  string `json:"body"`
	}
	require.NoError(t, json.Unmarshal(f.call(t, http.MethodGet, "repos/"+f.env["GITEA_REPO"]+"/releases/tags/v"+version, nil), &published))
	require.False(t, published.Draft)
	require.Equal(t, "Release notes", published.Body)
	require.Equal(t, manifest, f.releaseAsset(t, version, "latest.json"), "published: downloaded without a token")

	out, err := upload([]byte("a third upload, after publication"))
	require.Error(t, err, "the step refuses to change a published release")
	require.Contains(t, out, "a published release is never changed")
	require.Equal(t, second, f.releaseAsset(t, version, name))
}

// releaseAssetDraft downloads an asset of a draft release with the token.
func (f *giteaForge) releaseAssetDraft(t *testing.T, version, name string) []byte {
	var rel struct {
		Assets []struct {
			Name string `json:"name"`
			URL  string `json:"browser_download_url"`
		} `json:"assets"`
	}
	require.NoError(t, json.Unmarshal(f.call(t, http.MethodGet, "repos/"+f.env["GITEA_REPO"]+"/releases/tags/v"+version, nil), &rel))
	for _, a := range rel.Assets {
		if a.Name == name {
			req, err := http.NewRequest(http.MethodGet, a.URL, nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "token "+f.env["GITEA_TOKEN"])
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			data, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			return data
		}
	}
	t.Fatalf("release v%s has no asset %s", version, name)
	return nil
}

// serveProcess is one `deskforge serve` process.
type serveProcess struct {
	base    string
	logPath string
	key     string
	bin     string
	env     []string
}

// startDeskForgeServe builds the deskforge command and runs `deskforge
// serve` against forge on port (the one forge's webhook points at).
func startDeskForgeServe(t *testing.T, ctx context.Context, forge *giteaForge) *serveProcess {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "deskforge")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/deskforge").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	port := forge.webhookPort(t)
	p := &serveProcess{base: fmt.Sprintf("http://127.0.0.1:%d", port), bin: bin}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DESKFORGE_") {
			p.env = append(p.env, kv)
		}
	}
	p.env = append(p.env,
		"DESKFORGE_DATABASE_URL=sqlite://"+filepath.Join(dir, "deskforge.db"),
		"DESKFORGE_FORGE=gitea",
		"DESKFORGE_FORGE_URL="+forge.api,
		"DESKFORGE_GITHUB_TOKEN="+forge.scopedToken(t, "write:repository", "read:user"),
		"DESKFORGE_GITHUB_WEBHOOK_SECRET="+forge.env["GITEA_WEBHOOK_SECRET"],
		"DESKFORGE_GITEA_USERNAME="+forge.env["GITEA_ADMIN_USER"],
		"DESKFORGE_GITEA_PASSWORD="+forge.env["GITEA_ADMIN_PASSWORD"],
		"DESKFORGE_BUILDER_REPO="+forge.env["GITEA_REPO"],
		"DESKFORGE_BUILDER_WORKFLOW=deskforge-e2e.yml",
		"DESKFORGE_LISTEN="+strings.TrimPrefix(p.base, "http://"),
		"DESKFORGE_PUBLIC_URL="+p.base,
		"DESKFORGE_RUNNERS=linux/x64=ubuntu-24.04",
		"DESKFORGE_STALE_AFTER=3s",
		"DESKFORGE_RECONCILE_INTERVAL=1s",
		"DESKFORGE_STEP_POLL_INTERVAL=2s",
		"DESKFORGE_RATE_LIMIT_READS=off",
		"DESKFORGE_RATE_LIMIT_WRITES=off",
		"DESKFORGE_LOG_FORMAT=json",
	)
	cmd := func(args ...string) *exec.Cmd {
		c := exec.CommandContext(ctx, bin, args...)
		c.Env = p.env
		return c
	}
	out, err = cmd("migrate").CombinedOutput()
	require.NoError(t, err, "migrate: %s", out)
	key, err := cmd("apikey", "create", "--admin", "--name", "gitea-e2e").Output()
	require.NoError(t, err)
	p.key = strings.TrimSpace(string(key))

	logPath := filepath.Join(dir, "serve.log")
	p.logPath = logPath
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	serve := cmd("serve")
	serve.Stdout, serve.Stderr = logFile, logFile
	require.NoError(t, serve.Start())
	done := make(chan struct{})
	go func() { _ = serve.Wait(); logFile.Close(); close(done) }()
	t.Cleanup(func() {
		_ = serve.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			_ = serve.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("deskforge serve log (last 16 KiB):\n%s", b[max(0, len(b)-16<<10):])
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-done:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("deskforge serve exited:\n%s", b)
		default:
		}
		require.True(t, time.Now().Before(deadline), "deskforge serve did not answer /healthz")
		time.Sleep(200 * time.Millisecond)
	}
	return p
}

// webhookRequests counts the webhook deliveries DeskForge answered so far
// (its access log).
func (p *serveProcess) webhookRequests(t *testing.T) int {
	data, err := os.ReadFile(p.logPath)
	require.NoError(t, err)
	return strings.Count(string(data), `"path":"/webhooks/github"`)
}

// webhookPort is the port of the URL the forge's webhook delivers to.
func (f *giteaForge) webhookPort(t *testing.T) int {
	var hook struct {
		Config map[string]string `json:"config"`
	}
	require.NoError(t, json.Unmarshal(f.call(t, http.MethodGet, "repos/"+f.env["GITEA_REPO"]+"/hooks/"+f.env["GITEA_HOOK_ID"], nil), &hook))
	var port int
	_, err := fmt.Sscanf(hook.Config["url"], "http://127.0.0.1:%d/", &port)
	require.NoError(t, err, "hook url %q", hook.Config["url"])
	return port
}

func (p *serveProcess) client(t *testing.T) *client.Client {
	c, err := client.New(client.Options{BaseURL: p.base, APIKey: p.key})
	require.NoError(t, err)
	return c
}

// createProject creates a web-app project (built by the builder repository).
func (p *serveProcess) createProject(t *testing.T, name, appURL string) string {
	body, _ := json.Marshal(map[string]any{"name": name, "url": appURL, "version": "1.0.0", "platforms": []string{"linux"}})
	req, err := http.NewRequest(http.MethodPost, p.base+"/projects", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+p.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", out)
	var proj struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(out, &proj))
	return proj.ID
}

// waitTerminal waits until every build is final.
func (p *serveProcess) waitTerminal(t *testing.T, ctx context.Context, timeout time.Duration, ids ...string) map[string]client.Build {
	t.Helper()
	api := p.client(t)
	out := map[string]client.Build{}
	deadline := time.Now().Add(timeout)
	for {
		for _, id := range ids {
			b, err := api.GetBuild(ctx, id)
			require.NoError(t, err)
			out[id] = *b
		}
		final := true
		for _, b := range out {
			final = final && client.IsFinal(b.Status)
		}
		if final {
			return out
		}
		if time.Now().After(deadline) {
			for id := range out {
				t.Logf("build %s log:\n%s", id, p.logText(t, ctx, id))
			}
			t.Fatalf("builds not final after %s: %+v", timeout, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// logText is a build's log, one entry a line.
func (p *serveProcess) logText(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	var b strings.Builder
	page, err := p.client(t).BuildLogs(ctx, id, client.LogOptions{})
	require.NoError(t, err)
	for _, e := range page.Logs {
		fmt.Fprintf(&b, "%s %s\n", e.Level, e.Message)
	}
	return b.String()
}

// waitLog waits until a build's log contains text (its job log is fetched
// only at the end, so live step progress is what shows a running job).
func (p *serveProcess) waitLog(t *testing.T, ctx context.Context, timeout time.Duration, id, text string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, err := p.client(t).GetBuild(ctx, id)
		require.NoError(t, err)
		if b.Status == client.StatusBuilding && b.Progress != nil && b.Progress.Name == "Build installer" {
			return
		}
		require.False(t, client.IsFinal(b.Status), "build %s ended (%s) before %q", id, b.Status, text)
		require.True(t, time.Now().Before(deadline), "build %s not at its build step after %s", id, timeout)
		time.Sleep(300 * time.Millisecond)
	}
}

// checkDownload downloads a build's installer through DeskForge and checks
// its bytes against the release asset and its .sha256 on Gitea.
func (p *serveProcess) checkDownload(t *testing.T, ctx context.Context, forge *giteaForge, id, version string) {
	t.Helper()
	b, err := p.client(t).GetBuild(ctx, id)
	require.NoError(t, err)
	require.NotNil(t, b.ArtifactURL)
	// Through the client, which follows the redirect to the forge on the
	// same host name without the DeskForge key (Gitea answers 401 to it).
	a, err := p.client(t).OpenArtifact(ctx, id, 0)
	require.NoError(t, err)
	defer a.Body.Close()
	got, err := io.ReadAll(a.Body)
	require.NoError(t, err)
	name := filepath.Base(*b.ArtifactURL)
	want := forge.releaseAsset(t, version, name)
	require.Equal(t, sha256Hex(want), sha256Hex(got), "downloaded bytes are the release asset's")
	sum := sha256.Sum256(got)
	line := string(forge.releaseAsset(t, version, name+".sha256"))
	require.True(t, strings.HasPrefix(line, hex.EncodeToString(sum[:])), "sha256 file %q", line)
	require.NotNil(t, b.ArtifactSize)
	require.Equal(t, int64(len(got)), *b.ArtifactSize)
}

// freePort returns a TCP port free on 127.0.0.1 right now.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
