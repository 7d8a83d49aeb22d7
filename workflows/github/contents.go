package github

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	gh "github.com/google/go-github/v62/github"

	"github.com/deskforge/deskforge/workflows"
)

// This file holds what `deskforge template install` needs from GitHub:
// reading and writing one file through the contents API, branches, and pull
// requests. Errors are translated like the Forge methods' (ErrNotFound,
// *workflows.InvalidError, ...).

// RepoFile is a file read from a repository at some ref.
type RepoFile struct {
	Path    string
	SHA     string // blob SHA, needed to update the file
	Content []byte
	HTMLURL string
}

// PutFileRequest creates or updates one file with one commit.
type PutFileRequest struct {
	Path    string
	Branch  string // "" = the default branch
	Message string
	Content []byte
	// SHA is the blob SHA of the file being replaced; "" creates the file
	// (GitHub refuses to create a file that exists, and to update one whose
	// SHA changed meanwhile: 409 or 422, an *workflows.InvalidError).
	SHA string
}

// FileCommit is the commit PutFile made.
type FileCommit struct {
	SHA     string
	HTMLURL string
}

// NewPullRequest is a pull request to open.
type NewPullRequest struct {
	Title string
	Body  string
	Head  string // branch in the same repository
	Base  string
}

// PullRequest is an open pull request.
type PullRequest struct {
	Number  int
	HTMLURL string
	Head    string
	Base    string
}

// DefaultBranch returns a repository's default branch. ErrNotFound when the
// repository does not exist or the token cannot see it.
func (c *Client) DefaultBranch(ctx context.Context, repo string) (string, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return "", err
	}
	r, resp, err := c.gh.Repositories.Get(ctx, owner, name)
	if err != nil {
		return "", translateError(ctx, "get repository "+repo, resp, err)
	}
	if r.GetDefaultBranch() == "" {
		return "", fmt.Errorf("get repository %s: GitHub named no default branch", repo)
	}
	return r.GetDefaultBranch(), nil
}

// GetFile reads the file at path on ref (a branch, tag or commit SHA; "" =
// the default branch). ErrNotFound when the file (or the ref) does not exist;
// *workflows.InvalidError when path is a directory.
func (c *Client) GetFile(ctx context.Context, repo, path, ref string) (RepoFile, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return RepoFile{}, err
	}
	op := fmt.Sprintf("get %s at %q in %s", path, ref, repo)
	file, dir, resp, err := c.gh.Repositories.GetContents(ctx, owner, name, path, &gh.RepositoryContentGetOptions{Ref: ref})
	if err != nil {
		return RepoFile{}, translateError(ctx, op, resp, err)
	}
	if file == nil || dir != nil {
		return RepoFile{}, fmt.Errorf("%s: %w", op, &workflows.InvalidError{Status: http.StatusOK, Message: path + " is a directory"})
	}
	content, err := file.GetContent()
	if err != nil {
		return RepoFile{}, fmt.Errorf("%s: decode content: %w", op, err)
	}
	return RepoFile{Path: file.GetPath(), SHA: file.GetSHA(), Content: []byte(content), HTMLURL: file.GetHTMLURL()}, nil
}

// BranchSHA returns the commit SHA a branch points at. ErrNotFound when the
// branch does not exist.
func (c *Client) BranchSHA(ctx context.Context, repo, branch string) (string, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return "", err
	}
	ref, resp, err := c.gh.Git.GetRef(ctx, owner, name, "heads/"+branch)
	if err != nil {
		return "", translateError(ctx, fmt.Sprintf("get branch %s of %s", branch, repo), resp, err)
	}
	return ref.GetObject().GetSHA(), nil
}

// CreateBranch creates branch at the commit sha. A branch that already
// exists is an *workflows.InvalidError (422).
func (c *Client) CreateBranch(ctx context.Context, repo, branch, sha string) error {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return err
	}
	if err := c.paceWrite(ctx); err != nil {
		return err
	}
	op := fmt.Sprintf("create branch %s of %s", branch, repo)
	_, resp, err := c.gh.Git.CreateRef(ctx, owner, name, &gh.Reference{
		Ref:    gh.String("refs/heads/" + branch),
		Object: &gh.GitObject{SHA: gh.String(sha)},
	})
	return translateError(ctx, op, resp, err)
}

// PutFile creates or updates a file with one commit on req.Branch.
func (c *Client) PutFile(ctx context.Context, repo string, req PutFileRequest) (FileCommit, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return FileCommit{}, err
	}
	if err := c.paceWrite(ctx); err != nil {
		return FileCommit{}, err
	}
	opts := &gh.RepositoryContentFileOptions{
		Message: gh.String(req.Message),
		Content: req.Content, // go-github base64-encodes it
	}
	if req.Branch != "" {
		opts.Branch = gh.String(req.Branch)
	}
	op := fmt.Sprintf("create %s on %q in %s", req.Path, req.Branch, repo)
	var (
		answer *gh.RepositoryContentResponse
		resp   *gh.Response
	)
	if req.SHA == "" {
		answer, resp, err = c.gh.Repositories.CreateFile(ctx, owner, name, req.Path, opts)
	} else {
		op = fmt.Sprintf("update %s on %q in %s", req.Path, req.Branch, repo)
		opts.SHA = gh.String(req.SHA)
		answer, resp, err = c.gh.Repositories.UpdateFile(ctx, owner, name, req.Path, opts)
	}
	if err != nil {
		return FileCommit{}, translateError(ctx, op, resp, err)
	}
	return FileCommit{SHA: answer.Commit.GetSHA(), HTMLURL: answer.Commit.GetHTMLURL()}, nil
}

// CreatePullRequest opens a pull request. GitHub refuses (422, an
// *workflows.InvalidError) when one is already open for the same head and
// base, or when head has no commits beyond base.
func (c *Client) CreatePullRequest(ctx context.Context, repo string, req NewPullRequest) (PullRequest, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return PullRequest{}, err
	}
	if err := c.paceWrite(ctx); err != nil {
		return PullRequest{}, err
	}
	pr, resp, err := c.gh.PullRequests.Create(ctx, owner, name, &gh.NewPullRequest{
		Title: gh.String(req.Title),
		Body:  gh.String(req.Body),
		Head:  gh.String(req.Head),
		Base:  gh.String(req.Base),
	})
	if err != nil {
		return PullRequest{}, translateError(ctx, fmt.Sprintf("open pull request %s -> %s in %s", req.Head, req.Base, repo), resp, err)
	}
	return pullRequestFromGitHub(pr), nil
}

// FindOpenPullRequest returns the open pull request from branch head into
// base, or ErrNotFound when there is none.
func (c *Client) FindOpenPullRequest(ctx context.Context, repo, head, base string) (PullRequest, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return PullRequest{}, err
	}
	op := fmt.Sprintf("find pull request %s -> %s in %s", head, base, repo)
	prs, resp, err := c.gh.PullRequests.List(ctx, owner, name, &gh.PullRequestListOptions{
		State: "open",
		Head:  owner + ":" + head,
		Base:  base,
	})
	if err != nil {
		return PullRequest{}, translateError(ctx, op, resp, err)
	}
	for _, pr := range prs {
		if pr.GetHead().GetRef() == head && strings.EqualFold(pr.GetBase().GetRef(), base) {
			return pullRequestFromGitHub(pr), nil
		}
	}
	return PullRequest{}, fmt.Errorf("%s: %w", op, workflows.ErrNotFound)
}

func pullRequestFromGitHub(pr *gh.PullRequest) PullRequest {
	return PullRequest{
		Number:  pr.GetNumber(),
		HTMLURL: pr.GetHTMLURL(),
		Head:    pr.GetHead().GetRef(),
		Base:    pr.GetBase().GetRef(),
	}
}
