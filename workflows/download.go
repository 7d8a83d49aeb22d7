package workflows

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/deskforge/deskforge/models"
)

// ErrNotReady is returned for the artifact of a build that has not
// succeeded (the API answers 409 not_ready).
var ErrNotReady = errors.New("the build has no artifact yet")

// Download modes (Options.DownloadMode).
const (
	DownloadRedirect = "redirect"
	DownloadProxy    = "proxy"
)

// ArtifactURL returns where a client downloads a successful build's
// installer from: the asset's browser_download_url for a public repository,
// else the short-lived signed URL GitHub gives for the asset (our token
// never reaches the client). ErrNotReady (wrapped) until the build has
// succeeded; ErrAssetStreamed (wrapped) when GitHub serves the asset's
// bytes itself rather than a signed URL: the caller then streams them
// through OpenArtifact.
func (e *Engine) ArtifactURL(ctx context.Context, b models.Build) (string, error) {
	if err := artifactReady(b); err != nil {
		return "", err
	}
	if !b.RepoPrivate && b.ArtifactDownloadURL != "" {
		return b.ArtifactDownloadURL, nil
	}
	u, err := e.forge.AssetDownloadURL(ctx, e.repoOf(b), *b.ArtifactAssetID)
	if err != nil {
		return "", fmt.Errorf("artifact of build %s: %w", b.ID, e.assetGone(ctx, b, err))
	}
	return u, nil
}

// OpenArtifact fetches a successful build's installer from GitHub for the
// proxy download mode. header carries the client's Range and If-Range,
// forwarded so that GitHub serves the requested part; the caller relays the
// answer (200, 206 or 416) and closes its body.
func (e *Engine) OpenArtifact(ctx context.Context, b models.Build, header http.Header) (*http.Response, error) {
	if err := artifactReady(b); err != nil {
		return nil, err
	}
	resp, err := e.fetchArtifact(ctx, b, header.Get("Range"))
	if err != nil {
		return nil, fmt.Errorf("artifact of build %s: %w", b.ID, e.assetGone(ctx, b, err))
	}
	switch {
	case resp.StatusCode == http.StatusOK, resp.StatusCode == http.StatusPartialContent,
		resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return resp, nil
	case resp.StatusCode == http.StatusNotFound:
		resp.Body.Close()
		return nil, fmt.Errorf("artifact of build %s: %w", b.ID, e.assetGone(ctx, b, ErrNotFound))
	case resp.StatusCode >= 500:
		resp.Body.Close()
		return nil, fmt.Errorf("artifact of build %s: %w", b.ID, &TransientError{Status: resp.StatusCode, Err: errors.New(resp.Status)})
	}
	resp.Body.Close()
	return nil, fmt.Errorf("artifact of build %s: %w", b.ID, &InvalidError{Status: resp.StatusCode, Message: "artifact download answered " + resp.Status})
}

// fetchArtifact GETs the asset's signed URL, or, when GitHub streams the
// asset instead of redirecting (ErrAssetStreamed), lets the forge fetch it.
func (e *Engine) fetchArtifact(ctx context.Context, b models.Build, rangeHeader string) (*http.Response, error) {
	header := http.Header{}
	if rangeHeader != "" {
		header.Set("Range", rangeHeader)
	}
	u, err := e.forge.AssetDownloadURL(ctx, e.repoOf(b), *b.ArtifactAssetID)
	if errors.Is(err, ErrAssetStreamed) {
		return e.forge.OpenAsset(ctx, e.repoOf(b), *b.ArtifactAssetID, header)
	}
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header = header
	resp, err := e.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, &TransientError{Err: err}
	}
	return resp, nil
}

func artifactReady(b models.Build) error {
	if b.Status != models.StatusSuccess || b.ArtifactAssetID == nil {
		return fmt.Errorf("build %s is %s: %w", b.ID, b.Status, ErrNotReady)
	}
	if b.SupersededBy != nil {
		return &SupersededError{BuildID: b.ID, By: *b.SupersededBy}
	}
	return nil
}
