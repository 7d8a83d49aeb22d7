// Package server is DeskForge's HTTP layer: the Gin router, middleware, one
// file per resource, the error translator and the GitHub webhook receiver.
package server

import (
	"cmp"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/sync/semaphore"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/workflows"
	forge "github.com/deskforge/deskforge/workflows/github"
)

// DefaultMaxBodyBytes is the request body limit of the authenticated API
// (larger bodies answer 413).
const DefaultMaxBodyBytes = 1 << 20

// Defaults of the request limits in Options. A body must arrive within its
// read timeout, or the request answers 408 and the connection is closed:
// slow senders cannot hold connections. The webhook's timeout is longer
// because its bodies may be 25 MB (GitHub itself waits 10 s for an answer).
const (
	DefaultReadHeaderTimeout    = 10 * time.Second
	DefaultBodyReadTimeout      = 15 * time.Second
	DefaultWebhookReadTimeout   = 30 * time.Second
	DefaultWebhookBytesInFlight = 64 << 20
)

func init() {
	// Gin's debug mode prints every route at start; DeskForge logs through
	// slog instead.
	gin.SetMode(gin.ReleaseMode)
}

// Options configure a Server.
type Options struct {
	// Store reads and writes projects, keys and builds (required).
	Store *models.Store
	// Engine creates builds and runs the engine's actions (required).
	Engine BuildEngine
	// PublicURL is the server's external base URL, used in Location headers,
	// buildLog and artifactUrl (default http://localhost:8080).
	PublicURL string
	// WebhookSecret verifies GitHub webhook signatures; empty switches the
	// webhook endpoint off outside demo mode.
	WebhookSecret []byte
	// Demo marks a server whose GitHub is simulated.
	Demo bool
	// ParseWebhook turns a verified delivery's payload into an event
	// (default: workflows/github.ParseWebhook; a Gitea forge passes
	// ParseGiteaWebhook).
	ParseWebhook func(event string, payload []byte) (workflows.WebhookEvent, error)
	// Log receives access logs and errors (default: discard).
	Log *slog.Logger
	// MaxBodyBytes overrides DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// KeyCacheTTL is how long an authenticated API key is remembered
	// without a database lookup (default DefaultKeyCacheTTL; negative: never).
	// A key revoked through another process stops working within it.
	KeyCacheTTL time.Duration
	// Changes wakes event streams (default: the store's database's feed).
	Changes Subscriber
	// EventHeartbeat is the interval of event streams' heartbeat comments
	// (default DefaultEventHeartbeat); EventWriteTimeout disconnects a
	// client that does not take events (default DefaultEventWriteTimeout).
	EventHeartbeat    time.Duration
	EventWriteTimeout time.Duration
	// EventTokenSecret signs the tokens of POST /events/token (default: a
	// random secret stored in the database, shared by replicas).
	EventTokenSecret []byte
	// ReadHeaderTimeout bounds reading a request's headers (the
	// http.Server of HTTPServer; default DefaultReadHeaderTimeout).
	ReadHeaderTimeout time.Duration
	// BodyReadTimeout bounds reading a request body, from the moment the
	// handler chain starts (default DefaultBodyReadTimeout).
	BodyReadTimeout time.Duration
	// WebhookReadTimeout replaces BodyReadTimeout for POST /webhooks/github
	// (default DefaultWebhookReadTimeout).
	WebhookReadTimeout time.Duration
	// WebhookBytesInFlight caps the webhook body bytes held at once across
	// all deliveries being received (default DefaultWebhookBytesInFlight,
	// at least MaxWebhookBytes); a delivery that would pass it answers 503.
	WebhookBytesInFlight int64
	// RateLimits limits requests per API key (per client address on the
	// health routes); nil: no limits. `deskforge serve` sets
	// DefaultReadRate and DefaultWriteRate unless configured.
	RateLimits *RateLimits
	// CORSOrigins are the browser origins (scheme://host[:port], or "*")
	// allowed to call the API; empty: no CORS headers, preflights refused.
	CORSOrigins []string
	// Requests observes every answered request (metrics); nil: none.
	Requests RequestObserver
	// Webhooks counts GitHub webhook deliveries (metrics); nil: none.
	Webhooks WebhookObserver
	// SigningKey keys the HMAC of signed download links
	// (DESKFORGE_SIGNING_KEY); empty: a random key generated on first use
	// and stored in the database, shared by replicas.
	SigningKey []byte
}

// DefaultKeyCacheTTL is the default of Options.KeyCacheTTL.
const DefaultKeyCacheTTL = 5 * time.Second

// Server is DeskForge's HTTP API. Create it with New; it is safe for
// concurrent use.
type Server struct {
	router        *gin.Engine
	store         *models.Store
	engine        BuildEngine
	publicURL     string
	webhookSecret []byte
	parseWebhook  func(event string, payload []byte) (workflows.WebhookEvent, error)
	demo          bool
	log           *slog.Logger
	maxBodyBytes  int64
	keys          *keyCache
	events        *eventStreams

	readHeaderTimeout  time.Duration
	bodyReadTimeout    time.Duration
	webhookReadTimeout time.Duration
	// webhookBytes holds the reservations of webhook bodies in flight.
	webhookBytes *semaphore.Weighted
	limiter      *rateLimiter
	corsOrigins  []string
	requests     RequestObserver
	webhooks     WebhookObserver
	links        *linkSigner
	updates      *updateCache
}

// New returns a Server with every route registered.
func New(opts Options) *Server {
	s := &Server{
		store:         opts.Store,
		engine:        opts.Engine,
		publicURL:     strings.TrimSuffix(opts.PublicURL, "/"),
		webhookSecret: opts.WebhookSecret,
		parseWebhook:  opts.ParseWebhook,
		demo:          opts.Demo,
		log:           opts.Log,
		maxBodyBytes:  opts.MaxBodyBytes,
		corsOrigins:   opts.CORSOrigins,
		requests:      opts.Requests,
		webhooks:      opts.Webhooks,
	}
	if s.publicURL == "" {
		s.publicURL = "http://localhost:8080"
	}
	if s.parseWebhook == nil {
		s.parseWebhook = forge.ParseWebhook
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBodyBytes <= 0 {
		s.maxBodyBytes = DefaultMaxBodyBytes
	}
	s.readHeaderTimeout = cmp.Or(opts.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	s.bodyReadTimeout = cmp.Or(opts.BodyReadTimeout, DefaultBodyReadTimeout)
	s.webhookReadTimeout = cmp.Or(opts.WebhookReadTimeout, DefaultWebhookReadTimeout)
	s.webhookBytes = semaphore.NewWeighted(max(cmp.Or(opts.WebhookBytesInFlight, DefaultWebhookBytesInFlight), MaxWebhookBytes))
	ttl := opts.KeyCacheTTL
	if ttl == 0 {
		ttl = DefaultKeyCacheTTL
	}
	s.keys = newKeyCache(ttl)
	s.events = newEventStreams(opts)
	s.limiter = newRateLimiter(opts.RateLimits)
	s.links = newLinkSigner(opts.Store, opts.SigningKey)
	s.updates = newUpdateCache(s)
	s.router = s.routes()
	return s
}

// Handler returns the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.router }

// MaxHeaderBytes is the http.Server limit on a request's line and headers.
// It is larger than what the API accepts (maxURLBytes, maxHeaderBytes) so
// that the router answers an over-long URL or header 414/431 in the error
// envelope; past it net/http answers a plain-text 431 itself.
const MaxHeaderBytes = 2 << 20

// HTTPServer returns an http.Server serving Handler with the server's
// header limits and timeouts (headers within ReadHeaderTimeout; bodies are
// bounded by the router, per route). The caller sets ErrorLog and serves.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.router,
		ReadHeaderTimeout: s.readHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// routes builds the router. Route parameters are named :id throughout (Gin
// requires one name per path segment): /projects/:id, /builds/:id/….
func (s *Server) routes() *gin.Engine {
	r := gin.New()
	// No proxy is trusted: the client IP in the access log is the peer's,
	// not a spoofable X-Forwarded-For.
	_ = r.SetTrustedProxies(nil)
	r.HandleMethodNotAllowed = true
	// /projects/ answers the JSON 404 envelope, not Gin's HTML redirect.
	r.RedirectTrailingSlash = false
	r.ContextWithFallback = true
	r.Use(s.requestID, s.accessLog, s.recoverPanic)
	if s.requests != nil {
		r.Use(s.observeRequests)
	}
	if len(s.corsOrigins) > 0 {
		r.Use(s.cors)
	}
	r.Use(s.limitRequestSize, s.refuseBadText, s.limitBodyReadTime)
	r.NoRoute(s.noRoute)
	r.NoMethod(s.noMethod)

	getAndHead(r, "/healthz", s.rateLimitByAddress, s.healthz)
	getAndHead(r, "/readyz", s.rateLimitByAddress, s.readyz)
	getAndHead(r, "/openapi.json", s.rateLimitByAddress, s.serveOpenAPI)

	api := r.Group("/", s.limitBody, s.authenticate, s.checkPathID, s.rateLimitByKey, s.loadSigningKey)
	getAndHead(api, "/projects", s.listProjects)
	api.POST("/projects", s.requireAdmin, s.createProject)
	getAndHead(api, "/projects/:id", s.getProject)
	api.PATCH("/projects/:id", s.requireAdmin, s.updateProject)
	api.DELETE("/projects/:id", s.requireAdmin, s.deleteProject)
	getAndHead(api, "/projects/:id/builds", s.listBuilds)
	api.POST("/projects/:id/builds", s.createBuild)
	getAndHead(api, "/builds", s.listAllBuilds)
	getAndHead(api, "/builds/:id", s.getBuild)
	getAndHead(api, "/builds/:id/logs", s.getBuildLogs)
	getAndHead(api, "/apikeys", s.requireAdmin, s.listAPIKeys)
	api.POST("/apikeys", s.requireAdmin, s.createAPIKey)
	api.DELETE("/apikeys/:id", s.requireAdmin, s.revokeAPIKey)

	s.registerEngineRoutes(r, api)
	s.registerReleaseRoutes(r, api)
	s.registerUpdateRoutes(r)
	s.registerEventRoutes(r, api)
	s.registerDashboardRoutes(r)
	s.registerHookRoutes(api)
	return r
}

// getAndHead registers a GET route and its HEAD twin: HEAD answers what GET
// would, headers included, without the body (net/http drops it). Register
// every GET route with it.
func getAndHead(g gin.IRoutes, path string, handlers ...gin.HandlerFunc) {
	g.GET(path, handlers...)
	g.HEAD(path, handlers...)
}
