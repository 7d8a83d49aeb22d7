package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/templates"
	"github.com/deskforge/deskforge/workflows/ghsim"
	"github.com/deskforge/deskforge/workflows/github"
)

// templateSetup starts a GitHub simulator with repo (default branch main,
// extra branch "release") holding the given workflow files, and returns it
// with a connect function pointing at it.
func templateSetup(t *testing.T, repo string, workflowFiles map[string][]byte) (*ghsim.Sim, connectFunc) {
	t.Helper()
	sim, srv := ghsim.NewServer(ghsim.Options{})
	t.Cleanup(srv.Close)
	if workflowFiles == nil {
		workflowFiles = map[string][]byte{}
	}
	require.NoError(t, sim.AddRepo(repo, ghsim.RepoOptions{
		Branches:  []string{"release"},
		Workflows: workflowFiles,
		Files:     map[string][]byte{"README.md": []byte("builder\n")},
	}))
	connect := func(ctx context.Context, _ string) (templateRepository, error) {
		return github.New(ctx, github.Options{BaseURL: srv.URL, Token: "test-token", WriteBurst: 100})
	}
	return sim, connect
}

func runTemplateCmd(t *testing.T, connect connectFunc, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := runTemplateWith(context.Background(), args, &stdout, &stderr, connect)
	return stdout.String(), stderr.String(), err
}

func mustTemplate(t *testing.T, name string) []byte {
	t.Helper()
	b, err := templates.Get(name)
	require.NoError(t, err)
	return b
}

func TestTemplateListAndShow(t *testing.T) {
	t.Parallel()
	out, _, err := runTemplateCmd(t, nil, "list")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, len(templates.Names()))
	for i, name := range templates.Names() {
		require.True(t, strings.HasPrefix(lines[i], name+" "), lines[i])
	}
	require.Contains(t, out, "for the builder repository")

	out, _, err = runTemplateCmd(t, nil, "show", "tauri-app")
	require.NoError(t, err)
	require.Equal(t, string(mustTemplate(t, "tauri-app")), out)

	_, _, err = runTemplateCmd(t, nil, "show", "nope")
	require.ErrorContains(t, err, `template "nope": unknown (have electron-app, tauri-app, webapp)`)

	out, _, err = runTemplateCmd(t, nil, "--help")
	require.NoError(t, err)
	for _, want := range []string{"DESKFORGE_GITHUB_TOKEN", "DESKFORGE_GITHUB_API_URL", "--direct", templates.InstallPath} {
		require.Contains(t, out, want)
	}
}

func TestTemplateUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"list", "extra"},
		{"show"},
		{"install"},
		{"install", "--repo"},
		{"install", "--repo", "a/b", "stray"},
		{"install", "--nope"},
	} {
		_, stderr, err := runTemplateCmd(t, nil, args...)
		require.ErrorIs(t, err, errUsage, "%q", args)
		require.Contains(t, stderr, "Usage:", "%q", args)
	}
	_, _, err := runTemplateCmd(t, nil, "install", "--repo", "not a repo")
	require.ErrorContains(t, err, `--repo "not a repo" must be OWNER/NAME`)
	_, _, err = runTemplateCmd(t, nil, "install", "--repo", "a/b", "--template", "qt-app")
	require.ErrorContains(t, err, `--template: template "qt-app": unknown`)
}

func TestTemplateInstallOpensPullRequest(t *testing.T) {
	t.Parallel()
	sim, connect := templateSetup(t, "acme/builder", nil)

	out, _, err := runTemplateCmd(t, connect, "install", "--repo", "acme/builder")
	require.NoError(t, err)
	pulls := sim.Pulls("acme/builder")
	require.Len(t, pulls, 1)
	pr := pulls[0]
	require.Equal(t, "main", pr.Base)
	require.True(t, strings.HasPrefix(pr.Head, "deskforge/install-webapp-"), pr.Head)
	require.Equal(t, "open", pr.State)
	require.Equal(t, "Install the DeskForge webapp workflow", pr.Title)
	require.Contains(t, out, "Opened pull request #1")
	require.Contains(t, out, "/acme/builder/pull/1")

	onBranch, ok := sim.File("acme/builder", pr.Head, templates.InstallPath)
	require.True(t, ok)
	require.Equal(t, mustTemplate(t, "webapp"), onBranch)
	_, onMain := sim.File("acme/builder", "main", templates.InstallPath)
	require.False(t, onMain, "main changes only when the pull request is merged")

	// Running it again finds the same pull request instead of opening another.
	out, _, err = runTemplateCmd(t, connect, "install", "--repo", "acme/builder")
	require.NoError(t, err)
	require.Contains(t, out, "already open (#1)")
	require.Len(t, sim.Pulls("acme/builder"), 1)

	// Once merged, the workflow is installed and up to date.
	require.NoError(t, sim.MergePull("acme/builder", 1))
	out, _, err = runTemplateCmd(t, connect, "install", "--repo", "acme/builder")
	require.NoError(t, err)
	require.Contains(t, out, "already up to date")
}

func TestTemplateInstallUpToDate(t *testing.T) {
	t.Parallel()
	sim, connect := templateSetup(t, "acme/app", map[string][]byte{"deskforge.yml": mustTemplate(t, "tauri-app")})
	before := sim.Branches("acme/app")

	for _, args := range [][]string{
		{"install", "--repo", "acme/app", "--template", "tauri-app"},
		{"install", "--repo", "acme/app", "--template", "tauri-app", "--direct"},
		{"install", "--repo", "acme/app", "--template", "tauri-app.yml", "--ref", "release"},
	} {
		out, _, err := runTemplateCmd(t, connect, args...)
		require.NoError(t, err, "%q", args)
		require.Contains(t, out, "is already up to date (template tauri-app")
	}
	require.Equal(t, before, sim.Branches("acme/app"), "no branch created, nothing committed")
	require.Empty(t, sim.Pulls("acme/app"))
}

func TestTemplateInstallNeverOverwritesWithoutDirect(t *testing.T) {
	t.Parallel()
	custom := []byte("name: my own workflow\non: push\njobs: {}\n")
	sim, connect := templateSetup(t, "acme/app", map[string][]byte{"deskforge.yml": custom})

	out, _, err := runTemplateCmd(t, connect, "install", "--repo", "acme/app", "--template", "electron-app")
	require.NoError(t, err)
	require.Contains(t, out, "Opened pull request #1 to update the electron-app template on acme/app@main")
	onMain, _ := sim.File("acme/app", "main", templates.InstallPath)
	require.Equal(t, custom, onMain, "the different file on the default branch is left alone")
	pulls := sim.Pulls("acme/app")
	require.Len(t, pulls, 1)
	require.Equal(t, "Update the DeskForge electron-app workflow", pulls[0].Title)
	require.Contains(t, pulls[0].Body, "replaces")
	proposed, _ := sim.File("acme/app", pulls[0].Head, templates.InstallPath)
	require.Equal(t, mustTemplate(t, "electron-app"), proposed)

	out, _, err = runTemplateCmd(t, connect, "install", "--repo", "acme/app", "--template", "electron-app", "--direct")
	require.NoError(t, err)
	require.Contains(t, out, "Replacing the different "+templates.InstallPath+" on acme/app@main (--direct)")
	require.Contains(t, out, "Committed "+templates.InstallPath+" to acme/app@main")
	onMain, _ = sim.File("acme/app", "main", templates.InstallPath)
	require.Equal(t, mustTemplate(t, "electron-app"), onMain)
	require.Len(t, sim.Pulls("acme/app"), 1, "--direct opens no pull request")
}

func TestTemplateInstallDirectOnRef(t *testing.T) {
	t.Parallel()
	sim, connect := templateSetup(t, "acme/builder", nil)
	out, _, err := runTemplateCmd(t, connect, "install", "--repo", "acme/builder", "--ref", "release", "--direct")
	require.NoError(t, err)
	require.Contains(t, out, "Committed "+templates.InstallPath+" to acme/builder@release")
	got, ok := sim.File("acme/builder", "release", templates.InstallPath)
	require.True(t, ok)
	require.Equal(t, mustTemplate(t, "webapp"), got)
	_, onMain := sim.File("acme/builder", "main", templates.InstallPath)
	require.False(t, onMain)
	require.Empty(t, sim.Pulls("acme/builder"))
}

func TestTemplateInstallUnknownRepoOrBranch(t *testing.T) {
	t.Parallel()
	_, connect := templateSetup(t, "acme/builder", nil)
	_, _, err := runTemplateCmd(t, connect, "install", "--repo", "acme/nope")
	require.EqualError(t, err, "repository acme/nope not found or not accessible with this token")

	_, _, err = runTemplateCmd(t, connect, "install", "--repo", "acme/builder", "--ref", "gh-pages")
	require.EqualError(t, err, `branch "gh-pages" not found in acme/builder`)
}

func TestTemplateInstallNeedsToken(t *testing.T) {
	t.Setenv("DESKFORGE_GITHUB_TOKEN", "")
	var stdout, stderr bytes.Buffer
	err := runTemplate(context.Background(), []string{"install", "--repo", "acme/builder"}, &stdout, &stderr)
	require.ErrorContains(t, err, "DESKFORGE_GITHUB_TOKEN is not set")

	t.Setenv("DESKFORGE_GITHUB_TOKEN", "x")
	t.Setenv("DESKFORGE_GITHUB_API_URL", "ftp://example.com")
	err = runTemplate(context.Background(), []string{"install", "--repo", "acme/builder"}, &stdout, &stderr)
	require.ErrorContains(t, err, "DESKFORGE_GITHUB_API_URL")
}

func TestTemplateInstallKnowsTheForgeKind(t *testing.T) {
	t.Parallel()
	sim, simConnect := templateSetup(t, "acme/builder", nil)
	var asked []string
	connect := func(ctx context.Context, forge string) (templateRepository, error) {
		asked = append(asked, forge)
		return simConnect(ctx, forge)
	}
	_, _, err := runTemplateCmd(t, connect, "install", "--repo", "acme/builder", "--direct", "--forge", "forgejo")
	require.NoError(t, err)
	require.Equal(t, []string{ForgeGitea}, asked, "Forgejo is served by the Gitea client")
	got, ok := sim.File("acme/builder", "main", templates.InstallPath)
	require.True(t, ok)
	want, err := templates.GetFor(templates.ForgeGitea, "webapp")
	require.NoError(t, err)
	require.Equal(t, want, got, "the Gitea variant of the template is installed")

	_, _, err = runTemplateCmd(t, connect, "install", "--repo", "acme/builder", "--forge", "gitea", "--template", "electron-app")
	require.ErrorContains(t, err, `template "electron-app" has no Gitea variant`)
	_, _, err = runTemplateCmd(t, connect, "install", "--repo", "acme/builder", "--forge", "gitlab")
	require.ErrorContains(t, err, `--forge "gitlab"`)
	require.Len(t, asked, 1, "nothing connects for a template or forge that does not exist")
}

func TestTemplateShowGiteaVariant(t *testing.T) {
	t.Parallel()
	out, _, err := runTemplateCmd(t, nil, "show", "webapp", "--forge", "gitea")
	require.NoError(t, err)
	want, err := templates.GetFor(templates.ForgeGitea, "webapp")
	require.NoError(t, err)
	require.Equal(t, string(want), out)
	out, _, err = runTemplateCmd(t, nil, "show", "webapp")
	require.NoError(t, err)
	require.Equal(t, string(mustTemplate(t, "webapp")), out)
}
