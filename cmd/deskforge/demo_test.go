package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/workflows/ghsim"
)

// TestServeDemoBuildsEndToEnd runs `serve --demo` as a user would: the
// banner's key and project trigger a build that goes queued → building →
// success on the simulated GitHub (about 20 s of real time), with logs and a
// download. Every log line says that GitHub is simulated.
func TestServeDemoBuildsEndToEnd(t *testing.T) {
	t.Parallel()
	d := startDemoServer(t, nil, ghsim.Timing{})
	ctx, base, key, project := t.Context(), d.url, d.key, d.project
	require.Contains(t, d.banner.String(), "GitHub is SIMULATED")

	call := func(method, path, body string) (int, []byte) {
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, data
	}

	// A local receiver subscribed as the banner says verifies every delivery
	// with the Standard Webhooks library.
	var (
		hookMu    sync.Mutex
		hookTypes []string
		hookErrs  []error
		secret    string
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		hookMu.Lock()
		defer hookMu.Unlock()
		wh, err := standardwebhooks.NewWebhook(secret)
		if err == nil {
			err = wh.Verify(data, r.Header)
		}
		var p struct{ Type string }
		if err == nil {
			err = json.Unmarshal(data, &p)
		}
		hookErrs = append(hookErrs, err)
		hookTypes = append(hookTypes, p.Type)
	}))
	defer receiver.Close()
	hookMu.Lock()
	code, body := call(http.MethodPost, "/webhooks", `{"url":"`+receiver.URL+`/hook","events":["build.*"]}`)
	require.Equal(t, http.StatusCreated, code, "%s", body)
	var hook struct{ Secret string }
	require.NoError(t, json.Unmarshal(body, &hook))
	secret = hook.Secret
	hookMu.Unlock()

	code, body = call(http.MethodPost, "/projects/"+project+"/builds", `{"platform":"linux","arch":"x64","version":"1.0.0"}`)
	require.Equal(t, http.StatusCreated, code, "%s", body)
	var created struct{ ID, Status string }
	require.NoError(t, json.Unmarshal(body, &created))
	require.Equal(t, "queued", created.Status)

	seen := map[string]bool{}
	var build struct {
		Status       string
		ArtifactURL  *string
		ArtifactSize *int64
	}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		code, body = call(http.MethodGet, "/builds/"+created.ID, "")
		require.Equal(t, http.StatusOK, code, "%s", body)
		require.NoError(t, json.Unmarshal(body, &build))
		seen[build.Status] = true
		if build.Status != "queued" && build.Status != "building" {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	require.Equal(t, "success", build.Status, "%s", body)
	require.True(t, seen["building"], "the build was seen building on its way to success")
	require.NotNil(t, build.ArtifactURL)

	require.Eventually(t, func() bool {
		hookMu.Lock()
		defer hookMu.Unlock()
		return len(hookTypes) >= 3
	}, 60*time.Second, 100*time.Millisecond, "three deliveries reach the receiver")
	hookMu.Lock()
	require.ElementsMatch(t, []string{"build.queued", "build.started", "build.succeeded"}, hookTypes)
	for _, err := range hookErrs {
		require.NoError(t, err, "every delivery verifies")
	}
	hookMu.Unlock()

	code, body = call(http.MethodGet, "/builds/"+created.ID+"/logs?format=text", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), "Dispatched to workflow run")
	require.Contains(t, string(body), "[success] Build completed successfully")

	code, body = call(http.MethodGet, "/builds/"+created.ID+"/download", "")
	require.Equal(t, http.StatusOK, code, "the redirect to the simulated GitHub is followed")
	require.Equal(t, *build.ArtifactSize, int64(len(body)))
	asset := filepath.Base(*build.ArtifactURL)
	require.Equal(t, ghsim.AssetBytes(asset), body)

	require.NoError(t, d.stop())
	for _, line := range strings.Split(strings.TrimSpace(d.logs.String()), "\n") {
		require.Contains(t, line, `"github":"SIMULATED"`, "every log line says GitHub is simulated: %s", line)
	}
}
