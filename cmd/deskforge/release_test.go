package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/client"
	"github.com/deskforge/deskforge/workflows/ghsim"
)

// releaseCLI runs `deskforge release SUB args…` against d.
func (d *demoServer) releaseCLI(ctx context.Context, sub string, args ...string) (int, string, string) {
	var stdout, stderr strings.Builder
	full := append([]string{"release", sub, "--url", d.url, "--api-key", d.key}, args...)
	code := run(ctx, full, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestReleaseCommands runs the release commands against one `serve --demo`
// with fast simulated runs.
func TestReleaseCommands(t *testing.T) {
	t.Parallel()
	d := startDemoServer(t, nil, fastTiming())
	for name, test := range map[string]func(*testing.T, *demoServer){
		"CreateWaitPublishesEveryTarget":  testReleaseCreateWaitPublishesEveryTarget,
		"FailedReleaseExitsOneAndRetries": testReleaseFailedExitsOneAndRetries,
		"CancelAndErrors":                 testReleaseCancelAndErrors,
	} {
		t.Run(name, func(t *testing.T) { test(t, d) })
	}
}

func testReleaseCreateWaitPublishesEveryTarget(t *testing.T, d *demoServer) {
	t.Parallel()
	code, stdout, stderr := d.releaseCLI(t.Context(), "create", "--version", "4.0.0", "--notes", "Big one", "--wait", "--interval", "100ms")
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
	id := regexp.MustCompile(`rel_[0-9a-z]{26}`).FindString(stdout)
	require.NotEmpty(t, id, stdout)
	require.Regexp(t, `(?m)^Release `+id+` v4\.0\.0 published: http`, stdout)
	require.Contains(t, stdout, "6/6 succeeded")
	for _, target := range []string{"mac/arm64", "mac/x64", "windows/x64", "windows/arm64", "linux/x64", "linux/arm64"} {
		require.Contains(t, stdout, target+" success")
	}

	code, stdout, stderr = d.releaseCLI(t.Context(), "get", "--json", id)
	require.Equal(t, 0, code, stderr)
	var rel client.Release
	require.NoError(t, json.Unmarshal([]byte(stdout), &rel))
	require.Equal(t, "success", rel.Status)
	require.NotNil(t, rel.PublishedAt)
	require.Equal(t, "Big one", rel.Notes)
	require.Len(t, rel.Builds, 6)

	code, stdout, _ = d.releaseCLI(t.Context(), "get", id)
	require.Equal(t, 0, code)
	require.Regexp(t, `(?m)^status\s+success$`, stdout)
	require.Regexp(t, `(?m)^build\s+linux/arm64  success  build_`, stdout)

	code, stdout, _ = d.releaseCLI(t.Context(), "list")
	require.Equal(t, 0, code)
	require.Regexp(t, `(?m)^`+id+`\s+v4\.0\.0\s+success\s+6\s`, stdout)

	// Again with the same version: published versions are immutable.
	code, _, stderr = d.releaseCLI(t.Context(), "create", "--version", "4.0.0")
	require.Equal(t, exitServer, code)
	require.Contains(t, stderr, "version_published")
}

func testReleaseFailedExitsOneAndRetries(t *testing.T, d *demoServer) {
	t.Parallel()
	code, stdout, stderr := d.releaseCLI(t.Context(), "create", "--version", "4.1.0-fail", "--target", "linux/x64,linux/arm64",
		"--wait", "--interval", "100ms", "--json")
	require.Equal(t, exitFailed, code, "stdout: %s\nstderr: %s", stdout, stderr)
	var rel client.Release
	require.NoError(t, json.Unmarshal([]byte(stdout), &rel), "--json --wait prints the final release only: %s", stdout)
	require.Equal(t, "failed", rel.Status)
	require.Nil(t, rel.PublishedAt)
	require.Equal(t, []string{"linux/x64", "linux/arm64"}, rel.Targets)

	code, stdout, stderr = d.releaseCLI(t.Context(), "retry", rel.ID)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, rel.ID+" building")
	// While the retried builds run, the release is not retryable.
	code, _, stderr = d.releaseCLI(t.Context(), "retry", rel.ID)
	if code != 0 { // unless they already failed again
		require.Equal(t, exitServer, code)
		require.Contains(t, stderr, "release_not_retryable")
	}
	require.Eventually(t, func() bool {
		_, stdout, _ := d.releaseCLI(t.Context(), "get", "--json", rel.ID)
		var r client.Release
		return json.Unmarshal([]byte(stdout), &r) == nil && r.Status == "failed"
	}, 2*time.Minute, 100*time.Millisecond, "the -fail version fails again")
	code, stdout, stderr = d.releaseCLI(t.Context(), "retry", "--wait", "--interval", "100ms", rel.ID)
	require.Equal(t, exitFailed, code, "the -fail version fails again: %s %s", stdout, stderr)
	require.Contains(t, stdout, rel.ID+" failed")
	require.Contains(t, stderr, "deskforge release retry --wait "+rel.ID)
}

func testReleaseCancelAndErrors(t *testing.T, d *demoServer) {
	t.Parallel()
	code, stdout, stderr := d.releaseCLI(t.Context(), "create", "--version", "4.2.0-hang", "--target", "mac/arm64")
	require.Equal(t, 0, code, stderr)
	id := strings.TrimSpace(stdout)
	require.Contains(t, stderr, "Release "+id+" queued: v4.2.0-hang for mac/arm64")
	code, stdout, stderr = d.releaseCLI(t.Context(), "cancel", id)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, id)

	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"UnknownTarget", []string{"create", "--target", "beos/x64"}, exitUsage, "--target: targets[0] must be one of"},
		{"NotesTwice", []string{"create", "--notes", "a", "--notes-file", "x"}, exitUsage, "not both"},
		{"NoReleaseID", []string{"get"}, exitUsage, "needs exactly one release id"},
		{"UnknownRelease", []string{"get", "rel_00000000000000000000000000"}, exitServer, "not_found"},
		{"BadVersion", []string{"create", "--version", "one"}, exitUsage, "--version:"},
		{"BadKey", []string{"list", "--api-key", "df_wrong"}, exitServer, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := d.releaseCLI(t.Context(), tt.args[0], tt.args[1:]...)
			require.Equal(t, tt.code, code, "stdout: %s\nstderr: %s", stdout, stderr)
			require.Contains(t, stderr, tt.want)
		})
	}
}

// TestServeDemoReleaseEndToEnd follows the demo banner's release steps: one
// curl creates a release of all six targets, it is published once, and the
// banner's URLs serve latest.json (six platforms, each with the .sig's
// content) and SHA256SUMS (matching the bytes downloaded through DeskForge).
func TestServeDemoReleaseEndToEnd(t *testing.T) {
	t.Parallel()
	d := startDemoServer(t, nil, fastTiming())
	banner := d.banner.String()
	require.Contains(t, banner, "/projects/"+d.project+"/releases")
	require.Contains(t, banner, "/updates/"+d.project+"/darwin/aarch64/1.0.0")

	ctx := t.Context()
	call := func(method, url, body string) (int, []byte) {
		req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+d.key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, data
	}
	code, body := call(http.MethodPost, d.url+"/projects/"+d.project+"/releases", `{"version": "1.1.0", "notes": "First release"}`)
	require.Equal(t, http.StatusCreated, code, "%s", body)
	var rel client.Release
	require.NoError(t, json.Unmarshal(body, &rel))
	require.Len(t, rel.Builds, 6)

	c, err := client.New(client.Options{BaseURL: d.url, APIKey: d.key})
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	final, err := c.WatchRelease(wctx, rel.ID, client.WatchOptions{Interval: 100 * time.Millisecond}, func(*client.Release) error { return nil })
	require.NoError(t, err)
	require.Equal(t, "success", final.Status)
	require.NotNil(t, final.PublishedAt)

	fetch := func(name string) []byte {
		url := regexp.MustCompile(`http://\S+/releases/download/v1\.1\.0/` + regexp.QuoteMeta(name)).FindString(banner)
		require.NotEmpty(t, url, "the banner shows where %s is", name)
		resp, err := http.Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, url)
		data, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return data
	}
	var manifest struct {
		Version   string
		Notes     string
		Platforms map[string]struct{ Signature, URL string }
	}
	require.NoError(t, json.Unmarshal(fetch("latest.json"), &manifest))
	require.Equal(t, "1.1.0", manifest.Version)
	require.Equal(t, "First release", manifest.Notes)
	require.Len(t, manifest.Platforms, 6)
	for key, p := range manifest.Platforms {
		name := p.URL[strings.LastIndex(p.URL, "/")+1:]
		require.Equal(t, string(ghsim.SignatureBytes(name)), p.Signature, key)
	}

	sums := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(fetch("SHA256SUMS"))), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		require.True(t, ok, line)
		sums[name] = sum
	}
	require.Len(t, sums, 6)
	for _, b := range final.Builds {
		code, data := call(http.MethodGet, d.url+"/builds/"+b.ID+"/download", "")
		require.Equal(t, http.StatusOK, code)
		got := sha256.Sum256(data)
		found := false
		for _, sum := range sums {
			found = found || sum == hex.EncodeToString(got[:])
		}
		require.True(t, found, "SHA256SUMS lists the bytes of %s/%s", b.Platform, b.Arch)
	}
}

func TestReleaseHelpNamesTheClientSettings(t *testing.T) {
	t.Parallel()
	for _, sub := range []string{"create", "list", "get", "cancel", "retry"} {
		var out strings.Builder
		require.NoError(t, runRelease(t.Context(), []string{sub, "--help"}, &out, io.Discard), sub)
		require.Contains(t, out.String(), "Usage: deskforge release "+sub)
		require.Contains(t, out.String(), "DESKFORGE_URL")
		require.Contains(t, out.String(), "DESKFORGE_API_KEY")
		require.Contains(t, out.String(), "--json")
	}
	var out, errOut strings.Builder
	require.Equal(t, exitUsage, run(t.Context(), []string{"release"}, &out, &errOut))
	require.Contains(t, errOut.String(), "create       start a release")
	require.Equal(t, 0, run(t.Context(), []string{"--help"}, &out, &errOut))
	require.Contains(t, out.String(), "release ")
}

// A release whose builds all succeeded but whose publication never comes
// (refused: a target uploaded no updater artifact) does not keep --wait
// waiting for ever.
func TestReleaseWaitGivesUpOnAPublicationThatNeverComes(t *testing.T) {
	t.Parallel()
	const body = `{"id":"rel_01abc","projectId":"proj_1","version":"2.0.0","targets":["linux/x64"],"notes":"","status":"success",` +
		`"createdAt":"2024-01-20T10:00:00Z","completedAt":"2024-01-20T10:01:00Z","publishedAt":null,"releaseUrl":null,` +
		`"builds":[{"id":"build_a","platform":"linux","arch":"x64","status":"success"}],"assets":[]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusCreated)
		}
		_, _ = io.WriteString(w, body)
	}))
	defer srv.Close()
	var stdout, stderr strings.Builder
	code := run(t.Context(), []string{"release", "create", "--url", srv.URL, "--api-key", "df_x", "--project", "proj_1",
		"--wait", "--interval", "5ms", "--publish-wait", "50ms"}, &stdout, &stderr)
	require.Equal(t, exitFailed, code, "stdout: %s\nstderr: %s", stdout.String(), stderr.String())
	require.Contains(t, stdout.String(), "rel_01abc success (publishing)  1/1 succeeded")
	require.Contains(t, stderr.String(), "every build succeeded but it is still not published after 50ms")
}
