package server_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/server"
	"github.com/deskforge/deskforge/workflows"
)

// A rate of one token per 1000 s: nothing refills during a test, however
// slow the machine.
const slowRate = 0.001

func rateLimitedAPI(t *testing.T, read, write server.Rate) *apiBundle {
	t.Helper()
	return startAPI(t, models.DialectSQLite, nil, workflows.Options{},
		server.Options{RateLimits: &server.RateLimits{Read: read, Write: write}})
}

func TestRateLimitBurstThen429(t *testing.T) {
	t.Parallel()
	b := rateLimitedAPI(t, server.Rate{PerSecond: slowRate, Burst: 3}, server.Rate{PerSecond: slowRate, Burst: 2})

	for i := range 3 {
		r := b.do(t, http.MethodGet, "/projects/"+b.projectA.ID, b.keyA, nil)
		require.Equal(t, http.StatusOK, r.status, "request %d: %s", i, r.body)
		require.Equal(t, "3", r.header.Get("RateLimit-Limit"))
		require.Equal(t, strconv.Itoa(2-i), r.header.Get("RateLimit-Remaining"))
		require.NotEmpty(t, r.header.Get("RateLimit-Reset"))
	}
	r := b.do(t, http.MethodGet, "/projects/"+b.projectA.ID, b.keyA, nil)
	require.Equal(t, http.StatusTooManyRequests, r.status, "%s", r.body)
	code, _ := r.errorOf(t)
	require.Equal(t, "rate_limited", code)
	require.Equal(t, "0", r.header.Get("RateLimit-Remaining"))
	require.Equal(t, "3", r.header.Get("RateLimit-Limit"))
	retry, err := strconv.Atoi(r.header.Get("Retry-After"))
	require.NoError(t, err)
	require.Greater(t, retry, 900, "one token takes 1000 s at this rate")
	reset, err := strconv.Atoi(r.header.Get("RateLimit-Reset"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, reset, retry)

	// Another key is unaffected, and so are the same key's writes.
	r = b.do(t, http.MethodGet, "/projects/"+b.projectB.ID, b.keyB, nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": "linux", "arch": "x64"})
}

func TestRateLimitTriggersSeparateFromReads(t *testing.T) {
	t.Parallel()
	b := rateLimitedAPI(t, server.Rate{PerSecond: slowRate, Burst: 5}, server.Rate{PerSecond: slowRate, Burst: 2})

	body := map[string]any{"platform": "linux", "arch": "x64"}
	b.createBuild(t, b.projectA.ID, b.keyA, body)
	b.createBuild(t, b.projectA.ID, b.keyA, body)
	r := b.do(t, http.MethodPost, "/projects/"+b.projectA.ID+"/builds", b.keyA, body)
	require.Equal(t, http.StatusTooManyRequests, r.status, "%s", r.body)
	code, _ := r.errorOf(t)
	require.Equal(t, "rate_limited", code)
	require.Equal(t, "2", r.header.Get("RateLimit-Limit"))
	require.NotEmpty(t, r.header.Get("Retry-After"))
	require.EqualValues(t, 2, b.count(t, "builds"), "the refused trigger created nothing")

	// Reads of the same key still pass, and another key still triggers.
	r = b.do(t, http.MethodGet, "/projects/"+b.projectA.ID+"/builds", b.keyA, nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.Equal(t, "5", r.header.Get("RateLimit-Limit"))
	b.createBuild(t, b.projectB.ID, b.keyB, map[string]any{"platform": "linux", "arch": "x64", "version": "1.0.0"})
}

func TestRateLimitUnauthenticatedPerAddress(t *testing.T) {
	t.Parallel()
	b := rateLimitedAPI(t, server.Rate{PerSecond: slowRate, Burst: 2}, server.Rate{PerSecond: slowRate, Burst: 1})
	for range 2 {
		require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/healthz", "", nil).status)
	}
	r := b.do(t, http.MethodGet, "/healthz", "", nil)
	require.Equal(t, http.StatusTooManyRequests, r.status)
	code, _ := r.errorOf(t)
	require.Equal(t, "rate_limited", code)
	// The address's bucket is not a key's: authenticated calls still pass.
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/projects", b.adminKey, nil).status)
}
