package github_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/workflows"
	"github.com/deskforge/deskforge/workflows/ghsim"
	"github.com/deskforge/deskforge/workflows/github"
)

// contentsSetup starts a simulator holding acme/app (default branch trunk,
// one README) and returns a client for it.
func contentsSetup(t *testing.T) (*github.Client, *ghsim.Sim) {
	t.Helper()
	sim, srv := ghsim.NewServer(ghsim.Options{})
	t.Cleanup(srv.Close)
	require.NoError(t, sim.AddRepo("acme/app", ghsim.RepoOptions{
		DefaultBranch: "trunk",
		Workflows:     map[string][]byte{},
		Files:         map[string][]byte{"README.md": []byte("# app\n"), "docs/a.md": []byte("a")},
	}))
	client, err := github.New(context.Background(), github.Options{BaseURL: srv.URL, Token: "t0ken", WriteBurst: 100})
	require.NoError(t, err)
	return client, sim
}

func TestDefaultBranch(t *testing.T) {
	t.Parallel()
	client, _ := contentsSetup(t)
	ctx := context.Background()
	branch, err := client.DefaultBranch(ctx, "acme/app")
	require.NoError(t, err)
	require.Equal(t, "trunk", branch)

	_, err = client.DefaultBranch(ctx, "acme/missing")
	require.ErrorIs(t, err, workflows.ErrNotFound)

	_, err = client.DefaultBranch(ctx, "not-a-repo")
	var invalid *workflows.InvalidError
	require.ErrorAs(t, err, &invalid)
}

func TestGetFile(t *testing.T) {
	t.Parallel()
	client, _ := contentsSetup(t)
	ctx := context.Background()

	f, err := client.GetFile(ctx, "acme/app", "README.md", "trunk")
	require.NoError(t, err)
	require.Equal(t, "README.md", f.Path)
	require.Equal(t, "# app\n", string(f.Content))
	require.Len(t, f.SHA, 40)

	_, err = client.GetFile(ctx, "acme/app", "nope.txt", "trunk")
	require.ErrorIs(t, err, workflows.ErrNotFound)
	_, err = client.GetFile(ctx, "acme/app", "README.md", "no-such-branch")
	require.ErrorIs(t, err, workflows.ErrNotFound)

	_, err = client.GetFile(ctx, "acme/app", "docs", "trunk")
	var invalid *workflows.InvalidError
	require.ErrorAs(t, err, &invalid, "a directory is not a file")
}

func TestBranchesFilesAndPullRequests(t *testing.T) {
	t.Parallel()
	client, sim := contentsSetup(t)
	ctx := context.Background()

	trunk, err := client.BranchSHA(ctx, "acme/app", "trunk")
	require.NoError(t, err)
	require.Len(t, trunk, 40)
	_, err = client.BranchSHA(ctx, "acme/app", "feature")
	require.ErrorIs(t, err, workflows.ErrNotFound)

	require.NoError(t, client.CreateBranch(ctx, "acme/app", "feature", trunk))
	sha, err := client.BranchSHA(ctx, "acme/app", "feature")
	require.NoError(t, err)
	require.Equal(t, trunk, sha)
	var invalid *workflows.InvalidError
	require.ErrorAs(t, client.CreateBranch(ctx, "acme/app", "feature", trunk), &invalid, "branch exists")
	require.Equal(t, 422, invalid.Status)

	commit, err := client.PutFile(ctx, "acme/app", github.PutFileRequest{
		Path: "ci/x.yml", Branch: "feature", Message: "add x", Content: []byte("v1\n"),
	})
	require.NoError(t, err)
	require.Len(t, commit.SHA, 40)
	got, ok := sim.File("acme/app", "feature", "ci/x.yml")
	require.True(t, ok)
	require.Equal(t, "v1\n", string(got))
	_, onTrunk := sim.File("acme/app", "trunk", "ci/x.yml")
	require.False(t, onTrunk, "the commit went to the branch only")

	_, err = client.PutFile(ctx, "acme/app", github.PutFileRequest{Path: "ci/x.yml", Branch: "feature", Message: "again", Content: []byte("v2\n")})
	require.ErrorAs(t, err, &invalid, "creating a file that exists needs its sha")

	f, err := client.GetFile(ctx, "acme/app", "ci/x.yml", "feature")
	require.NoError(t, err)
	_, err = client.PutFile(ctx, "acme/app", github.PutFileRequest{Path: "ci/x.yml", Branch: "feature", Message: "v2", Content: []byte("v2\n"), SHA: f.SHA})
	require.NoError(t, err)
	got, _ = sim.File("acme/app", "feature", "ci/x.yml")
	require.Equal(t, "v2\n", string(got))
	_, err = client.PutFile(ctx, "acme/app", github.PutFileRequest{Path: "ci/x.yml", Branch: "feature", Message: "stale", Content: []byte("v3\n"), SHA: f.SHA})
	require.ErrorAs(t, err, &invalid, "stale sha")
	require.Equal(t, 409, invalid.Status)

	_, err = client.FindOpenPullRequest(ctx, "acme/app", "feature", "trunk")
	require.ErrorIs(t, err, workflows.ErrNotFound)
	pr, err := client.CreatePullRequest(ctx, "acme/app", github.NewPullRequest{Title: "Add x", Body: "why", Head: "feature", Base: "trunk"})
	require.NoError(t, err)
	require.Equal(t, 1, pr.Number)
	require.NotEmpty(t, pr.HTMLURL)
	require.Equal(t, "feature", pr.Head)
	require.Equal(t, "trunk", pr.Base)
	found, err := client.FindOpenPullRequest(ctx, "acme/app", "feature", "trunk")
	require.NoError(t, err)
	require.Equal(t, pr, found)

	_, err = client.CreatePullRequest(ctx, "acme/app", github.NewPullRequest{Title: "Again", Head: "feature", Base: "trunk"})
	require.ErrorAs(t, err, &invalid, "one open pull request per head and base")
	require.Contains(t, invalid.Message, "already exists")

	_, err = client.CreatePullRequest(ctx, "acme/missing", github.NewPullRequest{Title: "x", Head: "a", Base: "b"})
	require.True(t, errors.Is(err, workflows.ErrNotFound))
}
