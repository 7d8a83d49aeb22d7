package ghsim

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-github/v62/github"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/templates"
)

func TestGetRepository(t *testing.T) {
	t.Parallel()
	e := setup(t)
	repo, _, err := e.gh.Repositories.Get(e.ctx, testOwner, testName)
	require.NoError(t, err)
	require.Equal(t, testName, repo.GetName())
	require.Equal(t, testRepo, repo.GetFullName())
	require.Equal(t, testOwner, repo.GetOwner().GetLogin())
	require.Equal(t, "main", repo.GetDefaultBranch())
	require.Equal(t, "public", repo.GetVisibility())
	require.False(t, repo.GetPrivate())
	require.NotZero(t, repo.GetID())
	require.True(t, strings.HasPrefix(repo.GetHTMLURL(), e.srv.URL), repo.GetHTMLURL())
	require.True(t, repo.GetPermissions()["push"])
}

func TestContentsAPI(t *testing.T) {
	t.Parallel()
	e := setup(t)
	file, dir, _, err := e.gh.Repositories.GetContents(e.ctx, testOwner, testName, "README.md", nil)
	require.NoError(t, err)
	require.Nil(t, dir)
	require.Equal(t, "file", file.GetType())
	require.Equal(t, "base64", file.GetEncoding())
	require.Equal(t, "README.md", file.GetName())
	require.Equal(t, "README.md", file.GetPath())
	require.Equal(t, len("# builder\n"), file.GetSize())
	content, err := file.GetContent()
	require.NoError(t, err)
	require.Equal(t, "# builder\n", content)
	require.Equal(t, "46521ddf03b289ab6c590916c67607a73d62323c", file.GetSHA(), "git hash-object of the content")

	raw, err := http.Get(file.GetDownloadURL())
	require.NoError(t, err)
	rawBody, _ := io.ReadAll(raw.Body)
	raw.Body.Close()
	require.Equal(t, "# builder\n", string(rawBody))

	// A long file comes back wrapped at 60 characters, as on GitHub.
	long := strings.Repeat("0123456789", 30)
	require.NoError(t, e.sim.SetFile(testRepo, "dev", "docs/long.txt", []byte(long)))
	file, _, _, err = e.gh.Repositories.GetContents(e.ctx, testOwner, testName, "docs/long.txt", &github.RepositoryContentGetOptions{Ref: "dev"})
	require.NoError(t, err)
	require.Contains(t, strings.TrimSuffix(*file.Content, "\n"), "\n")
	content, err = file.GetContent()
	require.NoError(t, err)
	require.Equal(t, long, content)

	_, dir, _, err = e.gh.Repositories.GetContents(e.ctx, testOwner, testName, ".github", nil)
	require.NoError(t, err)
	require.Len(t, dir, 1)
	require.Equal(t, "dir", dir[0].GetType())
	require.Equal(t, ".github/workflows", dir[0].GetPath())
	_, dir, _, err = e.gh.Repositories.GetContents(e.ctx, testOwner, testName, ".github/workflows", nil)
	require.NoError(t, err)
	require.Len(t, dir, 1)
	require.Equal(t, "deskforge.yml", dir[0].GetName())

	var ghErr *github.ErrorResponse
	_, _, resp, err := e.gh.Repositories.GetContents(e.ctx, testOwner, testName, "docs/long.txt", nil)
	require.ErrorAs(t, err, &ghErr, "only on dev")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	_, _, resp, err = e.gh.Repositories.GetContents(e.ctx, testOwner, testName, "README.md", &github.RepositoryContentGetOptions{Ref: "nope"})
	require.ErrorAs(t, err, &ghErr)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, "No commit found for the ref nope", ghErr.Message)
}

func TestRefsContentsWritesAndPulls(t *testing.T) {
	t.Parallel()
	e := setup(t)
	mainRef, _, err := e.gh.Git.GetRef(e.ctx, testOwner, testName, "heads/main")
	require.NoError(t, err)
	require.Equal(t, "refs/heads/main", mainRef.GetRef())
	mainSHA := mainRef.GetObject().GetSHA()
	require.Equal(t, e.sim.Branches(testRepo)["main"], mainSHA)
	require.Equal(t, "commit", mainRef.GetObject().GetType())

	// The legacy plural path answers the same object for an exact ref.
	var viaRefs github.Reference
	req, _ := e.gh.NewRequest(http.MethodGet, "repos/"+testRepo+"/git/refs/heads/main", nil)
	_, err = e.gh.Do(e.ctx, req, &viaRefs)
	require.NoError(t, err)
	require.Equal(t, mainSHA, viaRefs.GetObject().GetSHA())

	var ghErr *github.ErrorResponse
	_, resp, err := e.gh.Git.GetRef(e.ctx, testOwner, testName, "heads/deskforge-template")
	require.ErrorAs(t, err, &ghErr)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	// Create a branch, once.
	ref, resp, err := e.gh.Git.CreateRef(e.ctx, testOwner, testName, &github.Reference{Ref: github.String("refs/heads/deskforge-template"), Object: &github.GitObject{SHA: github.String(mainSHA)}})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, mainSHA, ref.GetObject().GetSHA())
	_, _, err = e.gh.Git.CreateRef(e.ctx, testOwner, testName, &github.Reference{Ref: github.String("refs/heads/deskforge-template"), Object: &github.GitObject{SHA: github.String(mainSHA)}})
	require.ErrorAs(t, err, &ghErr)
	require.Equal(t, http.StatusUnprocessableEntity, ghErr.Response.StatusCode)
	require.Equal(t, "Reference already exists", ghErr.Message)
	_, _, err = e.gh.Git.CreateRef(e.ctx, testOwner, testName, &github.Reference{Ref: github.String("refs/heads/other"), Object: &github.GitObject{SHA: github.String(strings.Repeat("a", 40))}})
	require.ErrorAs(t, err, &ghErr)
	require.Equal(t, "Object does not exist", ghErr.Message)

	all, _, err := e.gh.Git.ListMatchingRefs(e.ctx, testOwner, testName, nil)
	require.NoError(t, err)
	require.Len(t, all, 3) // deskforge-template, dev, main
	deskforge, _, err := e.gh.Git.ListMatchingRefs(e.ctx, testOwner, testName, &github.ReferenceListOptions{Ref: "heads/desk"})
	require.NoError(t, err)
	require.Len(t, deskforge, 1)
	require.Equal(t, "refs/heads/deskforge-template", deskforge[0].GetRef())

	// Write a new workflow on the branch.
	wf := []byte(strings.Replace(string(testWorkflow()), "DeskForge build", "DeskForge build v2", 1))
	path := ".github/workflows/deskforge-v2.yml"
	created, resp, err := e.gh.Repositories.CreateFile(e.ctx, testOwner, testName, path, &github.RepositoryContentFileOptions{
		Message: github.String("Add DeskForge workflow"), Content: wf, Branch: github.String("deskforge-template"),
	})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, blobSHA(wf), created.Content.GetSHA())
	require.Equal(t, "Add DeskForge workflow", created.Commit.GetMessage())
	require.Equal(t, mainSHA, created.Commit.Parents[0].GetSHA())
	got, found := e.sim.File(testRepo, "deskforge-template", path)
	require.True(t, found)
	require.Equal(t, wf, got)
	_, found = e.sim.File(testRepo, "main", path)
	require.False(t, found)

	// Overwriting an existing file needs its current sha, as on GitHub.
	path = templates.InstallPath
	current, _, _, err := e.gh.Repositories.GetContents(e.ctx, testOwner, testName, path, &github.RepositoryContentGetOptions{Ref: "deskforge-template"})
	require.NoError(t, err)
	_, _, err = e.gh.Repositories.CreateFile(e.ctx, testOwner, testName, path, &github.RepositoryContentFileOptions{
		Message: github.String("again"), Content: wf, Branch: github.String("deskforge-template"),
	})
	require.ErrorAs(t, err, &ghErr)
	require.Equal(t, http.StatusUnprocessableEntity, ghErr.Response.StatusCode)
	require.Equal(t, "Invalid request.\n\n\"sha\" wasn't supplied.", ghErr.Message)
	_, _, err = e.gh.Repositories.UpdateFile(e.ctx, testOwner, testName, path, &github.RepositoryContentFileOptions{
		Message: github.String("stale"), Content: []byte("x"), SHA: github.String(blobSHA([]byte("old"))), Branch: github.String("deskforge-template"),
	})
	require.ErrorAs(t, err, &ghErr)
	require.Equal(t, http.StatusConflict, ghErr.Response.StatusCode)
	require.Equal(t, fmt.Sprintf("%s does not match %s", path, blobSHA([]byte("old"))), ghErr.Message)
	updated, resp, err := e.gh.Repositories.UpdateFile(e.ctx, testOwner, testName, path, &github.RepositoryContentFileOptions{
		Message: github.String("Update"), Content: wf, SHA: github.String(current.GetSHA()), Branch: github.String("deskforge-template"),
	})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, created.Commit.GetSHA(), updated.Commit.Parents[0].GetSHA())
	_, _, err = e.gh.Repositories.CreateFile(e.ctx, testOwner, testName, "x.txt", &github.RepositoryContentFileOptions{
		Message: github.String("x"), Content: []byte("x"), Branch: github.String("nope"),
	})
	require.ErrorAs(t, err, &ghErr)
	require.Equal(t, http.StatusNotFound, ghErr.Response.StatusCode)
	req, _ = e.gh.NewRequest(http.MethodPut, "repos/"+testRepo+"/contents/y.txt", map[string]any{"content": base64.StdEncoding.EncodeToString([]byte("y"))})
	_, err = e.gh.Do(e.ctx, req, nil)
	require.ErrorAs(t, err, &ghErr)
	require.Equal(t, "Invalid request.\n\n\"message\" wasn't supplied.", ghErr.Message)

	// The plural refs path lists refs under a prefix.
	var list []*github.Reference
	req, _ = e.gh.NewRequest(http.MethodGet, "repos/"+testRepo+"/git/refs/heads", nil)
	_, err = e.gh.Do(e.ctx, req, &list)
	require.NoError(t, err)
	require.Len(t, list, 3) // main, dev, deskforge-template

	// Open a pull request, once.
	pr, resp, err := e.gh.PullRequests.Create(e.ctx, testOwner, testName, &github.NewPullRequest{
		Title: github.String("Add the DeskForge workflow"), Head: github.String("deskforge-template"), Base: github.String("main"), Body: github.String("Installs " + path),
	})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, 1, pr.GetNumber())
	require.Equal(t, "open", pr.GetState())
	require.Contains(t, pr.GetHTMLURL(), "/pull/1")
	require.Equal(t, "deskforge-template", pr.GetHead().GetRef())
	require.Equal(t, "main", pr.GetBase().GetRef())
	_, _, err = e.gh.PullRequests.Create(e.ctx, testOwner, testName, &github.NewPullRequest{
		Title: github.String("again"), Head: github.String(testOwner + ":deskforge-template"), Base: github.String("main"),
	})
	require.ErrorAs(t, err, &ghErr)
	require.Equal(t, "Validation Failed", ghErr.Message)
	require.Equal(t, "A pull request already exists for acme:deskforge-template.", ghErr.Errors[0].Message)
	_, _, err = e.gh.PullRequests.Create(e.ctx, testOwner, testName, &github.NewPullRequest{Title: github.String("same"), Head: github.String("dev"), Base: github.String("main")})
	require.ErrorAs(t, err, &ghErr)
	require.Equal(t, "No commits between main and dev", ghErr.Errors[0].Message)
	_, _, err = e.gh.PullRequests.Create(e.ctx, testOwner, testName, &github.NewPullRequest{Title: github.String("x"), Head: github.String("nope"), Base: github.String("main")})
	require.ErrorAs(t, err, &ghErr)
	require.Equal(t, "head", ghErr.Errors[0].Field)

	open, _, err := e.gh.PullRequests.List(e.ctx, testOwner, testName, &github.PullRequestListOptions{Head: testOwner + ":deskforge-template", State: "open"})
	require.NoError(t, err)
	require.Len(t, open, 1)
	none, _, err := e.gh.PullRequests.List(e.ctx, testOwner, testName, &github.PullRequestListOptions{Head: testOwner + ":dev"})
	require.NoError(t, err)
	require.Empty(t, none)
	one, _, err := e.gh.PullRequests.Get(e.ctx, testOwner, testName, 1)
	require.NoError(t, err)
	require.Equal(t, "Installs "+path, one.GetBody())

	// Merged, the workflow lands on main and becomes dispatchable there.
	require.NoError(t, e.sim.MergePull(testRepo, 1))
	merged, _ := e.sim.File(testRepo, "main", path)
	require.Equal(t, wf, merged)
	closed, _, err := e.gh.PullRequests.List(e.ctx, testOwner, testName, &github.PullRequestListOptions{State: "closed"})
	require.NoError(t, err)
	require.Len(t, closed, 1)
	require.True(t, closed[0].GetMerged())
	_, err = e.gh.Actions.CreateWorkflowDispatchEventByFileName(e.ctx, testOwner, testName, "deskforge-v2.yml", github.CreateWorkflowDispatchEventRequest{
		Ref: "main", Inputs: contractInputs("build_01hx0merged", "linux", "x64", "1.0.0"),
	})
	require.NoError(t, err)
	require.Equal(t, "deskforge-v2.yml", e.sim.Runs(testRepo)[0].Workflow)
	require.Equal(t, []PullInfo{{Number: 1, Title: "Add the DeskForge workflow", Body: "Installs " + path, Head: "deskforge-template", Base: "main", State: "closed", Merged: true}}, e.sim.Pulls(testRepo))
}

func TestInstallOnARepositoryWithoutWorkflows(t *testing.T) {
	t.Parallel()
	e := setup(t)
	require.NoError(t, e.sim.AddRepo("acme/tauri-app", RepoOptions{Workflows: map[string][]byte{}, DefaultBranch: "trunk"}))
	_, err := e.gh.Actions.CreateWorkflowDispatchEventByFileName(e.ctx, "acme", "tauri-app", "deskforge.yml", github.CreateWorkflowDispatchEventRequest{Ref: "trunk"})
	var ghErr *github.ErrorResponse
	require.ErrorAs(t, err, &ghErr)
	require.Equal(t, http.StatusNotFound, ghErr.Response.StatusCode)
	_, _, err = e.gh.Repositories.CreateFile(e.ctx, "acme", "tauri-app", templates.InstallPath, &github.RepositoryContentFileOptions{
		Message: github.String("Add DeskForge workflow"), Content: testWorkflow(),
	})
	require.NoError(t, err, "no branch: the default branch")
	_, err = e.gh.Actions.CreateWorkflowDispatchEventByFileName(e.ctx, "acme", "tauri-app", "deskforge.yml", github.CreateWorkflowDispatchEventRequest{
		Ref: "trunk", Inputs: contractInputs("build_01hx0direct", "linux", "x64", "1.0.0"),
	})
	require.NoError(t, err)
	require.Error(t, e.sim.AddRepo("acme/tauri-app", RepoOptions{}), "duplicate")
	require.Error(t, e.sim.AddRepo("no-slash", RepoOptions{}))
}
