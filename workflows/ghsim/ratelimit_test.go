package ghsim

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/stretchr/testify/require"
)

const (
	dispatchesEndpoint = "POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches"
	getRunEndpoint     = "GET /repos/{owner}/{repo}/actions/runs/{run_id}"
)

func TestRateLimitHeadersOnEveryAnswer(t *testing.T) {
	t.Parallel()
	e := setup(t)
	_, resp, err := e.gh.Repositories.Get(e.ctx, testOwner, testName)
	require.NoError(t, err)
	require.Equal(t, 5000, resp.Rate.Limit)
	require.Equal(t, 4999, resp.Rate.Remaining)
	require.Equal(t, "1", resp.Header.Get("X-Ratelimit-Used"))
	require.Equal(t, "core", resp.Header.Get("X-Ratelimit-Resource"))
	require.WithinDuration(t, e.clock.Now().Add(time.Hour), resp.Rate.Reset.Time, time.Second)

	_, resp, err = e.gh.Repositories.Get(e.ctx, testOwner, "missing")
	require.Error(t, err)
	require.Equal(t, 4998, resp.Rate.Remaining, "a 404 counts too")

	// GET /rate_limit does not count.
	limits, _, err := e.gh.RateLimit.Get(e.ctx)
	require.NoError(t, err)
	require.Equal(t, 4998, limits.Core.Remaining)
	require.Equal(t, 2, e.sim.Counters().Total.Counted)
}

func TestPrimaryRateLimit(t *testing.T) {
	t.Parallel()
	e := setup(t, func(o *Options) { o.PrimaryLimit = 3 })
	for range 3 {
		_, _, err := e.gh.Repositories.Get(e.ctx, testOwner, testName)
		require.NoError(t, err)
	}
	// go-github now refuses locally (the last answer said remaining 0), so
	// ask the simulator through a fresh client.
	_, _, err := e.gh.Repositories.Get(e.ctx, testOwner, testName)
	require.ErrorContains(t, err, "not making remote request")
	_, _, err = e.freshClient(testToken).Repositories.Get(e.ctx, testOwner, testName)
	var rl *github.RateLimitError
	require.ErrorAs(t, err, &rl)
	require.Equal(t, 0, rl.Rate.Remaining)
	require.Equal(t, 3, rl.Rate.Limit)
	require.Contains(t, rl.Message, "API rate limit exceeded")
	require.Equal(t, http.StatusForbidden, rl.Response.StatusCode)
	c := e.sim.Counters()
	require.Equal(t, 1, c.Endpoints["GET /repos/{owner}/{repo}"].RateLimited)
	require.Equal(t, 3, c.Total.Counted)

	// Another token has its own budget.
	other := e.freshClient("ghp_other")
	e.sim.mu.Lock()
	e.sim.tokens = nil // accept any token from here on
	e.sim.mu.Unlock()
	_, _, err = other.Repositories.Get(e.ctx, testOwner, testName)
	require.NoError(t, err)

	// The window resets an hour later.
	e.clock.Advance(time.Hour)
	_, resp, err := e.freshClient(testToken).Repositories.Get(e.ctx, testOwner, testName)
	require.NoError(t, err)
	require.Equal(t, 2, resp.Rate.Remaining)
}

func TestSecondaryRateLimitOnWrites(t *testing.T) {
	t.Parallel()
	e := setup(t, func(o *Options) { o.SecondaryLimit = 2 })
	in := contractInputs("build_01hx0secondary", "linux", "x64", "1.0.0")
	for range 2 {
		_, err := e.dispatchRaw(map[string]any{"ref": "main", "inputs": in}, nil)
		require.NoError(t, err)
		e.clock.Advance(10 * time.Second)
	}
	_, err := e.dispatchRaw(map[string]any{"ref": "main", "inputs": in}, nil)
	var abuse *github.AbuseRateLimitError
	require.ErrorAs(t, err, &abuse)
	require.NotNil(t, abuse.RetryAfter)
	require.Equal(t, 40*time.Second, *abuse.RetryAfter, "the oldest write leaves the minute window in 40 s")
	require.Contains(t, abuse.Message, "secondary rate limit")
	require.Len(t, e.sim.Runs(testRepo), 2)

	// Reads are not limited by the write budget (go-github itself now
	// holds every request back until Retry-After, hence a fresh client).
	_, _, err = e.freshClient(testToken).Repositories.Get(e.ctx, testOwner, testName)
	require.NoError(t, err)

	e.clock.Advance(41 * time.Second)
	_, err = e.freshClient(testToken).Actions.CreateWorkflowDispatchEventByFileName(e.ctx, testOwner, testName, "deskforge.yml", github.CreateWorkflowDispatchEventRequest{Ref: "main", Inputs: in})
	require.NoError(t, err)
}

func TestRateLimit429Mode(t *testing.T) {
	t.Parallel()
	e := setup(t, func(o *Options) { o.PrimaryLimit = 1; o.RateLimit429 = true })
	_, _, err := e.gh.Repositories.Get(e.ctx, testOwner, testName)
	require.NoError(t, err)
	_, resp, err := e.freshClient(testToken).Repositories.Get(e.ctx, testOwner, testName)
	var ghErr *github.ErrorResponse
	require.ErrorAs(t, err, &ghErr, "go-github v62 does not classify 429: the caller must")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, "0", resp.Header.Get("X-Ratelimit-Remaining"))
	reset, err := strconv.ParseInt(resp.Header.Get("X-Ratelimit-Reset"), 10, 64)
	require.NoError(t, err)
	require.Greater(t, reset, e.clock.Now().Unix())
}

func TestConditionalRequestsAreNotCounted(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatch(t, contractInputs("build_01hx0etag", "linux", "x64", "1.0.0"))
	get := func(etag string) *github.Response {
		req, err := e.gh.NewRequest(http.MethodGet, "repos/"+testRepo+"/actions/runs/"+strconv.FormatInt(d.WorkflowRunID, 10), nil)
		require.NoError(t, err)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, _ := e.gh.Do(e.ctx, req, nil)
		return resp
	}
	first := get("")
	require.Equal(t, http.StatusOK, first.StatusCode)
	etag := first.Header.Get("Etag")
	require.NotEmpty(t, etag)
	used := first.Header.Get("X-Ratelimit-Used")

	second := get(etag)
	require.Equal(t, http.StatusNotModified, second.StatusCode)
	require.Equal(t, used, second.Header.Get("X-Ratelimit-Used"), "304 does not count")
	require.Equal(t, etag, second.Header.Get("Etag"))

	// Once the run changes, the tag no longer matches.
	e.advance(e.sim.Timing().Queued)
	third := get(etag)
	require.Equal(t, http.StatusOK, third.StatusCode)
	require.NotEqual(t, etag, third.Header.Get("Etag"))

	c := e.sim.Counters().Endpoints[getRunEndpoint]
	require.Equal(t, EndpointCounter{Requests: 3, Counted: 2, NotModified: 1}, c)
	require.Equal(t, 1, e.sim.Counters().Endpoints[dispatchesEndpoint].Counted)
	e.sim.ResetCounters()
	require.Zero(t, e.sim.Counters().Total.Requests)
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	e := setup(t)
	tests := []struct {
		name, header, message string
	}{
		{"no header", "", "Requires authentication"},
		{"unknown token", "Bearer nope", "Bad credentials"},
		{"empty token", "token ", "Requires authentication"},
		{"basic auth", "Basic Zm9vOmJhcg==", "Requires authentication"},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/repos/"+testRepo, nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		err = github.CheckResponse(resp)
		resp.Body.Close()
		var ghErr *github.ErrorResponse
		require.ErrorAs(t, err, &ghErr, tc.name)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, tc.name)
		require.Equal(t, tc.message, ghErr.Message, tc.name)
	}
	// "token" and "Bearer" schemes both work; the GHES path prefix too.
	for _, h := range []string{"token " + testToken, "Bearer " + testToken} {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/api/v3/repos/"+testRepo, nil)
		req.Header.Set("Authorization", h)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, h)
	}
	require.Equal(t, 4, e.sim.Counters().Endpoints["GET /repos/{owner}/{repo}"].Unauthorized)
}

func TestLinkHeadersUseTheBaseURL(t *testing.T) {
	t.Parallel()
	e := setup(t)
	for i := range 3 {
		e.dispatch(t, contractInputs("build_01hx0link"+strconv.Itoa(i), "linux", "x64", "1.0.0"))
	}
	_, resp, err := e.gh.Actions.ListRepositoryWorkflowRuns(e.ctx, testOwner, testName, &github.ListWorkflowRunsOptions{ListOptions: github.ListOptions{PerPage: 1}})
	require.NoError(t, err)
	require.Equal(t, 2, resp.NextPage)
	require.Equal(t, 3, resp.LastPage)
	link := resp.Header.Get("Link")
	u, err := url.Parse(link[1 : len(e.srv.URL)+1])
	require.NoError(t, err)
	require.Equal(t, e.srv.URL, u.String())
}

func (e *env) freshClient(token string) *github.Client {
	c := github.NewClient(nil).WithAuthToken(token)
	c.BaseURL = e.gh.BaseURL
	return c
}
