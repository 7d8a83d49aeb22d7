// Package client is a typed Go client of DeskForge's public HTTP API: builds
// (trigger, get, list, logs, download with resume, cancel, retry), releases
// (create, get, list, cancel, retry, watch) and projects (get, list). The
// command line's build and release commands, the end-to-end
// tests and the benchmarks use it.
//
// It defines its own wire types and imports nothing else of DeskForge: it
// decodes what the server answers over HTTP, as any outside program would.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Options configure a Client.
type Options struct {
	// BaseURL is the server's root, e.g. http://localhost:8080 (required).
	BaseURL string
	// APIKey is sent as "Authorization: Bearer <APIKey>" (required by every
	// route of the API).
	APIKey string
	// HTTPClient sends the requests (default: a client without timeout, so
	// that long downloads are not cut; bound calls with their context).
	HTTPClient *http.Client
	// UserAgent is sent with every request (default "deskforge-client").
	UserAgent string
	// Strict refuses answers that carry fields this package does not know.
	// Tests use it to check that the server answers exactly what the client
	// decodes.
	Strict bool
}

// Client talks to one DeskForge server. It is safe for concurrent use.
type Client struct {
	base   *url.URL
	key    string
	http   *http.Client
	agent  string
	strict bool
}

// New returns a Client for opts.BaseURL; it fails on a URL that is not an
// absolute http(s) URL.
func New(opts Options) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(opts.BaseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q is not an absolute http(s) URL such as http://localhost:8080", opts.BaseURL)
	}
	c := &Client{base: u, key: opts.APIKey, http: opts.HTTPClient, agent: opts.UserAgent, strict: opts.Strict}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.http.CheckRedirect == nil {
		hc := *c.http
		hc.CheckRedirect = c.keepKeyHome
		c.http = &hc
	}
	if c.agent == "" {
		c.agent = "deskforge-client"
	}
	return c, nil
}

// keepKeyHome follows up to 10 redirects and sends the API key only to the
// server's own origin (scheme, host and port): a download redirected to
// GitHub, a forge or a store on the same host name but another port must
// not receive it (net/http would forward it to the same host name).
func (c *Client) keepKeyHome(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Scheme != c.base.Scheme || !strings.EqualFold(req.URL.Host, c.base.Host) {
		req.Header.Del("Authorization")
	}
	return nil
}

// BaseURL is the server's root URL, without a trailing slash.
func (c *Client) BaseURL() string { return c.base.String() }

// TriggerRequest is the body of a build trigger. Empty fields take the
// server's defaults (arch x64, the project's version).
type TriggerRequest struct {
	Platform string `json:"platform"`
	Arch     string `json:"arch,omitempty"`
	Version  string `json:"version,omitempty"`
	// IdempotencyKey, when set, is sent as the Idempotency-Key header: the
	// same request repeated within 24 hours answers the same build.
	IdempotencyKey string `json:"-"`
}

// TriggerBuild creates a build of a project (POST /projects/:id/builds).
func (c *Client) TriggerBuild(ctx context.Context, projectID string, req TriggerRequest) (*TriggeredBuild, error) {
	var out TriggeredBuild
	var header http.Header
	if req.IdempotencyKey != "" {
		header = http.Header{"Idempotency-Key": {req.IdempotencyKey}}
	}
	if err := c.call(ctx, http.MethodPost, "/projects/"+url.PathEscape(projectID)+"/builds", nil, header, req, &out); err != nil {
		return nil, fmt.Errorf("trigger build of %s: %w", projectID, err)
	}
	return &out, nil
}

// GetBuild reads a build (GET /builds/:id).
func (c *Client) GetBuild(ctx context.Context, id string) (*Build, error) {
	var out Build
	if err := c.call(ctx, http.MethodGet, "/builds/"+url.PathEscape(id), nil, nil, nil, &out); err != nil {
		return nil, fmt.Errorf("get build %s: %w", id, err)
	}
	return &out, nil
}

// BuildFilter selects the builds of ListBuilds; zero fields do not filter.
type BuildFilter struct {
	Status   string
	Platform string
	Arch     string
	Version  string
	// Limit is the page size, 1 to 200 (0: the server's default, 50).
	Limit int
	// Cursor is the NextCursor of the previous page ("" for the first).
	Cursor string
}

// ListBuilds reads one page of a project's builds, newest first (GET
// /projects/:id/builds).
func (c *Client) ListBuilds(ctx context.Context, projectID string, f BuildFilter) (*BuildList, error) {
	q := url.Values{}
	setIf(q, "status", f.Status)
	setIf(q, "platform", f.Platform)
	setIf(q, "arch", f.Arch)
	setIf(q, "version", f.Version)
	setIf(q, "cursor", f.Cursor)
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out BuildList
	if err := c.call(ctx, http.MethodGet, "/projects/"+url.PathEscape(projectID)+"/builds", q, nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list builds of %s: %w", projectID, err)
	}
	return &out, nil
}

// LogOptions select the entries of BuildLogs.
type LogOptions struct {
	// After skips the entries up to this sequence number (a previous page's
	// NextAfter; 0 from the start).
	After int64
	// Limit caps the entries of the answer (0: the whole rest of the log).
	Limit int
	// Level keeps this level and above: debug, info, warning, error ("" or
	// debug: every entry).
	Level string
}

// BuildLogs reads a build's log entries (GET /builds/:id/logs).
func (c *Client) BuildLogs(ctx context.Context, id string, opts LogOptions) (*LogPage, error) {
	q := url.Values{}
	if opts.After > 0 {
		q.Set("after", strconv.FormatInt(opts.After, 10))
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	setIf(q, "level", opts.Level)
	var out LogPage
	if err := c.call(ctx, http.MethodGet, "/builds/"+url.PathEscape(id)+"/logs", q, nil, nil, &out); err != nil {
		return nil, fmt.Errorf("logs of build %s: %w", id, err)
	}
	return &out, nil
}

// CancelBuild asks for a build to be cancelled (POST /builds/:id/cancel). The
// answer is the build: cancelled at once when it was not dispatched yet,
// otherwise it becomes cancelled once GitHub confirms. A finished build
// answers an *APIError with status 409.
func (c *Client) CancelBuild(ctx context.Context, id string) (*Build, error) {
	var out Build
	if err := c.call(ctx, http.MethodPost, "/builds/"+url.PathEscape(id)+"/cancel", nil, nil, nil, &out); err != nil {
		return nil, fmt.Errorf("cancel build %s: %w", id, err)
	}
	return &out, nil
}

// RetryBuild creates a new build of the same project, platform, arch and
// version (POST /builds/:id/retry); its RetryOf names id.
func (c *Client) RetryBuild(ctx context.Context, id string) (*Build, error) {
	var out Build
	if err := c.call(ctx, http.MethodPost, "/builds/"+url.PathEscape(id)+"/retry", nil, nil, nil, &out); err != nil {
		return nil, fmt.Errorf("retry build %s: %w", id, err)
	}
	return &out, nil
}

// GetProject reads a project (GET /projects/:id).
func (c *Client) GetProject(ctx context.Context, id string) (*Project, error) {
	var out Project
	if err := c.call(ctx, http.MethodGet, "/projects/"+url.PathEscape(id), nil, nil, nil, &out); err != nil {
		return nil, fmt.Errorf("get project %s: %w", id, err)
	}
	return &out, nil
}

// ListOptions page a list.
type ListOptions struct {
	Limit  int    // 1 to 200 (0: the server's default, 50)
	Cursor string // the NextCursor of the previous page
}

// ListProjects reads one page of the projects the key sees (GET /projects).
func (c *Client) ListProjects(ctx context.Context, opts ListOptions) (*ProjectList, error) {
	q := url.Values{}
	setIf(q, "cursor", opts.Cursor)
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	var out ProjectList
	if err := c.call(ctx, http.MethodGet, "/projects", q, nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	return &out, nil
}

func setIf(q url.Values, key, value string) {
	if value != "" {
		q.Set(key, value)
	}
}

// newRequest builds an authenticated request for path (already escaped,
// with query q).
func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body io.Reader) (*http.Request, error) {
	u := c.base.String() + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	req.Header.Set("User-Agent", c.agent)
	return req, nil
}

// call sends a JSON request and decodes a 2xx JSON answer into out; other
// answers become an *APIError.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, header http.Header, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := c.newRequest(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return c.readAPIError(resp)
	}
	dec := json.NewDecoder(resp.Body)
	if c.strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("decode the answer of %s %s: %w", method, req.URL.Path, err)
	}
	return nil
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// readAPIError turns a non-2xx answer into an *APIError. An answer that is
// not the error envelope (a proxy's HTML page; in strict mode, an envelope
// with fields this package does not know) keeps the start of its body as
// the message, and no code.
func (c *Client) readAPIError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &APIError{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if secs, err := strconv.Atoi(ra); err == nil {
			e.RetryAfter = time.Duration(secs) * time.Second
		}
	}
	var env errorEnvelope
	dec := json.NewDecoder(bytes.NewReader(data))
	if c.strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(&env); err == nil && env.Error.Code != "" {
		e.Code, e.Message, e.Field = env.Error.Code, env.Error.Message, env.Error.Field
		if env.RequestID != "" {
			e.RequestID = env.RequestID
		}
		return e
	}
	msg := strings.TrimSpace(string(data))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	e.Message = "unexpected answer: " + msg
	return e
}

// IsTransient reports whether err is worth retrying later: a network error,
// or an answer 429, 502, 503 or 504.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	// Decoding errors are the server's fault, not the network's.
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	return !errors.As(err, &syntax) && !errors.As(err, &typeErr)
}
