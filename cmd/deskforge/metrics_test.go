package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMetricsAfterABuild drives two builds through the demo's simulator,
// with an outbound webhook subscribed to their events, and scrapes
// DESKFORGE_METRICS_LISTEN: every family has the series the builds
// produced.
func TestMetricsAfterABuild(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	d := startDemoServer(t, map[string]string{"DESKFORGE_METRICS_LISTEN": addr}, fastTiming())
	var received atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		received.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, d.url+"/webhooks",
		strings.NewReader(`{"url": "`+receiver.URL+`", "events": ["build.succeeded", "build.failed"]}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+d.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	for _, version := range []string{"1.0.0", "1.0.0-fail"} {
		code, out, errOut := d.cli(t.Context(), "trigger", "--project", d.project, "--platform", "linux",
			"--arch", "arm64", "--version", version, "--wait", "--interval", "50ms")
		require.Contains(t, []int{0, 1}, code, "stdout: %s\nstderr: %s", out, errOut)
	}

	scrape := func() string {
		resp, err := http.Get("http://" + addr + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(body)
	}
	var text string
	require.Eventually(t, func() bool {
		text = scrape()
		return strings.Contains(text, `deskforge_build_duration_seconds_count{arch="arm64",platform="linux",status="failed"} 1`) &&
			strings.Contains(text, `deskforge_webhook_deliveries_total{result="delivered"} 2`)
	}, 30*time.Second, 100*time.Millisecond)
	require.EqualValues(t, 2, received.Load(), "one delivery per finished build")

	for _, want := range []string{
		// HTTP requests by route pattern, not by id.
		`deskforge_http_requests_total{method="POST",route="/projects/:id/builds",status="201"} 2`,
		`deskforge_http_request_duration_seconds_count{method="GET",route="/builds/:id"}`,
		// Builds by status, counted at scrape time.
		`deskforge_builds{status="success"} 1`,
		`deskforge_builds{status="failed"} 1`,
		// Queue time and duration, observed at the transitions.
		`deskforge_build_queue_seconds_count{arch="arm64",platform="linux"} 2`,
		`deskforge_build_duration_seconds_count{arch="arm64",platform="linux",status="success"} 1`,
		// GitHub requests by endpoint, and the rate limit left.
		`deskforge_github_requests_total{endpoint="/repos/{owner}/{repo}/actions/workflows/{name}/dispatches",method="POST",status="`,
		`deskforge_github_rate_limit_remaining{credential="token",resource="core"}`,
		// Dispatch to run found, both builds.
		`deskforge_build_dispatch_to_run_seconds_count 2`,
		// GitHub's webhooks: received by event and result, applied with a lag.
		`deskforge_github_webhooks_total{event="workflow_job",result="accepted"}`,
		`deskforge_github_webhook_apply_lag_seconds_count{event="workflow_job"}`,
		// River jobs by kind and state.
		`deskforge_river_jobs{kind="`,
		`deskforge_database_scrape_ok 1`,
		// One process on SQLite: nothing shared.
		`deskforge_replicas 1`,
	} {
		require.Contains(t, text, want)
	}
	require.NotRegexp(t, regexp.MustCompile(`route="/builds/build_`), text, "no id in a route label")
}
