package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/deskforge/deskforge/templates"
	"github.com/deskforge/deskforge/workflows"
	"github.com/deskforge/deskforge/workflows/github"
)

const templateUsage = `Usage:
  deskforge template list
  deskforge template show NAME [--forge gitea]
  deskforge template install --repo OWNER/NAME [--template NAME] [--ref BRANCH] [--direct] [--forge KIND]

Workflow templates are the GitHub Actions workflows DeskForge dispatches builds to. They
are built into this binary; "list" names them, "show" prints one.

"install" writes a template to ` + templates.InstallPath + ` in a repository through
the GitHub API. By default it commits the file to a new branch (deskforge/install-...)
and opens a pull request against BRANCH, printing its URL: nothing on BRANCH changes
until the pull request is merged. With --direct it commits straight to BRANCH instead,
replacing a different file there. When BRANCH already has exactly this template it says
"already up to date" and changes nothing.

Flags of install:
  --repo OWNER/NAME   repository to install into (required): your builder repository
                      (DESKFORGE_BUILDER_REPO) for web-app projects, or the app's own
                      repository
  --template NAME     template to install (default webapp)
  --ref BRANCH        branch to install on (default: the repository's default branch)
  --direct            commit to BRANCH instead of opening a pull request
  --forge KIND        github (default) or gitea (Gitea or Forgejo: installs the template's
                      Gitea variant, which needs nothing from github.com and uploads
                      through Gitea's API); default DESKFORGE_FORGE

Environment:
  DESKFORGE_GITHUB_TOKEN    token allowed to write the repository's contents, workflows
                            and pull requests (required by install): a fine-grained token
                            with Contents, Workflows and Pull requests read/write, or a
                            classic token with the repo and workflow scopes
  DESKFORGE_GITHUB_API_URL  REST API root, for GitHub Enterprise Server
                            ("https://github.example.com/api/v3") or the DeskForge GitHub
                            simulator; default https://api.github.com; for Gitea or
                            Forgejo their API root ("https://gitea.example.com/api/v1/",
                            also accepted as DESKFORGE_FORGE_URL)
`

// templateDescriptions says which project each embedded template is for.
var templateDescriptions = map[string]string{
	"webapp":       "wraps a web app URL in a Tauri v2 window; for the builder repository",
	"tauri-app":    "builds the Tauri v2 app of the repository it is installed in",
	"electron-app": "packages the Electron app of the repository it is installed in (electron-builder)",
}

// templateRepository is what `template install` needs from GitHub; the
// workflows/github client implements it.
type templateRepository interface {
	DefaultBranch(ctx context.Context, repo string) (string, error)
	BranchSHA(ctx context.Context, repo, branch string) (string, error)
	GetFile(ctx context.Context, repo, path, ref string) (github.RepoFile, error)
	CreateBranch(ctx context.Context, repo, branch, sha string) error
	PutFile(ctx context.Context, repo string, req github.PutFileRequest) (github.FileCommit, error)
	CreatePullRequest(ctx context.Context, repo string, req github.NewPullRequest) (github.PullRequest, error)
	FindOpenPullRequest(ctx context.Context, repo, head, base string) (github.PullRequest, error)
}

// connectFunc returns the GitHub client `template install` uses.
// forge is the forge kind (ForgeGitHub or ForgeGitea).
type connectFunc func(ctx context.Context, forge string) (templateRepository, error)

// runTemplate implements `deskforge template`.
func runTemplate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runTemplateWith(ctx, args, stdout, stderr, connectFromEnv)
}

// connectFromEnv builds the client of the forge kind from
// DESKFORGE_GITHUB_TOKEN and DESKFORGE_GITHUB_API_URL (or its alias
// DESKFORGE_FORGE_URL): GitHub, or Gitea/Forgejo.
func connectFromEnv(ctx context.Context, forge string) (templateRepository, error) {
	token := os.Getenv("DESKFORGE_GITHUB_TOKEN")
	if token == "" {
		return nil, errors.New("DESKFORGE_GITHUB_TOKEN is not set: export a token that may write the repository's contents, workflows and pull requests (see --help)")
	}
	apiURL := os.Getenv("DESKFORGE_GITHUB_API_URL")
	if apiURL == "" {
		apiURL = os.Getenv("DESKFORGE_FORGE_URL")
	}
	if forge == ForgeGitea {
		client, err := github.NewGitea(ctx, github.GiteaOptions{Options: github.Options{Token: token, BaseURL: apiURL}})
		if err != nil {
			return nil, fmt.Errorf("DESKFORGE_FORGE_URL: %w", err)
		}
		return client, nil
	}
	client, err := github.New(ctx, github.Options{Token: token, BaseURL: apiURL})
	if err != nil {
		return nil, fmt.Errorf("DESKFORGE_GITHUB_API_URL: %w", err)
	}
	return client, nil
}

// runTemplateWith is runTemplate with the GitHub connection injected (tests
// point it at the simulator).
func runTemplateWith(ctx context.Context, args []string, stdout, stderr io.Writer, connect connectFunc) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, templateUsage)
		return errUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, templateUsage)
		return nil
	case "list":
		if len(args) != 1 {
			fmt.Fprintf(stderr, "deskforge template list takes no arguments\n\n%s", templateUsage)
			return errUsage
		}
		return listTemplates(stdout)
	case "show":
		forge := ""
		if len(args) == 4 && (args[2] == "--forge" || args[2] == "-forge") {
			forge, args = strings.ToLower(args[3]), args[:2]
		}
		if len(args) != 2 || strings.HasPrefix(args[1], "-") {
			fmt.Fprintf(stderr, "deskforge template show needs one template name (%s)\n\n%s", strings.Join(templates.Names(), ", "), templateUsage)
			return errUsage
		}
		if forge == "forgejo" {
			forge = ForgeGitea
		}
		content, err := templates.GetFor(forge, args[1])
		if err != nil {
			return err
		}
		_, err = stdout.Write(content)
		return err
	case "install":
		return runTemplateInstall(ctx, args[1:], stdout, stderr, connect)
	default:
		fmt.Fprintf(stderr, "deskforge template: unknown command %q\n\n%s", args[0], templateUsage)
		return errUsage
	}
}

func listTemplates(stdout io.Writer) error {
	for _, name := range templates.Names() {
		desc := templateDescriptions[name]
		if desc == "" {
			desc = workflowName(name)
		}
		if _, err := fmt.Fprintf(stdout, "%-14s %s\n", name, desc); err != nil {
			return err
		}
	}
	return nil
}

// workflowName is the name: a template declares, for templates without a
// description here.
func workflowName(name string) string {
	content, err := templates.Get(name)
	if err != nil {
		return ""
	}
	var w struct {
		Name string `yaml:"name"`
	}
	if yaml.Unmarshal(content, &w) != nil {
		return ""
	}
	return w.Name
}

var repoNameRe = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?/[A-Za-z0-9._-]+$`)

// installOptions are the flags of `template install`.
type installOptions struct {
	repo     string
	template string
	ref      string
	direct   bool
	forge    string // ForgeGitHub or ForgeGitea ("forgejo" too)
}

func runTemplateInstall(ctx context.Context, args []string, stdout, stderr io.Writer, connect connectFunc) error {
	fs := flag.NewFlagSet("template install", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var opts installOptions
	fs.StringVar(&opts.repo, "repo", "", "")
	fs.StringVar(&opts.template, "template", "webapp", "")
	fs.StringVar(&opts.ref, "ref", "", "")
	fs.BoolVar(&opts.direct, "direct", false, "")
	fs.StringVar(&opts.forge, "forge", os.Getenv("DESKFORGE_FORGE"), "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, templateUsage)
			return nil
		}
		fmt.Fprintf(stderr, "deskforge template install: %v\n\n%s", err, templateUsage)
		return errUsage
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "deskforge template install: unexpected argument %q\n\n%s", fs.Arg(0), templateUsage)
		return errUsage
	case opts.repo == "":
		fmt.Fprintf(stderr, "deskforge template install: --repo OWNER/NAME is required\n\n%s", templateUsage)
		return errUsage
	case !repoNameRe.MatchString(opts.repo):
		return fmt.Errorf("--repo %q must be OWNER/NAME, e.g. acme/deskforge-builder", opts.repo)
	}
	switch strings.ToLower(opts.forge) {
	case "", ForgeGitHub:
		opts.forge = ForgeGitHub
	case ForgeGitea, "forgejo":
		opts.forge = ForgeGitea
	default:
		return fmt.Errorf("--forge %q: use github or gitea (also for Forgejo)", opts.forge)
	}
	content, err := templates.GetFor(opts.forge, opts.template)
	if err != nil {
		return fmt.Errorf("--template: %w", err)
	}
	client, err := connect(ctx, opts.forge)
	if err != nil {
		return err
	}
	return installTemplate(ctx, client, opts, content, stdout)
}

// installTemplate writes content to templates.InstallPath in opts.repo,
// through a pull request or (--direct) a commit on the ref.
func installTemplate(ctx context.Context, client templateRepository, opts installOptions, content []byte, stdout io.Writer) error {
	repo := opts.repo
	defaultBranch, err := client.DefaultBranch(ctx, repo)
	if errors.Is(err, workflows.ErrNotFound) {
		return fmt.Errorf("repository %s not found or not accessible with this token", repo)
	}
	if err != nil {
		return fmt.Errorf("install into %s: %w", repo, err)
	}
	base := opts.ref
	if base == "" {
		base = defaultBranch
	}
	baseSHA, err := client.BranchSHA(ctx, repo, base)
	if errors.Is(err, workflows.ErrNotFound) {
		return fmt.Errorf("branch %q not found in %s", base, repo)
	}
	if err != nil {
		return fmt.Errorf("install into %s: %w", repo, err)
	}
	existing, found, err := getFile(ctx, client, repo, base)
	if err != nil {
		return err
	}
	where := fmt.Sprintf("%s@%s", repo, base)
	if found && bytes.Equal(existing.Content, content) {
		fmt.Fprintf(stdout, "%s on %s is already up to date (template %s); nothing to do\n", templates.InstallPath, where, opts.template)
		return nil
	}

	verb := "Install"
	if found {
		verb = "Update"
	}
	message := fmt.Sprintf("%s the DeskForge %s workflow", verb, opts.template)

	if opts.direct {
		if found {
			fmt.Fprintf(stdout, "Replacing the different %s on %s (--direct)\n", templates.InstallPath, where)
		}
		commit, err := client.PutFile(ctx, repo, github.PutFileRequest{
			Path: templates.InstallPath, Branch: base, Message: message, Content: content, SHA: existing.SHA,
		})
		if err != nil {
			return explainWriteError(repo, err)
		}
		fmt.Fprintf(stdout, "Committed %s to %s: %s\n", templates.InstallPath, where, commitLink(commit))
		return nil
	}

	// The branch is named after the content, so running install again
	// reuses the branch and pull request of an earlier run.
	sum := sha256.Sum256(content)
	branch := fmt.Sprintf("deskforge/install-%s-%s", opts.template, hex.EncodeToString(sum[:])[:10])
	_, err = client.BranchSHA(ctx, repo, branch)
	switch {
	case errors.Is(err, workflows.ErrNotFound):
		if err := client.CreateBranch(ctx, repo, branch, baseSHA); err != nil {
			return explainWriteError(repo, err)
		}
	case err != nil:
		return fmt.Errorf("install into %s: %w", repo, err)
	}
	onBranch, foundOnBranch, err := getFile(ctx, client, repo, branch)
	if err != nil {
		return err
	}
	if !foundOnBranch || !bytes.Equal(onBranch.Content, content) {
		if _, err := client.PutFile(ctx, repo, github.PutFileRequest{
			Path: templates.InstallPath, Branch: branch, Message: message, Content: content, SHA: onBranch.SHA,
		}); err != nil {
			return explainWriteError(repo, err)
		}
	}

	pr, err := client.FindOpenPullRequest(ctx, repo, branch, base)
	switch {
	case err == nil:
		fmt.Fprintf(stdout, "A pull request to %s the %s template on %s is already open (#%d):\n%s\n", strings.ToLower(verb), opts.template, where, pr.Number, pr.HTMLURL)
		return nil
	case !errors.Is(err, workflows.ErrNotFound):
		return fmt.Errorf("install into %s: %w", repo, err)
	}
	pr, err = client.CreatePullRequest(ctx, repo, github.NewPullRequest{
		Title: message,
		Body:  pullRequestBody(opts.template, found),
		Head:  branch,
		Base:  base,
	})
	if err != nil {
		return fmt.Errorf("open a pull request from %s into %s (if the branch is left over from an earlier install, delete it and retry, or use --direct): %w", branch, where, err)
	}
	fmt.Fprintf(stdout, "Opened pull request #%d to %s the %s template on %s:\n%s\n", pr.Number, strings.ToLower(verb), opts.template, where, pr.HTMLURL)
	return nil
}

// getFile reads templates.InstallPath on ref; found is false when it does
// not exist.
func getFile(ctx context.Context, client templateRepository, repo, ref string) (github.RepoFile, bool, error) {
	f, err := client.GetFile(ctx, repo, templates.InstallPath, ref)
	if errors.Is(err, workflows.ErrNotFound) {
		return github.RepoFile{}, false, nil
	}
	if err != nil {
		return github.RepoFile{}, false, fmt.Errorf("read %s on %s@%s: %w", templates.InstallPath, repo, ref, err)
	}
	return f, true, nil
}

// explainWriteError adds what usually causes a refused write: GitHub only
// lets tokens with the workflow permission touch .github/workflows.
func explainWriteError(repo string, err error) error {
	var invalid *workflows.InvalidError
	if errors.Is(err, workflows.ErrNotFound) || errors.As(err, &invalid) && (invalid.Status == 403 || invalid.Status == 404) {
		return fmt.Errorf("GitHub refused to write to %s: the token needs write access to its contents and workflows "+
			"(fine-grained: Contents and Workflows read/write; classic: repo and workflow scopes): %w", repo, err)
	}
	return fmt.Errorf("write to %s: %w", repo, err)
}

func commitLink(c github.FileCommit) string {
	if c.HTMLURL != "" {
		return c.HTMLURL
	}
	return c.SHA
}

func pullRequestBody(template string, replaces bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "This pull request was opened by `deskforge template install`.\n\n")
	if replaces {
		fmt.Fprintf(&b, "It replaces `%s` with the current DeskForge `%s` workflow template.\n\n", templates.InstallPath, template)
	} else {
		fmt.Fprintf(&b, "It adds the DeskForge `%s` workflow template as `%s`.\n\n", template, templates.InstallPath)
	}
	fmt.Fprintf(&b, "DeskForge dispatches this workflow with the inputs `build_id`, `platform`, `arch`, `version`, `runner` and `config`, "+
		"and it uploads one installer per build to the release `v<version>` of this repository. "+
		"Code signing is optional: see the secrets the workflow reads (APPLE_* for macOS, WINDOWS_CERTIFICATE* for Windows).\n")
	return b.String()
}
