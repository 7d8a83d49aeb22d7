package ghsim

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// The answers GitHub gives that a happy path never shows, as the simulator
// injects them (Faults.Chaos, SecondaryNoRetry, HourlyLimit, LogStatus,
// AssetStream, ReadOnly). Each was checked against GitHub's OpenAPI
// description (github/rest-api-description,
// descriptions/api.github.com/api.github.com.2022-11-28.yaml, read
// 2026-11-30), its REST documentation on rate limits and public bug
// reports; workflows/github/ANSWERS.md has the table of what the engine
// does with each.
//
//   - Every endpoint can answer 401 (bad credentials), 403 (no permission,
//     or a rate limit: primary with x-ratelimit-remaining 0, secondary
//     with or without retry-after), 429 (a rate limit), 5xx, and can time
//     out at GitHub's edge. The OpenAPI description lists none of these
//     for most operations.
//   - Secondary rate limits: "If the retry-after response header is
//     present, you should not retry your request until after that many
//     seconds has elapsed. … Otherwise, you should wait for at least one
//     minute before retrying." Content-generating requests: "no more than
//     80 … per minute and no more than 500 … per hour".
//   - openAPIStatuses are the error statuses the OpenAPI operations list;
//     reportedStatuses those GitHub gives although its operation does not
//     list them (prose of the same documentation, public bug reports).
//   - Download job logs: 302 to a URL that "expires after 1 minute"; a job
//     that never ran has no log (404), and expired logs answer 410.
//   - Get a release asset with Accept: application/octet-stream: "API
//     clients should handle both a 200 or 302 response".
//   - Upload a release asset: 422 "if you upload an asset with the same
//     filename as another uploaded asset"; "When an upstream failure
//     occurs, you will receive a 502 Bad Gateway status. This may leave an
//     empty asset with a state of starter."

// openAPIStatuses are the non-success statuses the OpenAPI description
// lists for the operations the engine calls. The dispatch, run, jobs, job
// log and workflow-runs operations list only their success (204/200, 200,
// 200, 302, 200).
var openAPIStatuses = map[string][]int{
	"GET /repos/{owner}/{repo}":                               {http.StatusMovedPermanently, http.StatusForbidden, http.StatusNotFound},
	"POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel": {http.StatusConflict},
	"GET /repos/{owner}/{repo}/releases":                      {http.StatusNotFound},
	"GET /repos/{owner}/{repo}/releases/assets/{asset_id}":    {http.StatusNotFound},
	"POST /repos/{owner}/{repo}/releases/{release_id}/assets": {http.StatusUnprocessableEntity},
	"PATCH /repos/{owner}/{repo}/releases/{release_id}":       {http.StatusNotFound},
	"DELETE /repos/{owner}/{repo}/releases/assets/{asset_id}": {http.StatusNotFound},
}

// reportedStatuses are the statuses GitHub answers although the operation's
// OpenAPI entry does not list them:
//
//   - dispatch: 404 for an unknown repository or workflow file (or one the
//     token cannot see); 422 "Workflow does not have 'workflow_dispatch'
//     trigger", "Unexpected inputs provided: [...]", "Required input '…'
//     not provided", "No ref found for: …"; 403 "Resource not accessible
//     by integration" for a token without actions:write
//     (benc-uk/workflow-dispatch#46, #19, cli/cli discussions,
//     actions/github-script#298).
//   - runs, run, jobs: 404 for a deleted run or unknown workflow.
//   - job log: 404 while the job runs and forever for a job that never got
//     a runner; 410 once the log expired (makoni/actioneer-gtk#14); 403.
//   - cancel: 404 for a deleted run ("Cannot cancel a workflow run that is
//     completed." is the listed 409).
//   - upload: 502 (the upload documentation's prose).
//   - list assets: 404 for a deleted release.
var reportedStatuses = map[string][]int{
	"POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches": {http.StatusNotFound, http.StatusUnprocessableEntity, http.StatusForbidden},
	"GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs":        {http.StatusNotFound},
	"GET /repos/{owner}/{repo}/actions/runs/{run_id}":                       {http.StatusNotFound},
	"POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel":               {http.StatusNotFound},
	"GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs":                  {http.StatusNotFound},
	"GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs":                  {http.StatusNotFound, http.StatusGone, http.StatusForbidden},
	"GET /repos/{owner}/{repo}/releases/{release_id}/assets":                {http.StatusNotFound},
	"POST /repos/{owner}/{repo}/releases/{release_id}/assets":               {http.StatusBadGateway},
}

// documentedStatuses are, per route, the OpenAPI's statuses followed by the
// reported ones: the statuses Chaos draws from.
var documentedStatuses = func() map[string][]int {
	out := map[string][]int{}
	for _, m := range []map[string][]int{openAPIStatuses, reportedStatuses} {
		for route, statuses := range m {
			for _, st := range statuses {
				if !slices.Contains(out[route], st) {
					out[route] = append(out[route], st)
				}
			}
		}
	}
	return out
}()

// readOnlyMessage is GitHub's answer to a write by a fine-grained token
// without write permission on the repository (an App installation gets
// "Resource not accessible by integration").
const readOnlyMessage = "Resource not accessible by personal access token"

// Kinds of chaos answers besides the documented statuses.
const (
	chaosUnauthorized = iota
	chaosPrimaryLimit
	chaosSecondaryNoRetry
	chaosTooMany
	chaosServerError
	chaosBadGateway
	chaosUnavailable
	chaosGarbage
	chaosHang
	chaosDocumented // one of documentedStatuses, chosen by a further draw
	chaosKinds
)

// injected is an answer the simulator gives instead of the real one.
type injected struct {
	status int
	header http.Header
	body   []byte
	hang   bool // no answer: the connection is dropped after Faults.HangFor
	// limited: the answer is a rate limit (counted as RateLimited).
	limited bool
}

// injectAnswer decides, under s.mu, whether request seq gets an injected
// answer instead of the real one (which then has no effect), and which.
func (s *Sim) injectAnswer(rt *route, r *http.Request, seq uint64, f Faults, lim *tokenLimits, now time.Time) *injected {
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	switch {
	case write && f.ReadOnly:
		// With the usual rate-limit headers (remaining not 0), as on every
		// answer: a client must not take this 403 for a rate limit.
		a := jsonAnswer(http.StatusForbidden, readOnlyMessage, rt.doc)
		s.setRateHeaders(a.header, lim)
		return a
	case write && f.HourlyLimit > 0 && len(lim.hourWrites) >= f.HourlyLimit:
		return s.secondaryLimitAnswer(lim, now)
	case f.hit("secondarynoretry", seq, f.SecondaryNoRetry):
		return s.secondaryLimitAnswer(lim, now)
	case !f.hit("chaos", seq, f.Chaos):
		return nil
	}
	kind := int(f.chance("chaos-kind", seq) * chaosKinds)
	switch kind {
	case chaosUnauthorized:
		return jsonAnswer(http.StatusUnauthorized, "Bad credentials")
	case chaosPrimaryLimit:
		// A primary limit whose window ends shortly (GitHub's ends with the
		// hour; waiting it out would only slow the test).
		a := jsonAnswer(http.StatusForbidden, "API rate limit exceeded for user ID 1.")
		a.header.Set("X-Ratelimit-Remaining", "0")
		a.header.Set("X-Ratelimit-Reset", strconv.FormatInt(now.Add(2*time.Second).Unix(), 10))
		a.limited = true
		return a
	case chaosSecondaryNoRetry:
		return s.secondaryLimitAnswer(lim, now)
	case chaosTooMany:
		a := jsonAnswer(http.StatusTooManyRequests, "Too Many Requests")
		a.header.Set("Retry-After", "1")
		a.limited = true
		return a
	case chaosServerError:
		return jsonAnswer(http.StatusInternalServerError, "Server Error")
	case chaosBadGateway:
		return jsonAnswer(http.StatusBadGateway, "Server Error")
	case chaosUnavailable:
		return jsonAnswer(http.StatusServiceUnavailable, "Service Unavailable")
	case chaosGarbage:
		return &injected{status: http.StatusOK, header: http.Header{"Content-Type": {"application/json; charset=utf-8"}},
			body: []byte(`{"id": 1, "status": "in_pro` + "\x00\xff<html>")}
	case chaosHang:
		return &injected{hang: true}
	}
	statuses := documentedStatuses[rt.name]
	if len(statuses) == 0 {
		return jsonAnswer(http.StatusNotFound, "Not Found")
	}
	status := statuses[int(f.chance("chaos-status", seq)*float64(len(statuses)))]
	a := jsonAnswer(status, http.StatusText(status))
	if status == http.StatusMovedPermanently || status == http.StatusFound {
		// A renamed repository: the answer points at the same place, where
		// the real answer is given.
		a.header.Set("Location", s.base+r.URL.Path+"?moved=1")
	}
	return a
}

// secondaryLimitAnswer is GitHub's secondary-limit answer without Retry-After:
// x-ratelimit-remaining is not 0 and x-ratelimit-reset is the end of the
// primary window (up to an hour away).
func (s *Sim) secondaryLimitAnswer(lim *tokenLimits, now time.Time) *injected {
	a := jsonAnswer(s.rateLimitStatus(), "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
		docBase+"/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits")
	a.header.Set("X-Ratelimit-Limit", strconv.Itoa(s.primaryLimit()))
	a.header.Set("X-Ratelimit-Remaining", strconv.Itoa(max(1, s.primaryLimit()-lim.used)))
	a.header.Set("X-Ratelimit-Reset", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))
	a.limited = true
	return a
}

// jsonAnswer is GitHub's error body with status, message and, optionally,
// its documentation URL.
func jsonAnswer(status int, msg string, doc ...string) *injected {
	u := docBase
	if len(doc) > 0 {
		u = doc[0]
	}
	return &injected{status: status, header: http.Header{"Content-Type": {"application/json; charset=utf-8"}},
		body: []byte(fmt.Sprintf(`{"message":%q,"documentation_url":%q,"status":"%d"}`, msg, u, status))}
}

// write sends the injected answer, or, for a hang, holds the request for
// hangFor and drops the connection without an answer (as GitHub's edge
// does when a request times out).
func (a *injected) write(w http.ResponseWriter, r *http.Request, hangFor time.Duration) {
	if !a.hang {
		for k, v := range a.header {
			w.Header()[k] = v
		}
		writeRaw(w, a.status, a.body)
		return
	}
	t := time.NewTimer(hangFor)
	defer t.Stop()
	select {
	case <-r.Context().Done():
	case <-t.C:
	}
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}
