package ghsim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// rawGet sends an authenticated GET to the simulator and returns the
// answer's status, headers and body (redirects not followed).
func (e *env) rawGet(t *testing.T, path string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(e.ctx, http.MethodGet, e.srv.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(body)
}

func (e *env) rawPost(t *testing.T, path string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, e.srv.URL+path, strings.NewReader("{}"))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func TestNeverStartedJobHasNoLogEver(t *testing.T) {
	t.Parallel()
	e := setup(t, func(o *Options) { o.Scenario = []Rule{{Outcome: OutcomeHangQueued}} })
	run := e.dispatch(t, contractInputs("build_never", "linux", "x64", "1.0.0"))
	require.Equal(t, http.StatusAccepted, e.rawPost(t, fmt.Sprintf("/repos/%s/actions/runs/%d/cancel", testRepo, run.WorkflowRunID)))
	e.advance(time.Second)
	info := e.sim.Runs(testRepo)[0]
	require.Equal(t, "cancelled", info.Conclusion)
	job := info.Jobs[0]
	require.Empty(t, job.RunnerName)
	for range 3 {
		e.advance(time.Hour)
		status, _, _ := e.rawGet(t, fmt.Sprintf("/repos/%s/actions/jobs/%d/logs", testRepo, job.ID))
		require.Equal(t, http.StatusNotFound, status, "a job that never ran has no log")
	}
}

func TestLogStatusAndAssetStream(t *testing.T) {
	t.Parallel()
	e := setup(t, func(o *Options) { o.Faults = Faults{LogStatus: http.StatusGone, AssetStream: true} })
	e.dispatch(t, contractInputs("build_gone", "linux", "x64", "1.0.0"))
	e.finish()
	info := e.sim.Runs(testRepo)[0]
	require.Equal(t, "success", info.Conclusion)
	status, _, body := e.rawGet(t, fmt.Sprintf("/repos/%s/actions/jobs/%d/logs", testRepo, info.Jobs[0].ID))
	require.Equal(t, http.StatusGone, status)
	require.Contains(t, body, "expired")

	status, header, body := e.rawGet(t, fmt.Sprintf("/repos/%s/releases/assets/%d", testRepo, info.Jobs[0].AssetID), "Accept", "application/octet-stream")
	require.Equal(t, http.StatusOK, status, "streamed, not redirected")
	require.Empty(t, header.Get("Location"))
	require.Equal(t, "application/octet-stream", header.Get("Content-Type"))
	require.Equal(t, string(AssetBytes(info.Jobs[0].AssetName)), body)
}

func TestSecondaryLimitWithoutRetryAfter(t *testing.T) {
	t.Parallel()
	e := setup(t, func(o *Options) { o.Faults = Faults{SecondaryNoRetry: 1} })
	status, header, body := e.rawGet(t, "/repos/"+testRepo)
	require.Equal(t, http.StatusForbidden, status)
	require.Empty(t, header.Get("Retry-After"))
	remaining, err := strconv.Atoi(header.Get("X-Ratelimit-Remaining"))
	require.NoError(t, err)
	require.Positive(t, remaining)
	reset, err := strconv.ParseInt(header.Get("X-Ratelimit-Reset"), 10, 64)
	require.NoError(t, err)
	require.InDelta(t, e.clock.Now().Add(time.Hour).Unix(), reset, 2)
	require.Contains(t, body, "secondary rate limit")
	require.Contains(t, body, "#about-secondary-rate-limits")
}

func TestHourlyContentBudget(t *testing.T) {
	t.Parallel()
	e := setup(t, func(o *Options) { o.Faults = Faults{HourlyLimit: 3} })
	cancel := fmt.Sprintf("/repos/%s/actions/runs/1/cancel", testRepo)
	for range 3 {
		require.Equal(t, http.StatusNotFound, e.rawPost(t, cancel))
		e.advance(2 * time.Minute) // well within the per-minute limit
	}
	require.Equal(t, http.StatusForbidden, e.rawPost(t, cancel), "the fourth write of the hour")
	status, _, _ := e.rawGet(t, "/repos/"+testRepo)
	require.Equal(t, http.StatusOK, status, "reads are not content-generating")
	e.advance(55 * time.Minute)
	require.Equal(t, http.StatusNotFound, e.rawPost(t, cancel), "the first write has left the hour")
}

// TestChaosAnswersAreDocumented: every injected answer is one GitHub
// documents for the endpoint, each kind shows up, and none takes effect.
func TestChaosAnswersAreDocumented(t *testing.T) {
	t.Parallel()
	e := setup(t, func(o *Options) { o.Faults = Faults{Chaos: 1, Seed: 3, HangFor: time.Millisecond} })
	seen := map[int]int{}
	garbage := 0
	for i := range 400 {
		req, err := http.NewRequestWithContext(e.ctx, http.MethodGet, fmt.Sprintf("%s/repos/%s/actions/runs/%d", e.srv.URL, testRepo, i+1), nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+testToken)
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			seen[0]++ // no answer: the connection was dropped
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen[resp.StatusCode]++
		if resp.StatusCode == http.StatusOK {
			garbage++
			require.NotContains(t, []string{"", "{}"}, string(body))
			require.Contains(t, string(body), `"in_pro`, "a 200 is a broken body, not a run")
		}
	}
	for _, status := range []int{0, http.StatusOK, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
		http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable} {
		require.Positive(t, seen[status], "status %d never injected: %v", status, seen)
	}
	for status := range seen {
		require.Contains(t, []int{0, 200, 401, 403, 404, 429, 500, 502, 503}, status)
	}
	require.Empty(t, e.sim.Runs(testRepo), "nothing happened")
	require.GreaterOrEqual(t, e.sim.Counters().Total.Injected, 400, "(Go's transport retries a GET whose reused connection was dropped)")
}

func TestTimeoutMinutesAndCancelOnGitHub(t *testing.T) {
	t.Parallel()
	e := setup(t, func(o *Options) {
		o.Scenario = []Rule{{Prerelease: "timeout", Outcome: OutcomeTimeoutMinutes}, {Outcome: OutcomeHangInProgress}}
	})
	e.dispatch(t, contractInputs("build_timeout", "linux", "x64", "1.0.0-timeout"))
	e.dispatch(t, contractInputs("build_ui", "linux", "x64", "1.0.0"))
	e.advance(e.sim.Timing().Queued + time.Millisecond)
	runs := e.sim.Runs(testRepo)
	require.True(t, e.sim.CancelOnGitHub(runs[1].ID))
	e.finish()
	runs = e.sim.Runs(testRepo)
	for _, r := range runs {
		require.Equal(t, "completed", r.Status)
		require.Equal(t, "cancelled", r.Conclusion, "GitHub reports a timeout-minutes cancel as cancelled")
		require.NotEmpty(t, r.Jobs[0].RunnerName, "the job ran")
	}
	require.False(t, e.sim.CancelOnGitHub(runs[0].ID), "already completed")
	status, _, _ := e.rawGet(t, fmt.Sprintf("/repos/%s/actions/jobs/%d/logs", testRepo, runs[0].Jobs[0].ID))
	require.Equal(t, http.StatusFound, status, "a job that ran has its log")
}

func TestParseNewFaultKnobs(t *testing.T) {
	t.Parallel()
	f, err := ParseFaults("chaos=0.2,hang=2s,secondarynoretry=0.1,hourly=500,logstatus=410,logshare=0.5,assetstream,readonly,starter=0.5")
	require.NoError(t, err)
	require.Equal(t, Faults{Chaos: 0.2, HangFor: 2 * time.Second, SecondaryNoRetry: 0.1, HourlyLimit: 500, LogStatus: 410, LogShare: 0.5, AssetStream: true, ReadOnly: true, UploadStarter: 0.5}, f)
	again, err := ParseFaults(f.String())
	require.NoError(t, err)
	require.Equal(t, f, again)
	_, err = ParseFaults("logstatus=302")
	require.ErrorContains(t, err, "must be an error status")
}

// TestReadOnlyToken: a token that may read but not write gets GitHub's 403
// on every write, without rate-limit headers, and nothing happens.
func TestReadOnlyToken(t *testing.T) {
	t.Parallel()
	e := setup(t, func(o *Options) { o.Faults = Faults{ReadOnly: true} })
	for _, path := range []string{
		fmt.Sprintf("/repos/%s/actions/workflows/deskforge.yml/dispatches", testRepo),
		fmt.Sprintf("/repos/%s/actions/runs/1/cancel", testRepo),
		fmt.Sprintf("/repos/%s/releases/1/assets?name=a.dmg", testRepo),
	} {
		req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, e.srv.URL+path, strings.NewReader(`{"ref":"main"}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode, path)
		require.Contains(t, string(body), "Resource not accessible by personal access token", path)
		require.Empty(t, resp.Header.Get("Retry-After"), "not a rate limit")
		require.NotEmpty(t, resp.Header.Get("X-Ratelimit-Remaining"), "the usual headers")
		require.NotEqual(t, "0", resp.Header.Get("X-Ratelimit-Remaining"), "not a rate limit")
	}
	status, _, _ := e.rawGet(t, "/repos/"+testRepo)
	require.Equal(t, http.StatusOK, status, "reads are allowed")
	require.Empty(t, e.sim.Runs(testRepo), "nothing was dispatched")
	require.Zero(t, e.sim.Counters().Total.RateLimited, "a refusal, not a rate limit")
	require.Equal(t, 3, e.sim.Counters().Total.Injected)
}

// TestDocumentedStatusesNameRoutes: every route the answer tables name is
// one the simulator serves (a typo would silently leave it out of Chaos),
// and Chaos draws from both tables.
func TestDocumentedStatusesNameRoutes(t *testing.T) {
	t.Parallel()
	served := map[string]bool{}
	for _, rt := range routes {
		served[rt.name] = true
	}
	for _, table := range []map[string][]int{openAPIStatuses, reportedStatuses} {
		for name, statuses := range table {
			require.True(t, served[name], "%s is not a route of the simulator", name)
			for _, st := range statuses {
				require.Contains(t, documentedStatuses[name], st, name)
			}
		}
	}
	require.Equal(t, []int{http.StatusNotFound, http.StatusUnprocessableEntity, http.StatusForbidden},
		documentedStatuses["POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches"],
		"the OpenAPI lists only 204 and 200 for dispatch: its refusals are the reported ones")
	require.Equal(t, []int{http.StatusConflict, http.StatusNotFound},
		documentedStatuses["POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel"])
}

// TestUploadStarterAsset: an upload failing upstream answers 502 and leaves
// an empty asset in state "starter" (GitHub's upload documentation); the
// name is then taken (422 already_exists) until the asset is deleted.
func TestUploadStarterAsset(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.dispatch(t, contractInputs("build_starter", "linux", "x64", "1.0.0"))
	e.finish()
	rel := e.sim.Releases(testRepo)[0]
	e.sim.SetFaults(Faults{UploadStarter: 1})

	upload := func() (int, string) {
		req, err := http.NewRequestWithContext(e.ctx, http.MethodPost,
			fmt.Sprintf("%s/repos/%s/releases/%d/assets?name=latest.json", e.srv.URL, testRepo, rel.ID), strings.NewReader(`{"version":"1.0.0"}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(body)
	}
	status, _ := upload()
	require.Equal(t, http.StatusBadGateway, status)
	status, _, body := e.rawGet(t, fmt.Sprintf("/repos/%s/releases/%d/assets", testRepo, rel.ID))
	require.Equal(t, http.StatusOK, status)
	var assets []struct {
		ID    int64  `json:"id"`
		Name  string `json:"name"`
		State string `json:"state"`
		Size  int64  `json:"size"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &assets))
	var starter int64
	for _, a := range assets {
		if a.Name == "latest.json" {
			require.Equal(t, "starter", a.State)
			require.Zero(t, a.Size)
			starter = a.ID
		}
	}
	require.NotZero(t, starter, "the failed upload left its asset: %s", body)

	e.sim.SetFaults(Faults{})
	status, body = upload()
	require.Equal(t, http.StatusUnprocessableEntity, status)
	require.Contains(t, body, "already_exists")

	del := func() int {
		req, err := http.NewRequestWithContext(e.ctx, http.MethodDelete, fmt.Sprintf("%s/repos/%s/releases/assets/%d", e.srv.URL, testRepo, starter), nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusNoContent, del())
	require.Equal(t, http.StatusNotFound, del(), "gone")
	status, _ = upload()
	require.Equal(t, http.StatusCreated, status)
}
