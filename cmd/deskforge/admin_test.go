package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// runCommand runs one deskforge command line and returns its exit code,
// stdout and stderr.
func runCommand(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	code := run(t.Context(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestAdminCommandsBootstrapAKeyAndProject(t *testing.T) {
	t.Parallel()
	db := "sqlite://" + filepath.Join(t.TempDir(), "admin.db")

	code, out, errOut := runCommand(t, "migrate", "--database-url", db)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "up to date")
	code, _, errOut = runCommand(t, "migrate", "--database-url", db)
	require.Equal(t, 0, code, "migrating twice changes nothing: %s", errOut)

	code, out, errOut = runCommand(t, "apikey", "create", "--admin", "--name", "ops", "--database-url", db)
	require.Equal(t, 0, code, errOut)
	adminKey := strings.TrimSpace(out)
	require.Regexp(t, `^df_[a-z0-9]+$`, adminKey, "stdout holds only the key")
	require.Contains(t, errOut, "only time the key is shown")

	code, out, errOut = runCommand(t, "project", "create", "--database-url", db, "--name", "My App",
		"--platforms", "mac, linux", "--url", "https://example.com", "--version", "1.0.0", "--tray", "--window-width", "1024")
	require.Equal(t, 0, code, errOut)
	var project map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &project))
	projectID := project["id"].(string)
	require.Equal(t, []any{"mac", "linux"}, project["platforms"])
	require.Equal(t, true, project["features"].(map[string]any)["tray"])
	require.EqualValues(t, 1024, project["window"].(map[string]any)["width"])

	code, _, errOut = runCommand(t, "project", "create", "--database-url", db, "--name", "Bad", "--platforms", "ios", "--url", "https://e.com")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "--platforms: platforms must be a subset of mac, windows, linux")
	code, _, errOut = runCommand(t, "project", "create", "--database-url", db, "--name", "Bad", "--platforms", "mac", "--window-height", "50", "--url", "https://e.com")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "--window-height")

	code, out, _ = runCommand(t, "project", "list", "--database-url", db)
	require.Equal(t, 0, code)
	require.Contains(t, out, projectID)
	require.Contains(t, out, "https://example.com")
	code, out, _ = runCommand(t, "project", "show", "--database-url", db, projectID)
	require.Equal(t, 0, code)
	require.Contains(t, out, `"name": "My App"`)
	code, _, errOut = runCommand(t, "project", "show", "--database-url", db, "proj_missing")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "not found")

	code, out, errOut = runCommand(t, "apikey", "create", "--project", projectID, "--database-url", db)
	require.Equal(t, 0, code, errOut)
	projectKey := strings.TrimSpace(out)
	require.Contains(t, errOut, "project key for "+projectID)
	code, _, errOut = runCommand(t, "apikey", "create", "--project", "proj_missing", "--database-url", db)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "--project: projectId must be a project id")
	missing := "proj_" + strings.Repeat("0", 26)
	code, _, errOut = runCommand(t, "apikey", "create", "--project", missing, "--database-url", db)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "--project: project "+missing+" does not exist")

	code, out, _ = runCommand(t, "apikey", "list", "--database-url", db)
	require.Equal(t, 0, code)
	require.Contains(t, out, "ops")
	require.Contains(t, out, projectKey[:9])
	require.NotContains(t, out, adminKey, "keys are never listed")
	var keyID string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, projectID) {
			keyID = strings.Fields(line)[0]
		}
	}
	require.True(t, strings.HasPrefix(keyID, "key_"), out)
	code, out, _ = runCommand(t, "apikey", "revoke", "--database-url", db, keyID)
	require.Equal(t, 0, code)
	require.Contains(t, out, "Revoked "+keyID)
	code, out, _ = runCommand(t, "apikey", "list", "--project", projectID, "--database-url", db)
	require.Equal(t, 0, code)
	require.Regexp(t, `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s*$`, strings.TrimSpace(out), "revoked column set")

	// --json: one key a line, in the API's shape, never the key itself.
	code, out, _ = runCommand(t, "apikey", "list", "--json", "--database-url", db)
	require.Equal(t, 0, code)
	require.NotContains(t, out, adminKey)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2)
	var keys []map[string]any
	for _, line := range lines {
		var k map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &k))
		keys = append(keys, k)
	}
	require.Equal(t, keyID, keys[0]["id"], "newest first")
	require.Equal(t, projectID, keys[0]["projectId"])
	require.NotNil(t, keys[0]["revokedAt"])
	require.Equal(t, "ops", keys[1]["name"])
	require.Equal(t, "admin", keys[1]["role"])
	require.NotContains(t, keys[1], "key")

	// A bool flag with its value after a space is refused, not read as true
	// plus a stray argument; so are stray arguments.
	code, _, errOut = runCommand(t, "project", "create", "--database-url", db, "--name", "Fixed", "--platforms", "mac",
		"--url", "https://e.com", "--resizable", "false")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--resizable is a switch: write --resizable=false")
	code, out, errOut = runCommand(t, "project", "create", "--database-url", db, "--name", "Fixed", "--platforms", "mac",
		"--url", "https://e.com", "--resizable=false")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"resizable": false`)
	code, _, errOut = runCommand(t, "project", "list", "--database-url", db, "everything")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `project list takes no arguments, got ["everything"]`)
	// Flags may follow an argument.
	code, out, _ = runCommand(t, "project", "show", projectID, "--database-url", db)
	require.Equal(t, 0, code)
	require.Contains(t, out, projectID)
}

func TestUnwritableSQLiteDirectorySaysWhatToChange(t *testing.T) {
	t.Parallel()
	dir := "/sys" // not writable, even by root
	if os.Geteuid() != 0 {
		dir = t.TempDir()
		require.NoError(t, os.Chmod(dir, 0o555))
	}
	code, _, errOut := runCommand(t, "migrate", "--database-url", "sqlite://"+dir+"/deskforge.db")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "directory "+dir+" is not writable")
	require.Contains(t, errOut, "Set DESKFORGE_DATABASE_URL (or --database-url)")
	require.NotContains(t, errOut, "out of memory")
}

func TestVersionOf(t *testing.T) {
	t.Parallel()
	vcs := func(kv ...string) []debug.BuildSetting {
		var out []debug.BuildSetting
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	tests := []struct {
		name   string
		ldflag string
		info   *debug.BuildInfo
		want   string
	}{
		{"LinkFlag", "1.2.3", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "1.2.3"},
		{"ModuleVersion", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261130160000-0123456789ab+dirty"}}, "v0.0.0-20261130160000-0123456789ab+dirty"},
		{"Commit", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
			Settings: vcs("vcs.revision", "0123456789abcdef0123", "vcs.time", "2026-11-30T16:00:00Z", "vcs.modified", "true")},
			"devel 0123456789ab 2026-11-30T16:00:00Z (modified)"},
		{"Nothing", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, `devel (built without version information: build from a git checkout, or with -ldflags "-X main.version=1.2.3")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, versionOf(tt.ldflag, tt.info))
		})
	}
}

func TestAdminCommandUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"project"}, {"project", "rename"}, {"project", "show"}, {"apikey"}, {"apikey", "create"},
		{"apikey", "create", "--admin", "--project", "proj_x"}, {"apikey", "revoke"}, {"migrate", "--nope"},
		{"serve", "extra-argument"},
	} {
		code, _, errOut := runCommand(t, args...)
		require.Equal(t, 2, code, args)
		require.Contains(t, errOut, "Usage: deskforge", args)
	}
}

func TestVersionAndHealthcheck(t *testing.T) {
	t.Parallel()
	code, out, _ := runCommand(t, "version")
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(out, "deskforge "), out)

	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"status":"ok"}`))
	}))
	defer healthy.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(healthy.URL, "http://"))
	code, out, errOut := runCommand(t, "version", "--healthcheck", "--listen", ":"+port)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "healthy")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	code, _, errOut = runCommand(t, "version", "--healthcheck", "--listen", "127.0.0.1:"+itoa(closedPort))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "healthcheck")
}

func TestServeRunsAndShutsDownGracefully(t *testing.T) {
	t.Parallel()
	cfg, err := loadServeConfig(t, map[string]string{
		"DESKFORGE_GITHUB_TOKEN":       "ghp_test",
		"DESKFORGE_GITHUB_API_URL":     "http://127.0.0.1:1/", // never reached: no build is queued
		"DESKFORGE_LISTEN":             "127.0.0.1:0",
		"DESKFORGE_DATABASE_URL":       "sqlite://" + filepath.Join(t.TempDir(), "serve.db"),
		"DESKFORGE_LOG_FORMAT":         "json",
		"DESKFORGE_PUBLIC_URL":         "http://deskforge.test",
		"DESKFORGE_BUILDER_REPO":       "acme/builder",
		"DESKFORGE_DOWNLOAD_MODE":      "redirect",
		"DESKFORGE_MAX_BUILD_DURATION": "1h",
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addrs := make(chan net.Addr, 1)
	var logs strings.Builder
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, &strings.Builder{}, &lockedBuilder{b: &logs}, func(a net.Addr) { addrs <- a })
	}()

	var addr net.Addr
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("serve returned early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start listening")
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(localURL(addr) + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
	resp, err := http.Get(localURL(addr) + "/projects")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not shut down")
	}
	require.Contains(t, logs.String(), "shutting down")
	require.NotContains(t, logs.String(), "ghp_test", "the token is never logged")
}

// lockedBuilder is a strings.Builder safe for concurrent writers.
type lockedBuilder struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func itoa(n int) string { return strconv.Itoa(n) }
