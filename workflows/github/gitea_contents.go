package github

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	gh "github.com/google/go-github/v62/github"

	"github.com/deskforge/deskforge/workflows"
)

// What `deskforge template install` needs from Gitea where its API differs
// from GitHub's: branches have their own routes (GET git/refs answers a
// list on Gitea, and refs cannot be created), a file is created with POST
// (PUT updates one), and pull requests cannot be filtered by head.
// DefaultBranch, GetFile, updates through PutFile and CreatePullRequest are
// the GitHub client's.

// BranchSHA returns the commit a branch points at (GET branches/{branch}).
// ErrNotFound when the branch does not exist.
func (g *Gitea) BranchSHA(ctx context.Context, repo, branch string) (string, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return "", err
	}
	var b struct {
		Commit struct {
			ID string `json:"id"`
		} `json:"commit"`
	}
	if _, err := g.get(ctx, fmt.Sprintf("get branch %s of %s", branch, repo), repoPath(owner, name)+"/branches/"+url.PathEscape(branch), &b); err != nil {
		return "", err
	}
	return b.Commit.ID, nil
}

// CreateBranch creates branch at the commit sha (POST branches with
// old_ref_name). An existing branch is an *workflows.InvalidError (409).
func (g *Gitea) CreateBranch(ctx context.Context, repo, branch, sha string) error {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return err
	}
	if err := g.paceWrite(ctx); err != nil {
		return err
	}
	op := fmt.Sprintf("create branch %s of %s", branch, repo)
	req, err := g.gh.NewRequest(http.MethodPost, repoPath(owner, name)+"/branches", map[string]string{
		"new_branch_name": branch, "old_ref_name": sha,
	})
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	resp, err := g.gh.Do(ctx, req, nil)
	return translateError(ctx, op, resp, err)
}

// PutFile creates (POST contents/{path}) or updates (PUT, with the blob
// SHA) a file with one commit on req.Branch.
func (g *Gitea) PutFile(ctx context.Context, repo string, req PutFileRequest) (FileCommit, error) {
	if req.SHA != "" {
		return g.Client.PutFile(ctx, repo, req)
	}
	owner, name, err := splitRepo(repo)
	if err != nil {
		return FileCommit{}, err
	}
	if err := g.paceWrite(ctx); err != nil {
		return FileCommit{}, err
	}
	op := fmt.Sprintf("create %s on %q in %s", req.Path, req.Branch, repo)
	body := map[string]string{"message": req.Message, "content": base64.StdEncoding.EncodeToString(req.Content)}
	if req.Branch != "" {
		body["branch"] = req.Branch
	}
	segments := strings.Split(req.Path, "/")
	for i, s := range segments {
		segments[i] = url.PathEscape(s)
	}
	httpReq, err := g.gh.NewRequest(http.MethodPost, repoPath(owner, name)+"/contents/"+strings.Join(segments, "/"), body)
	if err != nil {
		return FileCommit{}, fmt.Errorf("%s: %w", op, err)
	}
	var answer gh.RepositoryContentResponse
	resp, err := g.gh.Do(ctx, httpReq, &answer)
	if err != nil {
		return FileCommit{}, translateError(ctx, op, resp, err)
	}
	return FileCommit{SHA: answer.Commit.GetSHA(), HTMLURL: answer.Commit.GetHTMLURL()}, nil
}

// FindOpenPullRequest returns the open pull request from branch head into
// base (Gitea's list cannot filter by head: the open ones are read, up to
// maxListPages pages), or ErrNotFound.
func (g *Gitea) FindOpenPullRequest(ctx context.Context, repo, head, base string) (PullRequest, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return PullRequest{}, err
	}
	op := fmt.Sprintf("find pull request %s -> %s in %s", head, base, repo)
	path := fmt.Sprintf("%s/pulls?state=open&limit=%d", repoPath(owner, name), giteaPageSize)
	for page, pages := 1, 0; pages < maxListPages; pages++ {
		var prs []*gh.PullRequest
		next, err := g.get(ctx, op, pagePath(path, page), &prs)
		if err != nil {
			return PullRequest{}, err
		}
		for _, pr := range prs {
			if pr.GetHead().GetRef() == head && strings.EqualFold(pr.GetBase().GetRef(), base) {
				return pullRequestFromGitHub(pr), nil
			}
		}
		if next <= page {
			break
		}
		page = next
	}
	return PullRequest{}, fmt.Errorf("%s: %w", op, workflows.ErrNotFound)
}
