package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Release is a release as GET /releases/:id shows it (also each item of a
// release list, and the answers of create, cancel and retry): one version of
// a project built for a set of targets, published once every target
// succeeded.
type Release struct {
	ID        string   `json:"id"`
	ProjectID string   `json:"projectId"`
	Version   string   `json:"version"`
	Targets   []string `json:"targets"` // "platform/arch"
	Notes     string   `json:"notes"`
	// Status is queued, building, success, failed or cancelled; a retry
	// brings a failed or cancelled release back to building.
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"createdAt"`
	CompletedAt *time.Time `json:"completedAt"`
	// PublishedAt is when the GitHub release was published; nil until then
	// (a successful release is published by a background job shortly
	// after its last target succeeded).
	PublishedAt *time.Time `json:"publishedAt"`
	// ReleaseURL is the published GitHub release's web page.
	ReleaseURL *string        `json:"releaseUrl"`
	Builds     []ReleaseBuild `json:"builds"`
	Assets     []ReleaseAsset `json:"assets"`
}

// ReleaseBuild is the current build of one target of a release (a retry
// replaces the target's failed build).
type ReleaseBuild struct {
	ID       string `json:"id"`
	Platform string `json:"platform"`
	Arch     string `json:"arch"`
	Status   string `json:"status"`
}

// ReleaseAsset is one file of a release: an installer, the checksums or an
// update manifest.
type ReleaseAsset struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"` // installer, checksums, manifest
	Size   *int64 `json:"size"`
	SHA256 string `json:"sha256"`
	URL    string `json:"url"`
}

// ReleaseList is one page of GET /projects/:id/releases, newest first.
type ReleaseList struct {
	Releases   []Release `json:"releases"`
	Total      int64     `json:"total"`
	NextCursor *string   `json:"nextCursor"`
}

// ReleaseRequest is the body of CreateRelease. Empty fields take the
// server's defaults: the project's version, every platform of the project
// on both arches, no notes.
type ReleaseRequest struct {
	Version string   `json:"version,omitempty"`
	Targets []string `json:"targets,omitempty"` // "mac/arm64", "windows/x64", …
	Notes   string   `json:"notes,omitempty"`
	// IdempotencyKey, when set, is sent as the Idempotency-Key header: the
	// same request repeated within 24 hours answers the same release.
	IdempotencyKey string `json:"-"`
}

// CreateRelease creates a release of a project and one build per target
// (POST /projects/:id/releases). A version already published answers an
// *APIError with status 409 and code version_published.
func (c *Client) CreateRelease(ctx context.Context, projectID string, req ReleaseRequest) (*Release, error) {
	var out Release
	var header http.Header
	if req.IdempotencyKey != "" {
		header = http.Header{"Idempotency-Key": {req.IdempotencyKey}}
	}
	if err := c.call(ctx, http.MethodPost, "/projects/"+url.PathEscape(projectID)+"/releases", nil, header, req, &out); err != nil {
		return nil, fmt.Errorf("create release of %s: %w", projectID, err)
	}
	return &out, nil
}

// GetRelease reads a release (GET /releases/:id).
func (c *Client) GetRelease(ctx context.Context, id string) (*Release, error) {
	var out Release
	if err := c.call(ctx, http.MethodGet, "/releases/"+url.PathEscape(id), nil, nil, nil, &out); err != nil {
		return nil, fmt.Errorf("get release %s: %w", id, err)
	}
	return &out, nil
}

// ListReleases reads one page of a project's releases, newest first (GET
// /projects/:id/releases).
func (c *Client) ListReleases(ctx context.Context, projectID string, opts ListOptions) (*ReleaseList, error) {
	q := url.Values{}
	setIf(q, "cursor", opts.Cursor)
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	var out ReleaseList
	if err := c.call(ctx, http.MethodGet, "/projects/"+url.PathEscape(projectID)+"/releases", q, nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list releases of %s: %w", projectID, err)
	}
	return &out, nil
}

// CancelRelease cancels the builds of a release that still run (POST
// /releases/:id/cancel); the release becomes cancelled once they are. A
// release with nothing left to cancel answers an *APIError with status 409
// and code release_not_running.
func (c *Client) CancelRelease(ctx context.Context, id string) (*Release, error) {
	var out Release
	if err := c.call(ctx, http.MethodPost, "/releases/"+url.PathEscape(id)+"/cancel", nil, nil, nil, &out); err != nil {
		return nil, fmt.Errorf("cancel release %s: %w", id, err)
	}
	return &out, nil
}

// RetryRelease rebuilds the failed and cancelled targets of a failed or
// cancelled release (POST /releases/:id/retry); succeeded targets are kept.
// Any other release answers an *APIError with status 409 and code
// release_not_retryable.
func (c *Client) RetryRelease(ctx context.Context, id string) (*Release, error) {
	var out Release
	if err := c.call(ctx, http.MethodPost, "/releases/"+url.PathEscape(id)+"/retry", nil, nil, nil, &out); err != nil {
		return nil, fmt.Errorf("retry release %s: %w", id, err)
	}
	return &out, nil
}

// ReleaseDone reports whether a release has nothing more to do: failed,
// cancelled, or successful and published.
func ReleaseDone(r *Release) bool {
	switch r.Status {
	case StatusFailed, StatusCancelled:
		return true
	case StatusSuccess:
		return r.PublishedAt != nil
	}
	return false
}

// WatchRelease follows a release until ReleaseDone, calling fn with the
// release whenever its status, publication or one of its builds' status
// changed (always on the first poll), and returns the last release. It
// stops early when ctx ends (returning ctx's error; the release goes on on
// the server), when fn returns an error, or after opts.MaxFailures failed
// polls in a row. Only opts.Interval and opts.MaxFailures are used.
func (c *Client) WatchRelease(ctx context.Context, id string, opts WatchOptions, fn func(*Release) error) (*Release, error) {
	var last *Release
	fetch := func() (*Release, error) { return c.GetRelease(ctx, id) }
	err := pollUntil(ctx, opts, fetch, func(r *Release) (bool, error) {
		prev := last
		last = r
		if prev == nil || releaseChanged(prev, r) {
			if err := fn(r); err != nil {
				return false, err
			}
		}
		return ReleaseDone(r), nil
	})
	return last, err
}

// releaseChanged reports whether r differs from prev in what a watcher
// shows.
func releaseChanged(prev, r *Release) bool {
	if prev.Status != r.Status || (prev.PublishedAt == nil) != (r.PublishedAt == nil) || len(prev.Builds) != len(r.Builds) {
		return true
	}
	for i := range r.Builds {
		if prev.Builds[i] != r.Builds[i] {
			return true
		}
	}
	return false
}
