package github

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	gh "github.com/google/go-github/v62/github"

	"github.com/deskforge/deskforge/workflows"
)

// releaseByTag finds the release tagged tag among all releases (drafts have
// no tag yet for GitHub's get-by-tag endpoint, so list them).
func (c *Client) releaseByTag(ctx context.Context, op, owner, name, tag string) (releaseJSON, error) {
	releasesPath := repoPath(owner, name) + "/releases?per_page=100"
	for page, pages := 1, 0; page != 0 && pages < maxListPages; pages++ {
		var releases []releaseJSON
		next, err := c.getJSON(ctx, op, pagePath(releasesPath, page), &releases)
		if err != nil {
			return releaseJSON{}, err
		}
		for _, r := range releases {
			if r.TagName == tag {
				return r, nil
			}
		}
		if next <= page {
			break
		}
		page = next
	}
	return releaseJSON{}, fmt.Errorf("%s: no release tagged %s: %w", op, tag, workflows.ErrNotFound)
}

// UploadReleaseAsset implements workflows.Forge: POST to the upload URL
// (uploads.github.com, or the server's upload path on GHES).
func (c *Client) UploadReleaseAsset(ctx context.Context, repo, tag, name, contentType string, data []byte) (workflows.Asset, error) {
	op := fmt.Sprintf("upload asset %s to release %s of %s", name, tag, repo)
	owner, repoName, err := splitRepo(repo)
	if err != nil {
		return workflows.Asset{}, fmt.Errorf("%s: %w", op, err)
	}
	rel, err := c.releaseByTag(ctx, op, owner, repoName, tag)
	if err != nil {
		return workflows.Asset{}, err
	}
	a, resp, err := c.upload(ctx, op, owner, repoName, rel.ID, name, contentType, data)
	if err != nil && isAlreadyExists(err) {
		// GitHub documents that an upload failing upstream (502) "may leave
		// an empty asset with a state of starter. It can be safely
		// deleted": an earlier attempt's leftover, not an upload, so delete
		// it and upload once more.
		starter, found, lerr := c.starterAsset(ctx, op, owner, repoName, rel.ID, name)
		if lerr != nil {
			return workflows.Asset{}, lerr
		}
		if found {
			if derr := c.deleteAsset(ctx, op, owner, repoName, starter); derr != nil {
				return workflows.Asset{}, derr
			}
			c.log.Info("deleted an asset an earlier upload left in state starter; uploading again",
				"repo", repo, "tag", tag, "asset", name, "asset_id", starter)
			a, resp, err = c.upload(ctx, op, owner, repoName, rel.ID, name, contentType, data)
		}
	}
	if err != nil {
		return workflows.Asset{}, translateError(ctx, op, resp, err)
	}
	out, _ := findAsset([]assetJSON{a}, a.Name)
	out.Draft = rel.Draft
	return out, nil
}

// upload sends one upload request; the error is go-github's, untranslated.
func (c *Client) upload(ctx context.Context, op, owner, repo string, releaseID int64, name, contentType string, data []byte) (assetJSON, *gh.Response, error) {
	path := fmt.Sprintf("%s/releases/%d/assets?name=%s", repoPath(owner, repo), releaseID, url.QueryEscape(name))
	req, err := c.gh.NewUploadRequest(path, bytes.NewReader(data), int64(len(data)), contentType)
	if err != nil {
		return assetJSON{}, nil, fmt.Errorf("%s: %w", op, err)
	}
	var a assetJSON
	resp, err := c.gh.Do(ctx, req, &a)
	return a, resp, err
}

// isAlreadyExists recognises GitHub's 422 for an upload whose name the
// release already has: errors [{resource: ReleaseAsset, code:
// already_exists, field: name}].
func isAlreadyExists(err error) bool {
	var answer *gh.ErrorResponse
	if !errors.As(err, &answer) || answer.Response == nil || answer.Response.StatusCode != http.StatusUnprocessableEntity {
		return false
	}
	for _, d := range answer.Errors {
		if d.Code == "already_exists" {
			return true
		}
	}
	return false
}

// starterAsset finds the asset called name of a release if it is in state
// "starter" (an upload that failed upstream).
func (c *Client) starterAsset(ctx context.Context, op, owner, repo string, releaseID int64, name string) (int64, bool, error) {
	assetsPath := fmt.Sprintf("%s/releases/%d/assets?per_page=100", repoPath(owner, repo), releaseID)
	for page, pages := 1, 0; page != 0 && pages < maxListPages; pages++ {
		var assets []assetJSON
		next, err := c.getJSON(ctx, op, pagePath(assetsPath, page), &assets)
		if err != nil {
			return 0, false, err
		}
		for _, a := range assets {
			if a.Name == name {
				return a.ID, a.State == "starter", nil
			}
		}
		if next <= page {
			break
		}
		page = next
	}
	return 0, false, nil
}

// deleteAsset deletes a release asset (a paced write); one already gone
// is fine.
func (c *Client) deleteAsset(ctx context.Context, op, owner, repo string, assetID int64) error {
	if err := c.paceWrite(ctx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	req, err := c.gh.NewRequest(http.MethodDelete, fmt.Sprintf("%s/releases/assets/%d", repoPath(owner, repo), assetID), nil)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	resp, err := c.gh.Do(ctx, req, nil)
	if err != nil {
		if terr := translateError(ctx, op+": delete starter asset", resp, err); !errors.Is(terr, workflows.ErrNotFound) {
			return terr
		}
	}
	return nil
}

// PublishRelease implements workflows.Forge: PATCH the release with its
// body and draft=false.
func (c *Client) PublishRelease(ctx context.Context, repo, tag, notes string) (string, error) {
	op := fmt.Sprintf("publish release %s of %s", tag, repo)
	owner, repoName, err := splitRepo(repo)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	rel, err := c.releaseByTag(ctx, op, owner, repoName, tag)
	if err != nil {
		return "", err
	}
	body := map[string]any{"draft": false, "body": notes}
	req, err := c.gh.NewRequest(http.MethodPatch, fmt.Sprintf("%s/releases/%d", repoPath(owner, repoName), rel.ID), body)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	var answer struct {
		HTMLURL string `json:"html_url"`
	}
	resp, err := c.gh.Do(ctx, req, &answer)
	if err != nil {
		return "", translateError(ctx, op, resp, err)
	}
	return answer.HTMLURL, nil
}
