// Package github is the Forge implementation on go-github v62: the only
// package of DeskForge that imports go-github. No go-github type crosses its
// boundary; errors are translated into the workflows package's error types.
package github

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v62/github"
	"golang.org/x/oauth2"
	"golang.org/x/time/rate"

	"github.com/deskforge/deskforge/workflows"
)

// Defaults of the Options that have one.
const (
	DefaultWritesPerMinute = 60
	DefaultWriteBurst      = 1
	// DefaultWritesPerHour is GitHub's documented budget of
	// content-generating requests: "no more than 500 per hour".
	DefaultWritesPerHour = 500
	DefaultMaxPacingWait = 5 * time.Second
	DefaultETagCacheSize = 1000
)

var _ workflows.Forge = (*Client)(nil)

// Options configure a Client. Either Token or the three App fields are
// required.
type Options struct {
	// BaseURL is the REST API root: "" for api.github.com, GHES
	// "https://host/api/v3/", or the simulator's URL.
	BaseURL string
	// Token is a personal access token or installation token.
	Token string
	// AppID, AppPrivateKey (PEM) and InstallationID authenticate as a
	// GitHub App installation instead of Token.
	AppID          int64
	AppPrivateKey  []byte
	InstallationID int64
	// HTTPClient is the base transport's client (tests); nil = default.
	// Its Transport carries both authenticated API calls and the
	// unauthenticated fetches of signed URLs.
	HTTPClient *http.Client

	// WritesPerMinute paces the writes of this client (= this token):
	// dispatches and cancellations. 0 means DefaultWritesPerMinute.
	WritesPerMinute int
	// WriteBurst is how many writes may go out back to back before the pace
	// applies. 0 means DefaultWriteBurst.
	WriteBurst int
	// WritesPerHour bounds the writes of any one hour (GitHub's budget of
	// content-generating requests): a tenth of it may go out at once, the
	// rest is spread over the hour, so no hour ever holds more. 0 means
	// DefaultWritesPerHour.
	WritesPerHour int
	// SecondaryLimitWait is the first wait after a secondary rate limit
	// that names no Retry-After (GitHub: "at least one minute"); it doubles
	// while the limit keeps answering, up to MaxSecondaryLimitWait. 0 means
	// DefaultSecondaryLimitWait and DefaultMaxSecondaryLimitWait.
	SecondaryLimitWait    time.Duration
	MaxSecondaryLimitWait time.Duration
	// MaxPacingWait is the longest a write waits for its turn; a write that
	// would wait longer fails at once with a *workflows.RateLimitError
	// ("paced locally") without calling GitHub, so that a queue worker can
	// snooze instead of blocking. 0 means DefaultMaxPacingWait.
	MaxPacingWait time.Duration
	// DisableRunDetails presets the knowledge that the server rejects
	// return_run_details in dispatches (GHES), so the first dispatch does
	// not have to find it out. See Client.SupportsRunDetails.
	DisableRunDetails bool
	// ETagCacheSize bounds the number of URLs whose last ETag and answer are
	// kept for conditional requests. 0 means DefaultETagCacheSize.
	ETagCacheSize int
	// Logger receives debug and notable events; nil discards them.
	Logger *slog.Logger
}

// Client talks to one GitHub (or GHES, or simulator) server with one
// identity. It implements workflows.Forge and is safe for concurrent use.
type Client struct {
	gh *gh.Client
	// dl is a second go-github client over the same authenticated
	// transport, used only for DownloadReleaseAsset: that call swaps its
	// http.Client's CheckRedirect while other requests of gh may be in
	// flight, which would race on a shared http.Client.
	dl *gh.Client
	// plain fetches signed URLs (logs, assets) without credentials.
	plain   *http.Client
	baseURL string
	log     *slog.Logger

	// writes paces writes per minute, hourlyWrites per hour, each at
	// 1/replicas of the budget below (SetReplicas).
	writes        *rate.Limiter
	hourlyWrites  *rate.Limiter
	budget        writeBudget
	maxPacingWait time.Duration
	// assets fetches release assets over the authenticated transport
	// without following redirects (see OpenAsset).
	assets *http.Client

	runDetailsRejected atomic.Bool
	etags              *etagCache
}

// New returns a Client for opts.
func New(ctx context.Context, opts Options) (*Client, error) {
	base := http.DefaultTransport
	if opts.HTTPClient != nil && opts.HTTPClient.Transport != nil {
		base = opts.HTTPClient.Transport
	}
	api := &secondaryLimits{
		next: base,
		min:  cmp.Or(opts.SecondaryLimitWait, DefaultSecondaryLimitWait),
		max:  cmp.Or(opts.MaxSecondaryLimitWait, DefaultMaxSecondaryLimitWait),
	}
	var httpClient *http.Client
	switch {
	case opts.Token != "":
		ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: api})
		httpClient = oauth2.NewClient(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: opts.Token}))
	case opts.AppID != 0 && len(opts.AppPrivateKey) > 0 && opts.InstallationID != 0:
		tr, err := ghinstallation.New(api, opts.AppID, opts.InstallationID, opts.AppPrivateKey)
		if err != nil {
			return nil, fmt.Errorf("github app auth: %w", err)
		}
		if opts.BaseURL != "" {
			tr.BaseURL = strings.TrimSuffix(opts.BaseURL, "/")
		}
		httpClient = &http.Client{Transport: tr}
	default:
		return nil, errors.New("github: set a token, or an app id, private key and installation id")
	}
	client := gh.NewClient(httpClient)
	download := gh.NewClient(&http.Client{Transport: httpClient.Transport})
	if opts.BaseURL != "" {
		// Used as given (GHES: "https://host/api/v3/"), unlike
		// WithEnterpriseURLs, which would append /api/v3/ to the simulator's URL.
		u, err := url.Parse(strings.TrimSuffix(opts.BaseURL, "/") + "/")
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("github base url %q: must be an http(s) URL", opts.BaseURL)
		}
		client.BaseURL = u
		client.UploadURL = u
		download.BaseURL = u
		download.UploadURL = u
	}

	perMinute := opts.WritesPerMinute
	if perMinute <= 0 {
		perMinute = DefaultWritesPerMinute
	}
	burst := opts.WriteBurst
	if burst <= 0 {
		burst = DefaultWriteBurst
	}
	maxWait := opts.MaxPacingWait
	if maxWait <= 0 {
		maxWait = DefaultMaxPacingWait
	}
	perHour := cmp.Or(max(opts.WritesPerHour, 0), DefaultWritesPerHour)
	hourBurst := max(1, perHour/10)
	cacheSize := opts.ETagCacheSize
	if cacheSize <= 0 {
		cacheSize = DefaultETagCacheSize
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	c := &Client{
		gh:            client,
		dl:            download,
		plain:         &http.Client{Transport: base},
		baseURL:       client.BaseURL.String(),
		log:           logger,
		writes:        rate.NewLimiter(rate.Every(time.Minute/time.Duration(perMinute)), burst),
		hourlyWrites:  rate.NewLimiter(rate.Every(time.Hour/time.Duration(max(1, perHour-hourBurst))), hourBurst),
		budget:        writeBudget{perMinute: perMinute, burst: burst, perHour: perHour, hourBurst: hourBurst},
		maxPacingWait: maxWait,
		assets: &http.Client{Transport: httpClient.Transport, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		etags: newETagCache(cacheSize),
	}
	c.runDetailsRejected.Store(opts.DisableRunDetails)
	return c, nil
}

// writeBudget is the write pace a client was configured with, for the
// whole fleet of processes using its token.
type writeBudget struct {
	perMinute, burst, perHour, hourBurst int
}

// SetReplicas divides the write pace among n processes (live replicas,
// this one included) that use the same token: GitHub counts its limits per
// token, so each paces its writes at 1/n of the budget (bursts of at least
// one).
func (c *Client) SetReplicas(n int) {
	n = max(n, 1)
	b := c.budget
	c.writes.SetLimit(rate.Every(time.Minute/time.Duration(b.perMinute)) / rate.Limit(n))
	c.writes.SetBurst(max(1, b.burst/n))
	c.hourlyWrites.SetLimit(rate.Every(time.Hour/time.Duration(max(1, b.perHour-b.hourBurst))) / rate.Limit(n))
	c.hourlyWrites.SetBurst(max(1, b.hourBurst/n))
}

// BaseURL returns the REST API root this client talks to, with a trailing
// slash (e.g. "https://api.github.com/").
func (c *Client) BaseURL() string { return c.baseURL }

// SupportsRunDetails reports whether dispatches still ask for
// return_run_details: false once the server rejected the key (or when
// Options.DisableRunDetails preset it). Callers may persist a false answer
// per server and pass it back through Options.DisableRunDetails.
func (c *Client) SupportsRunDetails() bool { return !c.runDetailsRejected.Load() }

// splitRepo splits "owner/name".
func splitRepo(repo string) (owner, name string, err error) {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", "", &workflows.InvalidError{Message: fmt.Sprintf("repository %q must be owner/name", repo)}
	}
	return owner, name, nil
}

// repoPath returns "repos/{owner}/{name}" with both segments escaped.
func repoPath(owner, name string) string {
	return "repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name)
}

// CheckAccess checks that the server accepts this client's credentials
// (GET /rate_limit, which costs no rate limit) and, when repo is not
// empty, that the repository is visible to them. The error is translated
// like every Forge error. A 404 from /rate_limit is GitHub Enterprise
// Server with rate limiting disabled (an answer the operation documents),
// not a failure: the credentials were accepted.
func (c *Client) CheckAccess(ctx context.Context, repo string) error {
	if _, resp, err := c.gh.RateLimit.Get(ctx); err != nil {
		if terr := translateError(ctx, "check credentials", resp, err); !errors.Is(terr, workflows.ErrNotFound) {
			return terr
		}
	}
	if repo == "" {
		return nil
	}
	if _, err := c.RepositoryPrivate(ctx, repo); err != nil {
		return fmt.Errorf("check access to the builder repository: %w", err)
	}
	return nil
}
