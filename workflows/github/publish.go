package github

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"

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
	path := fmt.Sprintf("%s/releases/%d/assets?name=%s", repoPath(owner, repoName), rel.ID, url.QueryEscape(name))
	req, err := c.gh.NewUploadRequest(path, bytes.NewReader(data), int64(len(data)), contentType)
	if err != nil {
		return workflows.Asset{}, fmt.Errorf("%s: %w", op, err)
	}
	var a assetJSON
	resp, err := c.gh.Do(ctx, req, &a)
	if err != nil {
		return workflows.Asset{}, translateError(ctx, op, resp, err)
	}
	out, _ := findAsset([]assetJSON{a}, a.Name)
	out.Draft = rel.Draft
	return out, nil
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
