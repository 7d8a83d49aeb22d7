package main

import (
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMetricsAfterABuild drives two builds through the demo's simulator
// and scrapes DESKFORGE_METRICS_LISTEN: every family has the series the
// builds produced.
func TestMetricsAfterABuild(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	d := startDemoServer(t, map[string]string{"DESKFORGE_METRICS_LISTEN": addr}, fastTiming())

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
		return strings.Contains(text, `deskforge_build_duration_seconds_count{arch="arm64",platform="linux",status="failed"} 1`)
	}, 30*time.Second, 100*time.Millisecond)

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
		`deskforge_github_rate_limit_remaining{resource="core"}`,
		// River jobs by kind and state.
		`deskforge_river_jobs{kind="`,
		`deskforge_database_scrape_ok 1`,
	} {
		require.Contains(t, text, want)
	}
	require.NotRegexp(t, regexp.MustCompile(`route="/builds/build_`), text, "no id in a route label")
}
