package ghsim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// params are the {name} segments of a matched route.
type params map[string]string

func (p params) int64(name string) (int64, bool) {
	v, err := strconv.ParseInt(p[name], 10, 64)
	return v, err == nil && v > 0
}

// call is one API request as a handler sees it, under s.mu.
type call struct {
	r     *http.Request
	p     params
	now   time.Time
	token string
	lim   *tokenLimits
	seq   uint64 // the request's sequence number, for fault decisions
}

// response is what an API handler returns; the middleware encodes it, adds
// the ETag and rate-limit headers and answers 304 when the client's tag
// matches.
type response struct {
	status int
	body   any // JSON-encoded when not nil
	header http.Header
	raw    []byte // sent as is (a streamed asset) when body is nil
	// snapshot says that body shares nothing with the simulator's state,
	// so it is encoded after s.mu is released (run listings: encoding a
	// page of runs is the costliest part of the busiest request).
	snapshot bool
}

type route struct {
	method string
	segs   []string
	name   string // "GET /repos/{owner}/{repo}/actions/runs/{run_id}"
	doc    string
	// api handlers run under s.mu behind auth and rate limits.
	api func(s *Sim, c *call) *response
	// raw handlers serve signed and web URLs: no auth, no rate limit, no
	// lock held.
	raw func(s *Sim, w http.ResponseWriter, r *http.Request, p params)
}

const docBase = "https://docs.github.com/rest"

var routes = buildRoutes()

func buildRoutes() []*route {
	var rs []*route
	api := func(method, pattern, doc string, fn func(s *Sim, c *call) *response) {
		rs = append(rs, &route{method: method, segs: split(pattern), name: method + " " + pattern, doc: docBase + doc, api: fn})
	}
	raw := func(pattern string, fn func(s *Sim, w http.ResponseWriter, r *http.Request, p params)) {
		rs = append(rs, &route{method: http.MethodGet, segs: split(pattern), name: "GET " + pattern, raw: fn})
	}
	api("GET", "/rate_limit", "/rate-limit/rate-limit#get-rate-limit-status-for-the-authenticated-user", (*Sim).getRateLimit)
	api("GET", "/repos/{owner}/{repo}", "/repos/repos#get-a-repository", (*Sim).getRepo)
	api("GET", "/repos/{owner}/{repo}/actions/workflows", "/actions/workflows#list-repository-workflows", (*Sim).listWorkflows)
	api("GET", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}", "/actions/workflows#get-a-workflow", (*Sim).getWorkflow)
	api("POST", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", "/actions/workflows#create-a-workflow-dispatch-event", (*Sim).dispatch)
	api("GET", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs", "/actions/workflow-runs#list-workflow-runs-for-a-workflow", (*Sim).listWorkflowRuns)
	api("GET", "/repos/{owner}/{repo}/actions/runs", "/actions/workflow-runs#list-workflow-runs-for-a-repository", (*Sim).listRepoRuns)
	api("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}", "/actions/workflow-runs#get-a-workflow-run", (*Sim).getRun)
	api("POST", "/repos/{owner}/{repo}/actions/runs/{run_id}/cancel", "/actions/workflow-runs#cancel-a-workflow-run", (*Sim).cancelRun)
	api("POST", "/repos/{owner}/{repo}/actions/runs/{run_id}/rerun", "/actions/workflow-runs#re-run-a-workflow", (*Sim).rerunRun)
	api("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs", "/actions/workflow-jobs#list-jobs-for-a-workflow-run", (*Sim).listRunJobs)
	api("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt}/jobs", "/actions/workflow-jobs#list-jobs-for-a-workflow-run-attempt", (*Sim).listRunJobs)
	api("GET", "/repos/{owner}/{repo}/actions/jobs/{job_id}", "/actions/workflow-jobs#get-a-job-for-a-workflow-run", (*Sim).getJob)
	api("GET", "/repos/{owner}/{repo}/actions/jobs/{job_id}/logs", "/actions/workflow-jobs#download-job-logs-for-a-workflow-run", (*Sim).jobLogs)
	api("GET", "/repos/{owner}/{repo}/releases", "/releases/releases#list-releases", (*Sim).listReleases)
	api("GET", "/repos/{owner}/{repo}/releases/tags/{tag}", "/releases/releases#get-a-release-by-tag-name", (*Sim).getReleaseByTag)
	api("GET", "/repos/{owner}/{repo}/releases/assets/{asset_id}", "/releases/assets#get-a-release-asset", (*Sim).getAsset)
	api("GET", "/repos/{owner}/{repo}/releases/{release_id}", "/releases/releases#get-a-release", (*Sim).getRelease)
	api("GET", "/repos/{owner}/{repo}/releases/{release_id}/assets", "/releases/assets#list-release-assets", (*Sim).listAssets)
	api("POST", "/repos/{owner}/{repo}/releases/{release_id}/assets", "/releases/assets#upload-a-release-asset", (*Sim).uploadReleaseAsset)
	api("PATCH", "/repos/{owner}/{repo}/releases/{release_id}", "/releases/releases#update-a-release", (*Sim).updateRelease)
	api("DELETE", "/repos/{owner}/{repo}/releases/assets/{asset_id}", "/releases/assets#delete-a-release-asset", (*Sim).deleteAsset)
	api("GET", "/repos/{owner}/{repo}/contents/{path...}", "/repos/contents#get-repository-content", (*Sim).getContents)
	api("PUT", "/repos/{owner}/{repo}/contents/{path...}", "/repos/contents#create-or-update-file-contents", (*Sim).putContents)
	api("GET", "/repos/{owner}/{repo}/git/ref/{ref...}", "/git/refs#get-a-reference", (*Sim).getRef)
	api("GET", "/repos/{owner}/{repo}/git/refs/{ref...}", "/git/refs#list-matching-references", (*Sim).matchingRefs)
	api("GET", "/repos/{owner}/{repo}/git/matching-refs", "/git/refs#list-matching-references", (*Sim).listMatchingRefs)
	api("GET", "/repos/{owner}/{repo}/git/matching-refs/{ref...}", "/git/refs#list-matching-references", (*Sim).listMatchingRefs)
	api("POST", "/repos/{owner}/{repo}/git/refs", "/git/refs#create-a-reference", (*Sim).createRef)
	api("GET", "/repos/{owner}/{repo}/pulls", "/pulls/pulls#list-pull-requests", (*Sim).listPulls)
	api("POST", "/repos/{owner}/{repo}/pulls", "/pulls/pulls#create-a-pull-request", (*Sim).createPull)
	api("GET", "/repos/{owner}/{repo}/pulls/{number}", "/pulls/pulls#get-a-pull-request", (*Sim).getPull)
	raw(signedLogsPath+"{job_id}", (*Sim).serveSignedLog)
	raw(signedAssetsPath+"{asset_id}", (*Sim).serveSignedAsset)
	raw(webPath+"{owner}/{repo}/releases/download/{tag}/{name}", (*Sim).serveBrowserDownload)
	raw(webPath+"{owner}/{repo}/actions/runs/{run_id}", (*Sim).serveRunPage)
	raw(rawPath+"{owner}/{repo}/{sha}/{path...}", (*Sim).serveRawFile)
	return rs
}

// Paths of the URLs the simulator serves outside the REST API.
const (
	simPrefix        = "/_sim/"
	signedLogsPath   = simPrefix + "signed/logs/"
	signedAssetsPath = simPrefix + "signed/assets/"
	webPath          = simPrefix + "web/"
	rawPath          = simPrefix + "raw/"
)

func split(p string) []string { return strings.Split(strings.Trim(p, "/"), "/") }

func matchRoute(method, p string) (*route, params) {
	segs := split(p)
	for _, rt := range routes {
		if rt.method != method {
			continue
		}
		if ps, ok := rt.match(segs); ok {
			return rt, ps
		}
	}
	return nil, nil
}

func (rt *route) match(segs []string) (params, bool) {
	ps := params{}
	for i, pat := range rt.segs {
		if strings.HasSuffix(pat, "...}") {
			if i >= len(segs) {
				return nil, false
			}
			ps[pat[1:len(pat)-4]] = strings.Join(segs[i:], "/")
			return ps, true
		}
		if i >= len(segs) {
			return nil, false
		}
		if strings.HasPrefix(pat, "{") {
			if segs[i] == "" {
				return nil, false
			}
			ps[pat[1:len(pat)-1]] = segs[i]
			continue
		}
		if pat != segs[i] {
			return nil, false
		}
	}
	return ps, len(segs) == len(rt.segs)
}

// EndpointCounter counts the requests one endpoint received.
type EndpointCounter struct {
	// Requests is every request, whatever the answer.
	Requests int
	// Counted is how many counted against the token's primary rate limit.
	Counted int
	// NotModified is how many were answered 304 (not counted).
	NotModified int
	// RateLimited is how many were refused for a primary or secondary rate
	// limit.
	RateLimited int
	// ServerErrors is how many were answered 5xx by fault injection.
	ServerErrors int
	// Unauthorized is how many lacked a valid token.
	Unauthorized int
	// Injected is how many got an answer injected by a fault (Chaos,
	// SecondaryNoRetry, HourlyLimit) instead of the real one.
	Injected int
}

func (c *EndpointCounter) add(o EndpointCounter) {
	c.Requests += o.Requests
	c.Counted += o.Counted
	c.NotModified += o.NotModified
	c.RateLimited += o.RateLimited
	c.ServerErrors += o.ServerErrors
	c.Unauthorized += o.Unauthorized
	c.Injected += o.Injected
}

// Counters are the simulator's request counts, so tests can state how many
// API calls a build costs.
type Counters struct {
	// Endpoints are keyed by method and GitHub's path pattern, e.g.
	// "GET /repos/{owner}/{repo}/actions/runs/{run_id}". Unknown paths count
	// under "unmatched".
	Endpoints map[string]EndpointCounter
	// Total sums all endpoints.
	Total EndpointCounter
}

// Counters returns a snapshot of the request counters.
func (s *Sim) Counters() Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Counters{Endpoints: make(map[string]EndpointCounter, len(s.counters))}
	for k, c := range s.counters {
		out.Endpoints[k] = *c
		out.Total.add(*c)
	}
	return out
}

// ResetCounters zeroes the request counters (rate limits are unaffected).
func (s *Sim) ResetCounters() {
	s.mu.Lock()
	s.counters = map[string]*EndpointCounter{}
	s.mu.Unlock()
}

func (s *Sim) count(name string, f func(c *EndpointCounter)) {
	c := s.counters[name]
	if c == nil {
		c = &EndpointCounter{}
		s.counters[name] = c
	}
	c.Requests++
	if f != nil {
		f(c)
	}
}

// tokenLimits is one token's rate-limit state.
type tokenLimits struct {
	reset      time.Time // end of the current primary window
	used       int
	writes     []time.Time // writes in the last minute
	hourWrites []time.Time // writes in the last hour
}

func (s *Sim) limitsFor(token string, now time.Time) *tokenLimits {
	l := s.limits[token]
	if l == nil {
		l = &tokenLimits{}
		s.limits[token] = l
	}
	if !now.Before(l.reset) {
		l.reset = now.Add(time.Hour).Truncate(time.Second)
		l.used = 0
	}
	cut := 0
	for cut < len(l.writes) && !l.writes[cut].After(now.Add(-time.Minute)) {
		cut++
	}
	l.writes = l.writes[cut:]
	cut = 0
	for cut < len(l.hourWrites) && !l.hourWrites[cut].After(now.Add(-time.Hour)) {
		cut++
	}
	l.hourWrites = l.hourWrites[cut:]
	return l
}

func (s *Sim) primaryLimit() int {
	if s.opts.Faults.PrimaryLimit > 0 {
		return s.opts.Faults.PrimaryLimit
	}
	return s.opts.PrimaryLimit
}

func (s *Sim) secondaryLimit() int {
	if s.opts.Faults.SecondaryLimit > 0 {
		return s.opts.Faults.SecondaryLimit
	}
	return s.opts.SecondaryLimit
}

func (s *Sim) rateLimitStatus() int {
	if s.opts.RateLimit429 || s.opts.Faults.RateLimit429 {
		return http.StatusTooManyRequests
	}
	return http.StatusForbidden
}

func (s *Sim) ghes() bool { return s.opts.GHES || s.opts.Faults.GHES }

func (s *Sim) setRateHeaders(h http.Header, l *tokenLimits) {
	limit := s.primaryLimit()
	h.Set("X-Ratelimit-Limit", strconv.Itoa(limit))
	h.Set("X-Ratelimit-Remaining", strconv.Itoa(max(0, limit-l.used)))
	h.Set("X-Ratelimit-Used", strconv.Itoa(l.used))
	h.Set("X-Ratelimit-Reset", strconv.FormatInt(l.reset.Unix(), 10))
	h.Set("X-Ratelimit-Resource", "core")
}

// Handler returns the simulator's HTTP handler: GitHub's REST API at the
// root (a "/api/v3" prefix, as GHES clients send, is accepted too) and the
// signed download URLs under /_sim/.
func (s *Sim) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Sim) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if strings.HasPrefix(p, "/api/v3/") {
		p = strings.TrimPrefix(p, "/api/v3")
	}
	rt, ps := matchRoute(r.Method, p)
	if rt == nil {
		// GitHub answers 404 to unknown paths and to unsupported methods.
		s.mu.Lock()
		s.count("unmatched", nil)
		s.mu.Unlock()
		writeJSON(w, http.StatusNotFound, ghError("Not Found", docBase))
		return
	}
	if rt.raw != nil {
		s.mu.Lock()
		s.count(rt.name, nil)
		s.mu.Unlock()
		rt.raw(s, w, r, ps)
		return
	}
	s.serveAPI(w, r, rt, ps)
}

func (s *Sim) serveAPI(w http.ResponseWriter, r *http.Request, rt *route, ps params) {
	s.mu.Lock()
	seq := s.reqSeq
	s.reqSeq++
	faults := s.opts.Faults
	s.mu.Unlock()

	if faults.Latency > 0 {
		t := time.NewTimer(faults.Latency)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	requestID := fmt.Sprintf("%04X:%04X:%06X:%06X:%08X", seq%0xffff, (seq*7)%0xffff, seq*31%0xffffff, seq*131%0xffffff, seq)
	w.Header().Set("X-Github-Request-Id", requestID)
	w.Header().Set("X-Github-Api-Version-Selected", "2022-11-28")
	if faults.hit("api5xx", seq, faults.API5xx) {
		status := http.StatusInternalServerError
		if faults.chance("api5xx-status", seq) < 0.5 {
			status = http.StatusBadGateway
		}
		s.mu.Lock()
		s.count(rt.name, func(c *EndpointCounter) { c.ServerErrors++ })
		s.mu.Unlock()
		writeJSON(w, status, ghError("Server Error", ""))
		return
	}

	token, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok || (len(s.tokens) > 0 && !s.tokens[token]) {
		msg := "Requires authentication"
		if ok {
			msg = "Bad credentials"
		}
		s.mu.Lock()
		s.count(rt.name, func(c *EndpointCounter) { c.Unauthorized++ })
		s.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, ghError(msg, docBase))
		return
	}

	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	s.mu.Lock()
	now := s.clock.Now()
	lim := s.limitsFor(token, now)
	h := w.Header()
	c := &call{r: r, p: ps, now: now, token: token, lim: lim, seq: seq}
	if rt.name == "GET /rate_limit" {
		// GitHub does not count calls to /rate_limit.
		resp := s.getRateLimit(c)
		s.count(rt.name, nil)
		s.setRateHeaders(h, lim)
		body, _ := json.Marshal(resp.body)
		s.mu.Unlock()
		writeRaw(w, resp.status, body)
		return
	}
	if inj := s.injectAnswer(rt, r, seq, faults, lim, now); inj != nil {
		s.count(rt.name, func(c *EndpointCounter) {
			c.Injected++
			switch {
			case inj.limited:
				c.RateLimited++
			case inj.status >= 500:
				c.ServerErrors++
			}
		})
		s.mu.Unlock()
		inj.write(w, r, faults.HangFor)
		return
	}
	if lim.used >= s.primaryLimit() {
		s.count(rt.name, func(c *EndpointCounter) { c.RateLimited++ })
		s.setRateHeaders(h, lim)
		status := s.rateLimitStatus()
		s.mu.Unlock()
		writeJSON(w, status, ghError(fmt.Sprintf("API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID %s and timestamp %s.", requestID, now.Format("2006-01-02 15:04:05 MST")),
			docBase+"/overview/rate-limits-for-the-rest-api#about-primary-rate-limits"))
		return
	}
	if write && len(lim.writes) >= s.secondaryLimit() {
		retry := int(lim.writes[0].Add(time.Minute).Sub(now).Seconds() + 0.999)
		s.count(rt.name, func(c *EndpointCounter) { c.RateLimited++ })
		s.setRateHeaders(h, lim)
		h.Set("Retry-After", strconv.Itoa(max(1, retry)))
		status := s.rateLimitStatus()
		s.mu.Unlock()
		writeJSON(w, status, ghError(fmt.Sprintf("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID %s.", requestID),
			docBase+"/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"))
		return
	}

	resp := rt.api(s, c)
	var body []byte
	if resp.snapshot {
		s.mu.Unlock()
		body = encodeBody(resp, rt)
		s.mu.Lock()
	} else {
		body = encodeBody(resp, rt)
	}
	if resp.raw != nil {
		body = resp.raw
	}
	for k, v := range resp.header {
		h[k] = v
	}
	notModified := false
	if r.Method == http.MethodGet && resp.status == http.StatusOK && body != nil {
		sum := sha256.Sum256(body)
		etag := `W/"` + hex.EncodeToString(sum[:]) + `"`
		h.Set("Etag", etag)
		notModified = etagMatches(r.Header.Get("If-None-Match"), etag)
	}
	if notModified {
		s.count(rt.name, func(c *EndpointCounter) { c.NotModified++ })
	} else {
		lim.used++
		if write {
			lim.writes = append(lim.writes, now)
			lim.hourWrites = append(lim.hourWrites, now)
		}
		s.count(rt.name, func(c *EndpointCounter) { c.Counted++ })
	}
	s.setRateHeaders(h, lim)
	ambiguous := write && resp.status < 300 && faults.hit("ambiguous", seq, faults.Ambiguous)
	if ambiguous {
		s.counters[rt.name].ServerErrors++
	}
	s.mu.Unlock()
	s.kick()

	switch {
	case ambiguous:
		h.Del("Location")
		writeJSON(w, http.StatusBadGateway, ghError("Server Error", ""))
	case notModified:
		w.WriteHeader(http.StatusNotModified)
	default:
		writeRaw(w, resp.status, body)
	}
}

// encodeBody encodes resp's body, GitHub errors with their route's
// documentation URL; nil for no body.
func encodeBody(resp *response, rt *route) []byte {
	if resp.body == nil {
		return nil
	}
	if e, isErr := resp.body.(ghErrorBody); isErr && e.DocumentationURL == "" {
		e.DocumentationURL = rt.doc
		resp.body = e
	}
	body, _ := json.Marshal(resp.body)
	return body
}

func bearerToken(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || (!strings.EqualFold(scheme, "bearer") && !strings.EqualFold(scheme, "token")) {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	strip := func(t string) string { return strings.TrimPrefix(strings.TrimSpace(t), "W/") }
	for _, t := range strings.Split(header, ",") {
		if strings.TrimSpace(t) == "*" || strip(t) == strip(etag) {
			return true
		}
	}
	return false
}

// ghErrorBody is GitHub's error body.
type ghErrorBody struct {
	Message          string            `json:"message"`
	Errors           []validationError `json:"errors,omitempty"`
	DocumentationURL string            `json:"documentation_url"`
	Status           string            `json:"status,omitempty"`
}

type validationError struct {
	Resource string `json:"resource,omitempty"`
	Field    string `json:"field,omitempty"`
	Code     string `json:"code"`
	Message  string `json:"message,omitempty"`
}

func ghError(msg, doc string) ghErrorBody { return ghErrorBody{Message: msg, DocumentationURL: doc} }

// fail answers status with GitHub's error body; the route's documentation
// URL is filled in by the middleware.
func fail(status int, msg string) *response {
	return &response{status: status, body: ghErrorBody{Message: msg, Status: strconv.Itoa(status)}}
}

func notFound() *response { return fail(http.StatusNotFound, "Not Found") }

func validationFailed(errs ...validationError) *response {
	return &response{status: http.StatusUnprocessableEntity, body: ghErrorBody{Message: "Validation Failed", Errors: errs, Status: "422"}}
}

func ok(body any) *response { return &response{status: http.StatusOK, body: body} }

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	if body != nil {
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	if body != nil {
		_, _ = w.Write(body)
	}
}

// page slices n items by the request's per_page (default 30, at most 100)
// and page, and returns the Link header GitHub would send.
func (s *Sim) page(r *http.Request, n int) (from, to int, link string) {
	q := r.URL.Query()
	perPage, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || perPage <= 0 {
		perPage = 30
	}
	perPage = min(perPage, 100)
	pg, err := strconv.Atoi(q.Get("page"))
	if err != nil || pg <= 0 {
		pg = 1
	}
	last := max(1, (n+perPage-1)/perPage)
	from = min(n, (pg-1)*perPage)
	to = min(n, from+perPage)
	linkTo := func(p int, rel string) string {
		qq := url.Values{}
		for k, v := range q {
			qq[k] = v
		}
		qq.Set("page", strconv.Itoa(p))
		qq.Set("per_page", strconv.Itoa(perPage))
		return fmt.Sprintf(`<%s%s?%s>; rel="%s"`, s.base, r.URL.Path, qq.Encode(), rel)
	}
	var links []string
	if pg > 1 {
		links = append(links, linkTo(pg-1, "prev"))
	}
	if pg < last {
		links = append(links, linkTo(pg+1, "next"), linkTo(last, "last"))
	}
	if pg > 1 {
		links = append(links, linkTo(1, "first"))
	}
	return from, to, strings.Join(links, ", ")
}

func paged(body any, link string) *response {
	resp := ok(body)
	if link != "" {
		resp.header = http.Header{"Link": []string{link}}
	}
	return resp
}

func (s *Sim) getRateLimit(c *call) *response {
	core := map[string]any{"limit": s.primaryLimit(), "remaining": max(0, s.primaryLimit()-c.lim.used), "used": c.lim.used, "reset": c.lim.reset.Unix(), "resource": "core"}
	return ok(map[string]any{"resources": map[string]any{"core": core}, "rate": core})
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func decodeBody(r *http.Request, v any) error {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(nil, r.Body, 10<<20)); err != nil {
		return err
	}
	if buf.Len() == 0 {
		return nil
	}
	return json.Unmarshal(buf.Bytes(), v)
}
