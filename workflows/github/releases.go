package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	gh "github.com/google/go-github/v62/github"

	"github.com/deskforge/deskforge/workflows"
)

// maxListPages bounds the pagination of release and asset lists.
const maxListPages = 100

// ErrNoSignedURL is returned by AssetDownloadURL when the server streams the
// asset itself instead of redirecting to a signed URL: it is
// workflows.ErrAssetStreamed (use OpenAsset).
var ErrNoSignedURL = workflows.ErrAssetStreamed

// releaseJSON and assetJSON decode releases raw: go-github v62's
// ReleaseAsset has no digest field.
type releaseJSON struct {
	ID      int64       `json:"id"`
	TagName string      `json:"tag_name"`
	Draft   bool        `json:"draft"`
	Assets  []assetJSON `json:"assets"`
}

type assetJSON struct {
	ID                 int64  `json:"id"`
	Name               string `json:"name"`
	Label              string `json:"label"`
	State              string `json:"state"`
	Size               int64  `json:"size"`
	ContentType        string `json:"content_type"`
	Digest             string `json:"digest"`
	BrowserDownloadURL string `json:"browser_download_url"`
}

// FindReleaseAsset finds the asset called name in the release tagged tag,
// drafts included (the releases list shows drafts to tokens that can push;
// GET releases/tags/{tag} does not). Releases are listed newest first; the
// first release with that tag holding a fully uploaded asset of that name
// wins. ErrNotFound when no release has the tag or none holds the asset.
func (c *Client) FindReleaseAsset(ctx context.Context, repo, tag, name string) (workflows.Asset, error) {
	op := fmt.Sprintf("find asset %s in release %s of %s", name, tag, repo)
	owner, repoName, err := splitRepo(repo)
	if err != nil {
		return workflows.Asset{}, fmt.Errorf("%s: %w", op, err)
	}
	releasesPath := repoPath(owner, repoName) + "/releases?per_page=100"
	tagged := 0
	for page, pages := 1, 0; page != 0 && pages < maxListPages; pages++ {
		var releases []releaseJSON
		next, err := c.getJSON(ctx, op, pagePath(releasesPath, page), &releases)
		if err != nil {
			return workflows.Asset{}, err
		}
		for _, r := range releases {
			if r.TagName != tag {
				continue
			}
			tagged++
			if a, ok := findAsset(r.Assets, name); ok {
				a.Draft = r.Draft
				return a, nil
			}
			// The inline list may be truncated or missing: ask the release.
			a, ok, err := c.findAssetOfRelease(ctx, op, owner, repoName, r.ID, name)
			if err != nil {
				return workflows.Asset{}, err
			}
			if ok {
				a.Draft = r.Draft
				return a, nil
			}
		}
		if next <= page {
			break
		}
		page = next
	}
	if tagged == 0 {
		return workflows.Asset{}, fmt.Errorf("%s: no release tagged %s: %w", op, tag, workflows.ErrNotFound)
	}
	return workflows.Asset{}, fmt.Errorf("%s: release has no uploaded asset named %s: %w", op, name, workflows.ErrNotFound)
}

// findAssetOfRelease lists the assets of one release, every page.
func (c *Client) findAssetOfRelease(ctx context.Context, op, owner, repo string, releaseID int64, name string) (workflows.Asset, bool, error) {
	assetsPath := fmt.Sprintf("%s/releases/%d/assets?per_page=100", repoPath(owner, repo), releaseID)
	for page, pages := 1, 0; page != 0 && pages < maxListPages; pages++ {
		var assets []assetJSON
		next, err := c.getJSON(ctx, op, pagePath(assetsPath, page), &assets)
		if err != nil {
			return workflows.Asset{}, false, err
		}
		if a, ok := findAsset(assets, name); ok {
			return a, true, nil
		}
		if next <= page {
			break
		}
		page = next
	}
	return workflows.Asset{}, false, nil
}

// findAsset picks the uploaded asset called name (an asset whose upload has
// not finished has state "starter").
func findAsset(assets []assetJSON, name string) (workflows.Asset, bool) {
	for _, a := range assets {
		if a.Name != name || (a.State != "" && a.State != "uploaded") {
			continue
		}
		return workflows.Asset{
			ID:                 a.ID,
			Name:               a.Name,
			Label:              a.Label,
			Size:               a.Size,
			ContentType:        a.ContentType,
			SHA256:             sha256FromDigest(a.Digest),
			BrowserDownloadURL: a.BrowserDownloadURL,
		}, true
	}
	return workflows.Asset{}, false
}

// sha256FromDigest returns the lower-case hex of a "sha256:<hex>" digest, or
// "" for any other digest.
func sha256FromDigest(digest string) string {
	algo, sum, ok := strings.Cut(digest, ":")
	if !ok || !strings.EqualFold(algo, "sha256") || len(sum) != 64 {
		return ""
	}
	for _, r := range sum {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return ""
		}
	}
	return strings.ToLower(sum)
}

// pagePath adds page to a path that already has a query.
func pagePath(path string, page int) string {
	if page <= 1 {
		return path
	}
	return fmt.Sprintf("%s&page=%d", path, page)
}

// getJSON GETs path and decodes its JSON answer into v, returning the next
// page (0 for none).
func (c *Client) getJSON(ctx context.Context, op, path string, v any) (int, error) {
	req, err := c.gh.NewRequest(http.MethodGet, path, nil)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	resp, err := c.gh.Do(ctx, req, v)
	if err != nil {
		return 0, translateError(ctx, op, resp, err)
	}
	return resp.NextPage, nil
}

// AssetDownloadURL returns the short-lived signed URL GitHub redirects to for
// an asset's bytes (no credentials needed to fetch it; the client's token is
// never part of it). ErrNoSignedURL when the server answers with the bytes
// themselves.
func (c *Client) AssetDownloadURL(ctx context.Context, repo string, assetID int64) (string, error) {
	op := fmt.Sprintf("get download url of asset %d of %s", assetID, repo)
	owner, name, err := splitRepo(repo)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	// With a nil followRedirectsClient, go-github v62 stops at the redirect
	// and returns its Location.
	body, location, err := c.dl.Repositories.DownloadReleaseAsset(ctx, owner, name, assetID, nil)
	if err != nil {
		return "", translateError(ctx, op, nil, err)
	}
	if body != nil {
		body.Close()
	}
	if location == "" {
		return "", fmt.Errorf("%s: %w", op, ErrNoSignedURL)
	}
	return location, nil
}

// RepositoryPrivate reports whether a repository is private (an "internal"
// repository counts as private: its assets need credentials).
func (c *Client) RepositoryPrivate(ctx context.Context, repo string) (bool, error) {
	op := fmt.Sprintf("get repository %s", repo)
	owner, name, err := splitRepo(repo)
	if err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	r, resp, err := c.gh.Repositories.Get(ctx, owner, name)
	if err != nil {
		return false, translateError(ctx, op, resp, err)
	}
	visibility := r.GetVisibility()
	return r.GetPrivate() || (visibility != "" && visibility != "public"), nil
}

// OpenAsset fetches an asset's bytes: GET releases/assets/{id} with Accept:
// application/octet-stream over the authenticated transport, without
// following redirects; a 302 is followed to the signed URL without
// credentials, a 200 (GitHub streaming the bytes itself) is returned as is.
// The Range header of header is forwarded both ways.
func (c *Client) OpenAsset(ctx context.Context, repo string, assetID int64, header http.Header) (*http.Response, error) {
	op := fmt.Sprintf("download asset %d of %s", assetID, repo)
	owner, name, err := splitRepo(repo)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	req, err := c.dl.NewRequest(http.MethodGet, fmt.Sprintf("%s/releases/assets/%d", repoPath(owner, name), assetID), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	req = req.WithContext(ctx)
	req.Header.Set("Accept", "application/octet-stream")
	rangeHeader := header.Get("Range")
	if rangeHeader != "" {
		req.Header.Set("Range", rangeHeader)
	}
	resp, err := c.assets.Do(req)
	if err != nil {
		return nil, translateError(ctx, op, nil, err)
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusPartialContent, http.StatusRequestedRangeNotSatisfiable:
		return resp, nil
	case http.StatusFound, http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusSeeOther:
		resp.Body.Close()
		signed := resp.Header.Get("Location")
		if signed == "" {
			return nil, fmt.Errorf("%s: %w", op, &workflows.TransientError{Status: resp.StatusCode, Err: errors.New("redirect without Location")})
		}
		get, err := http.NewRequestWithContext(ctx, http.MethodGet, signed, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: signed url: %w", op, err)
		}
		if rangeHeader != "" {
			get.Header.Set("Range", rangeHeader)
		}
		out, err := c.plain.Do(get)
		if err != nil {
			return nil, translateError(ctx, op+": fetch signed url", nil, err)
		}
		switch out.StatusCode {
		case http.StatusOK, http.StatusPartialContent, http.StatusRequestedRangeNotSatisfiable:
			return out, nil
		}
		resp = out
	}
	defer resp.Body.Close()
	if err := gh.CheckResponse(resp); err != nil {
		return nil, translateError(ctx, op, nil, err)
	}
	return nil, fmt.Errorf("%s: %w", op, &workflows.TransientError{Status: resp.StatusCode, Err: fmt.Errorf("unexpected answer %s", resp.Status)})
}
