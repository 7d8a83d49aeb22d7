// Package metrics exposes DeskForge's Prometheus metrics: HTTP requests,
// builds (counted at scrape time, timed at their transitions), GitHub
// requests and rate limits, and River jobs (counted at scrape time).
// `deskforge serve` serves them on DESKFORGE_METRICS_LISTEN.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/deskforge/deskforge/models"
)

// scrapeTimeout bounds the database queries of one scrape.
const scrapeTimeout = 5 * time.Second

// Metrics holds DeskForge's metrics on its own registry. It is safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	queueTime    *prometheus.HistogramVec
	buildTime    *prometheus.HistogramVec
	ghRequests   *prometheus.CounterVec
	ghDuration   *prometheus.HistogramVec
	ghRemaining  *prometheus.GaugeVec
	ghSecondary  prometheus.Counter
	runFound     prometheus.Histogram
	webhooks     *prometheus.CounterVec
	applyLag     *prometheus.HistogramVec
	outbound     *prometheus.CounterVec
	replicas     prometheus.Gauge
}

// New returns the metrics of a process using db (queried at scrape time
// for builds by status and River jobs by kind and state; nil: those are
// left out), with the Go runtime and process collectors.
func New(db *models.DB, log *slog.Logger) *Metrics {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "deskforge_http_requests_total",
		Help: "HTTP requests answered, by route (the router's pattern), method and status.",
	}, []string{"route", "method", "status"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "deskforge_http_request_duration_seconds",
		Help:    "Time to answer an HTTP request (event streams: the stream's life), by route and method.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route", "method"})
	buildBuckets := []float64{5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400}
	m.queueTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "deskforge_build_queue_seconds",
		Help:    "Time from a build's creation to its job starting on a runner, by platform and arch.",
		Buckets: buildBuckets,
	}, []string{"platform", "arch"})
	m.buildTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "deskforge_build_duration_seconds",
		Help:    "Time from a build's job starting to its final status, by platform, arch and status.",
		Buckets: buildBuckets,
	}, []string{"platform", "arch", "status"})
	m.ghRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "deskforge_github_requests_total",
		Help: "Requests to GitHub, by endpoint (path with owner, repository and ids as placeholders), method and status (\"error\" when no answer came).",
	}, []string{"endpoint", "method", "status"})
	m.ghDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "deskforge_github_request_duration_seconds",
		Help:    "Time for GitHub to answer, by endpoint and method.",
		Buckets: prometheus.DefBuckets,
	}, []string{"endpoint", "method"})
	m.ghRemaining = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "deskforge_github_rate_limit_remaining",
		Help: "Requests left in GitHub's primary rate limit window, by credential (the token or App installation the process uses) and resource (X-RateLimit-Resource), as of the last answer.",
	}, []string{"credential", "resource"})
	m.ghSecondary = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "deskforge_github_secondary_limits_total",
		Help: "GitHub answers refusing a request under a secondary rate limit (403 or 429 with Retry-After).",
	})
	m.runFound = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "deskforge_build_dispatch_to_run_seconds",
		Help:    "Time from a build's dispatch to its workflow run being found (in the dispatch's answer, a webhook or a poll).",
		Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600},
	})
	m.webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "deskforge_github_webhooks_total",
		Help: "GitHub webhook deliveries received, by event (X-GitHub-Event) and result: accepted, duplicate, ignored, pong, rejected (4xx) or error (5xx).",
	}, []string{"event", "result"})
	m.applyLag = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "deskforge_github_webhook_apply_lag_seconds",
		Help:    "Time from a webhook delivery being recorded to its event being applied to its build, by event.",
		Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
	}, []string{"event"})
	m.outbound = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "deskforge_webhook_deliveries_total",
		Help: "Attempts to deliver DeskForge's own webhooks, by result: delivered, retrying (failed, will be tried again) or failed (failed for good: out of attempts, 410 Gone, endpoint disabled).",
	}, []string{"result"})
	m.replicas = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "deskforge_replicas",
		Help: "Live replicas this process shares its rate limits and GitHub write pace with, itself included (1 on SQLite).",
	})
	m.replicas.Set(1)
	m.reg.MustRegister(m.replicas, m.httpRequests, m.httpDuration, m.queueTime, m.buildTime,
		m.ghRequests, m.ghDuration, m.ghRemaining, m.ghSecondary, m.runFound, m.webhooks, m.applyLag, m.outbound,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if db != nil {
		m.reg.MustRegister(&dbCollector{db: db, log: log})
	}
	return m
}

// Handler serves the metrics in Prometheus' exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry is the registry holding the metrics (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveRequest records one answered HTTP request. route is the router's
// pattern ("" for unknown paths, recorded as "unmatched").
func (m *Metrics) ObserveRequest(route, method string, status int, elapsed time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(route, method).Observe(elapsed.Seconds())
}

// BuildTransitioned records the timings of a build that just moved from
// status from to b.Status at at: its queue time when it starts building,
// its duration when it ends (builds that never started have none).
func (m *Metrics) BuildTransitioned(b models.Build, from string, at time.Time) {
	switch {
	case b.Status == models.StatusBuilding:
		m.queueTime.WithLabelValues(b.Platform, b.Arch).Observe(at.Sub(b.CreatedAt).Seconds())
	case models.IsTerminal(b.Status) && b.StartedAt != nil:
		m.buildTime.WithLabelValues(b.Platform, b.Arch, b.Status).Observe(at.Sub(*b.StartedAt).Seconds())
	}
}

// RunFound records the time from b's dispatch to its run being found at at.
func (m *Metrics) RunFound(b models.Build, at time.Time) {
	if b.DispatchedAt != nil {
		m.runFound.Observe(at.Sub(*b.DispatchedAt).Seconds())
	}
}

// WebhookReceived counts one GitHub webhook delivery by event and result.
func (m *Metrics) WebhookReceived(event, result string) {
	if event == "" {
		event = "unknown"
	}
	m.webhooks.WithLabelValues(event, result).Inc()
}

// WebhookApplied records the lag of an applied GitHub webhook event.
func (m *Metrics) WebhookApplied(event string, lag time.Duration) {
	m.applyLag.WithLabelValues(event).Observe(lag.Seconds())
}

// DeliveryAttempted counts one attempt to deliver an outbound webhook.
func (m *Metrics) DeliveryAttempted(result string) {
	m.outbound.WithLabelValues(result).Inc()
}

// SetReplicas records the number of live replicas sharing the limits.
func (m *Metrics) SetReplicas(n int) { m.replicas.Set(float64(n)) }

// Transport returns a function wrapping a GitHub client's transport (base;
// http.DefaultTransport when nil) so that it counts every request and
// reads the rate-limit headers of the answers; credential names the token
// or App installation the client uses (never the secret itself).
func (m *Metrics) Transport(credential string) func(base http.RoundTripper) http.RoundTripper {
	return func(base http.RoundTripper) http.RoundTripper {
		if base == nil {
			base = http.DefaultTransport
		}
		return &githubTransport{m: m, base: base, credential: credential}
	}
}

type githubTransport struct {
	m          *Metrics
	base       http.RoundTripper
	credential string
}

// RoundTrip implements http.RoundTripper.
func (t *githubTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	endpoint := EndpointOf(req.URL.Path)
	t.m.ghDuration.WithLabelValues(endpoint, req.Method).Observe(time.Since(start).Seconds())
	if err != nil {
		t.m.ghRequests.WithLabelValues(endpoint, req.Method, "error").Inc()
		return resp, err
	}
	t.m.ghRequests.WithLabelValues(endpoint, req.Method, strconv.Itoa(resp.StatusCode)).Inc()
	if v := resp.Header.Get("X-RateLimit-Remaining"); v != "" {
		if n, err := strconv.ParseFloat(v, 64); err == nil {
			resource := resp.Header.Get("X-RateLimit-Resource")
			if resource == "" {
				resource = "core"
			}
			t.m.ghRemaining.WithLabelValues(t.credential, resource).Set(n)
		}
	}
	if (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests) &&
		resp.Header.Get("Retry-After") != "" && resp.Header.Get("X-RateLimit-Remaining") != "0" {
		t.m.ghSecondary.Inc()
	}
	return resp, nil
}

var (
	numericSegment = regexp.MustCompile(`^[0-9]+$`)
	apiPrefix      = regexp.MustCompile(`^.*?/(repos|rate_limit|app|installation|user|orgs)(/|$)`)
)

// EndpointOf is the endpoint label of a GitHub API path: the path from
// /repos (a GHES /api/v3 prefix dropped) with the owner and repository as
// {owner}/{repo}, numbers as {id}, and the rest of a git ref or file path
// folded into {path}. Paths outside the API (signed log and asset URLs)
// are "other".
func EndpointOf(path string) string {
	loc := apiPrefix.FindStringIndex(path)
	if loc == nil {
		return "other"
	}
	segs := strings.Split(strings.Trim(path[loc[0]:], "/"), "/")
	start := 0
	for i, s := range segs {
		if s == "repos" || s == "rate_limit" || s == "app" || s == "installation" || s == "user" || s == "orgs" {
			start = i
			break
		}
	}
	segs = segs[start:]
	out := make([]string, 0, len(segs))
	for i := 0; i < len(segs); i++ {
		s := segs[i]
		switch {
		case segs[0] == "repos" && i == 1:
			s = "{owner}"
		case segs[0] == "repos" && i == 2:
			s = "{repo}"
		case numericSegment.MatchString(s):
			s = "{id}"
		case i > 0 && (segs[i-1] == "contents" || segs[i-1] == "ref" || segs[i-1] == "refs" || segs[i-1] == "tags" || segs[i-1] == "workflows"):
			// A file path, a git ref, a tag or a workflow file name.
			out = append(out, "{name}")
			if segs[i-1] == "workflows" {
				continue
			}
			i = len(segs)
			continue
		}
		out = append(out, s)
	}
	return "/" + strings.Join(out, "/")
}

// dbCollector counts builds by status and River jobs by kind and state at
// scrape time.
type dbCollector struct {
	db  *models.DB
	log *slog.Logger
}

var (
	buildsDesc = prometheus.NewDesc("deskforge_builds", "Builds by status (all projects).", []string{"status"}, nil)
	jobsDesc   = prometheus.NewDesc("deskforge_river_jobs", "River jobs by kind and state (available jobs are the queue).", []string{"kind", "state"}, nil)
	upDesc     = prometheus.NewDesc("deskforge_database_scrape_ok", "1 when the database answered this scrape's counts.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- buildsDesc
	ch <- jobsDesc
	ch <- upDesc
}

// Collect implements prometheus.Collector.
func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	ok := 1.0
	if err := c.collect(ctx, ch, buildsDesc, "SELECT status, COALESCE(SUM(n), 0) FROM build_counts GROUP BY status", 1); err != nil {
		c.log.Warn("metrics: count builds", "err", err)
		ok = 0
	}
	if err := c.collect(ctx, ch, jobsDesc, "SELECT kind, state, COUNT(*) FROM river_job GROUP BY kind, state", 2); err != nil {
		c.log.Warn("metrics: count River jobs", "err", err)
		ok = 0
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, ok)
}

// collect sends one gauge per row of query: labels label columns, then the
// count.
func (c *dbCollector) collect(ctx context.Context, ch chan<- prometheus.Metric, desc *prometheus.Desc, query string, labels int) error {
	rows, err := c.db.SQL.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		vals := make([]string, labels)
		var n float64
		dst := make([]any, 0, labels+1)
		for i := range vals {
			dst = append(dst, &vals[i])
		}
		dst = append(dst, &n)
		if err := rows.Scan(dst...); err != nil {
			return err
		}
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, n, vals...)
	}
	return rows.Err()
}
