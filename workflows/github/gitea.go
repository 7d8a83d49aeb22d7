package github

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	gh "github.com/google/go-github/v62/github"
	"golang.org/x/time/rate"

	"github.com/deskforge/deskforge/workflows"
)

// This file is the Gitea flavour of the Forge: Gitea Actions (and Forgejo
// Actions, which speaks Gitea's API) behind the same workflows.Forge as
// GitHub. go-github still talks to Gitea for what is compatible (releases,
// repositories, uploads); what differs is adapted here. Every difference was
// observed on Gitea 1.27.3 with gitea-runner v1.0.8; the recorded answers
// are in testdata/gitea.

// Defaults of the GiteaOptions that have one.
const (
	// DefaultGiteaReadsPerSecond paces the reads of a Gitea client: Gitea
	// answers neither ETags (conditional requests) nor rate-limit headers,
	// so every poll costs a full answer and nothing tells DeskForge to slow
	// down: it keeps a fixed, modest pace instead.
	DefaultGiteaReadsPerSecond = 5
	DefaultGiteaReadBurst      = 10
	// giteaPageSize is Gitea's largest page (its MAX_RESPONSE_ITEMS, 50 by
	// default); per_page is ignored, limit is read.
	giteaPageSize = 50
	// giteaRunPages bounds the dispatch-run listing: Gitea ignores the
	// created filter, so the newest 200 runs are read (newest first), which
	// holds any run dispatched in the last minutes.
	giteaRunPages = 4
)

// ErrCancelUnsupported is returned (as the message of a
// *workflows.InvalidError) by Gitea.CancelRun when no web sign-in is
// configured: Gitea has no REST route that cancels a run.
var ErrCancelUnsupported = errors.New("cancel unsupported on this forge: Gitea has no REST route to cancel a workflow run; " +
	"set DESKFORGE_GITEA_USERNAME and DESKFORGE_GITEA_PASSWORD (a user with write access to the repository's Actions) so that DeskForge cancels through Gitea's web route")

// GiteaOptions configure a Gitea client.
type GiteaOptions struct {
	// Options are the client's options; BaseURL (the API root,
	// "https://gitea.example.com/api/v1/") and Token are required, GitHub
	// App authentication is not available on Gitea.
	Options
	// WebUser and WebPassword sign in to Gitea's web interface to cancel
	// runs (Gitea's only cancel route); empty: CancelRun answers
	// ErrCancelUnsupported.
	WebUser, WebPassword string
	// ReadsPerSecond and ReadBurst pace reads (0: the defaults).
	ReadsPerSecond float64
	ReadBurst      int
}

// Gitea is the workflows.Forge of a Gitea or Forgejo server. It embeds a
// GitHub Client (go-github, BaseURL set directly) for the compatible calls
// and overrides the ones Gitea answers differently. Safe for concurrent use.
type Gitea struct {
	*Client
	reads *rate.Limiter
	web   *giteaWeb // nil: cancel unsupported
}

var _ workflows.Forge = (*Gitea)(nil)

// NewGitea returns a client of the Gitea server at opts.BaseURL.
func NewGitea(ctx context.Context, opts GiteaOptions) (*Gitea, error) {
	if opts.BaseURL == "" {
		return nil, errors.New("gitea: the API URL is required (https://HOST/api/v1/)")
	}
	if opts.Token == "" {
		return nil, errors.New("gitea: a token is required (GitHub App authentication does not exist on Gitea)")
	}
	opts.AppID, opts.AppPrivateKey, opts.InstallationID = 0, nil, 0
	// Gitea ignores the key in the body; it is asked for in the query.
	opts.DisableRunDetails = true
	c, err := New(ctx, opts.Options)
	if err != nil {
		return nil, err
	}
	g := &Gitea{
		Client: c,
		reads: rate.NewLimiter(rate.Limit(cmp.Or(opts.ReadsPerSecond, DefaultGiteaReadsPerSecond)),
			cmp.Or(opts.ReadBurst, DefaultGiteaReadBurst)),
	}
	if opts.WebUser != "" {
		web, err := newGiteaWeb(c.BaseURL(), opts.WebUser, opts.WebPassword, c.plain.Transport)
		if err != nil {
			return nil, err
		}
		g.web = web
	}
	return g, nil
}

// CanCancel reports whether CancelRun can cancel runs (a web sign-in is
// configured).
func (g *Gitea) CanCancel() bool { return g.web != nil }

// LabelsAssets reports false: Gitea's release assets have no label, so the
// engine cannot tell which build uploaded an asset (workflows.AssetLabeller).
func (g *Gitea) LabelsAssets() bool { return false }

// paceRead waits for the next read slot.
func (g *Gitea) paceRead(ctx context.Context) error {
	if err := g.reads.Wait(ctx); err != nil {
		return fmt.Errorf("pace gitea reads: %w", err)
	}
	return nil
}

// get GETs path (relative to the API root) and decodes its JSON into v,
// returning the next page (0 for none).
func (g *Gitea) get(ctx context.Context, op, path string, v any) (int, error) {
	if err := g.paceRead(ctx); err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	return g.getJSON(ctx, op, path, v)
}

// CheckAccess checks the token (GET user: Gitea has no /rate_limit) and,
// when repo is not empty, that the repository is visible to it.
func (g *Gitea) CheckAccess(ctx context.Context, repo string) error {
	var user struct {
		Login string `json:"login"`
	}
	if _, err := g.get(ctx, "check credentials", "user", &user); err != nil {
		return err
	}
	if repo == "" {
		return nil
	}
	if _, err := g.RepositoryPrivate(ctx, repo); err != nil {
		return fmt.Errorf("check access to the builder repository: %w", err)
	}
	return nil
}

// DispatchWorkflow triggers a workflow_dispatch run. Gitea reads
// return_run_details from the query (in the body it is ignored) and then
// answers 200 with the run; an older Gitea answers 204, and the result has
// RunID 0 (the engine finds the run by its title). The workflow is named by
// its file name, as Gitea's workflow ids are.
func (g *Gitea) DispatchWorkflow(ctx context.Context, req workflows.DispatchRequest) (workflows.DispatchResult, error) {
	owner, name, err := splitRepo(req.Repo)
	if err != nil {
		return workflows.DispatchResult{}, fmt.Errorf("dispatch %s in %s: %w", req.Workflow, req.Repo, err)
	}
	op := fmt.Sprintf("dispatch %s in %s at %s", req.Workflow, req.Repo, req.Ref)
	path := fmt.Sprintf("%s/actions/workflows/%s/dispatches?return_run_details=true", repoPath(owner, name), url.PathEscape(req.Workflow))
	if err := g.paceWrite(ctx); err != nil {
		return workflows.DispatchResult{}, fmt.Errorf("%s: %w", op, err)
	}
	httpReq, err := g.gh.NewRequest(http.MethodPost, path, dispatchBody{Ref: req.Ref, Inputs: req.Inputs})
	if err != nil {
		return workflows.DispatchResult{}, fmt.Errorf("%s: %w", op, err)
	}
	var answer dispatchAnswer
	resp, err := g.gh.Do(ctx, httpReq, &answer)
	if err != nil {
		return workflows.DispatchResult{}, translateError(ctx, op, resp, err)
	}
	return workflows.DispatchResult{RunID: answer.WorkflowRunID, RunURL: answer.RunURL, HTMLURL: answer.HTMLURL}, nil
}

// giteaRun is a run as Gitea answers it: no created_at, updated_at or name;
// conclusion absent until completed; started_at and completed_at instead.
type giteaRun struct {
	ID           int64     `json:"id"`
	DisplayTitle string    `json:"display_title"`
	Event        string    `json:"event"`
	Status       string    `json:"status"`
	Conclusion   string    `json:"conclusion"`
	RunAttempt   int       `json:"run_attempt"`
	HTMLURL      string    `json:"html_url"`
	StartedAt    time.Time `json:"started_at"`
	CompletedAt  time.Time `json:"completed_at"`
	Repository   *struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
}

// run converts a Gitea run. CreatedAt is the start (Gitea tells no creation
// time; zero while queued), UpdatedAt the completion, else the start.
func (r giteaRun) run(repo string) workflows.Run {
	if r.Repository != nil && r.Repository.FullName != "" {
		repo = r.Repository.FullName
	}
	started, completed := utcOrZero(r.StartedAt), utcOrZero(r.CompletedAt)
	return workflows.Run{
		ID:           r.ID,
		Repo:         repo,
		DisplayTitle: r.DisplayTitle,
		Event:        r.Event,
		Status:       r.Status,
		Conclusion:   r.Conclusion,
		RunAttempt:   r.RunAttempt,
		HTMLURL:      r.HTMLURL,
		CreatedAt:    started,
		UpdatedAt:    cmp.Or(completed, started),
	}
}

// utcOrZero is t in UTC, or the zero time for what Gitea sends for "not
// yet": "1970-01-01T00:00:00Z" (a queued run's started_at) or
// "0001-01-01T00:00:00Z".
func utcOrZero(t time.Time) time.Time {
	if !t.After(time.Unix(0, 0)) {
		return time.Time{}
	}
	return t.UTC()
}

// ListDispatchRuns lists the newest workflow_dispatch runs of a workflow
// file (Gitea ignores the created filter: since is not sent; up to
// giteaRunPages pages of giteaPageSize runs, newest first).
func (g *Gitea) ListDispatchRuns(ctx context.Context, repo, workflow string, since time.Time) ([]workflows.Run, error) {
	op := fmt.Sprintf("list dispatch runs of %s in %s", workflow, repo)
	owner, name, err := splitRepo(repo)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	base := fmt.Sprintf("%s/actions/workflows/%s/runs?event=workflow_dispatch&limit=%d", repoPath(owner, name), url.PathEscape(workflow), giteaPageSize)
	var runs []workflows.Run
	for page := 1; page <= giteaRunPages; {
		var list struct {
			WorkflowRuns []giteaRun `json:"workflow_runs"`
		}
		next, err := g.get(ctx, op, pagePath(base, page), &list)
		if err != nil {
			return nil, err
		}
		for _, r := range list.WorkflowRuns {
			runs = append(runs, r.run(repo))
		}
		if next <= page {
			break
		}
		page = next
	}
	return runs, nil
}

// GetRun reads one workflow run (no conditional request: Gitea sends no
// ETag).
func (g *Gitea) GetRun(ctx context.Context, repo string, runID int64) (workflows.Run, error) {
	op := fmt.Sprintf("get run %d of %s", runID, repo)
	owner, name, err := splitRepo(repo)
	if err != nil {
		return workflows.Run{}, fmt.Errorf("%s: %w", op, err)
	}
	var r giteaRun
	if _, err := g.get(ctx, op, fmt.Sprintf("%s/actions/runs/%d", repoPath(owner, name), runID), &r); err != nil {
		return workflows.Run{}, err
	}
	return r.run(repo), nil
}

// ListJobs lists the jobs of a run (every page). Gitea numbers steps from
// 0; they are renumbered from 1, as GitHub's.
func (g *Gitea) ListJobs(ctx context.Context, repo string, runID int64) ([]workflows.Job, error) {
	op := fmt.Sprintf("list jobs of run %d of %s", runID, repo)
	owner, name, err := splitRepo(repo)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	base := fmt.Sprintf("%s/actions/runs/%d/jobs?limit=%d", repoPath(owner, name), runID, giteaPageSize)
	var jobs []workflows.Job
	for page, pages := 1, 0; pages < maxJobPages; pages++ {
		var list gh.Jobs
		next, err := g.get(ctx, op, pagePath(base, page), &list)
		if err != nil {
			return nil, err
		}
		for _, j := range list.Jobs {
			if j == nil {
				continue
			}
			job := jobFromGitHub(j)
			renumberGiteaSteps(job.Steps)
			jobs = append(jobs, job)
		}
		if next <= page {
			break
		}
		page = next
	}
	return jobs, nil
}

// renumberGiteaSteps shifts step numbers that start at 0 (Gitea's) to start
// at 1 (GitHub's, which the engine orders and logs steps by).
func renumberGiteaSteps(steps []workflows.Step) {
	for _, s := range steps {
		if s.Number == 0 {
			for i := range steps {
				steps[i].Number++
			}
			return
		}
	}
}

// JobLogs opens the raw log of a job. Gitea answers the text itself (200)
// where GitHub redirects (302) to a signed URL; both are handled (a
// redirect is followed without credentials). ErrNotFound while the job has
// no log.
func (g *Gitea) JobLogs(ctx context.Context, repo string, jobID int64) (io.ReadCloser, error) {
	op := fmt.Sprintf("get log of job %d of %s", jobID, repo)
	owner, name, err := splitRepo(repo)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := g.paceRead(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	req, err := g.gh.NewRequest(http.MethodGet, fmt.Sprintf("%s/actions/jobs/%d/logs", repoPath(owner, name), jobID), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	req = req.WithContext(ctx)
	resp, err := g.assets.Do(req)
	if err != nil {
		return nil, translateError(ctx, op, nil, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.Body, nil
	case http.StatusFound, http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusSeeOther:
		resp.Body.Close()
		signed := resp.Header.Get("Location")
		if signed == "" {
			return nil, fmt.Errorf("%s: %w", op, &workflows.TransientError{Status: resp.StatusCode, Err: errors.New("redirect without Location")})
		}
		return g.fetchSigned(ctx, op, signed)
	}
	defer resp.Body.Close()
	if err := gh.CheckResponse(resp); err != nil {
		return nil, translateError(ctx, op, nil, err)
	}
	return nil, fmt.Errorf("%s: %w", op, &workflows.TransientError{Status: resp.StatusCode, Err: fmt.Errorf("unexpected answer %s", resp.Status)})
}

// CancelRun cancels a run through Gitea's web route (Gitea has no REST
// cancel), signed in with GiteaOptions.WebUser. Without a sign-in it
// returns a *workflows.InvalidError whose message is ErrCancelUnsupported's.
// Cancelling a completed run changes nothing and succeeds.
func (g *Gitea) CancelRun(ctx context.Context, repo string, runID int64) error {
	op := fmt.Sprintf("cancel run %d of %s", runID, repo)
	owner, name, err := splitRepo(repo)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if g.web == nil {
		return fmt.Errorf("%s: %w", op, &workflows.InvalidError{Status: http.StatusNotImplemented, Message: ErrCancelUnsupported.Error()})
	}
	if err := g.paceWrite(ctx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return g.web.cancel(ctx, op, owner, name, runID)
}

// AssetDownloadURL returns workflows.ErrAssetStreamed: Gitea has no signed
// URLs (its asset route answers JSON); the engine then streams the asset
// through OpenAsset. Assets of published releases in public repositories
// are downloaded from their browser_download_url directly and never get
// here.
func (g *Gitea) AssetDownloadURL(ctx context.Context, repo string, assetID int64) (string, error) {
	return "", fmt.Errorf("get download url of asset %d of %s: %w", assetID, repo, workflows.ErrAssetStreamed)
}

// OpenAsset fetches an asset's bytes from its browser_download_url, with
// the token (a draft's, and a private repository's, need it; the URL is on
// the Gitea server itself). The asset is found by id among the releases'
// assets (Gitea's asset route needs the release id). The Range header of
// header is forwarded.
func (g *Gitea) OpenAsset(ctx context.Context, repo string, assetID int64, header http.Header) (*http.Response, error) {
	op := fmt.Sprintf("download asset %d of %s", assetID, repo)
	owner, name, err := splitRepo(repo)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	download, err := g.assetBrowserURL(ctx, op, owner, name, assetID)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(download)
	if err != nil {
		return nil, fmt.Errorf("%s: browser_download_url %q: %w", op, download, err)
	}
	if !strings.EqualFold(u.Host, g.gh.BaseURL.Host) {
		return nil, fmt.Errorf("%s: %w", op, &workflows.InvalidError{Status: http.StatusBadGateway,
			Message: fmt.Sprintf("browser_download_url %s is not on the Gitea server %s: the token is not sent there", download, g.gh.BaseURL.Host)})
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, download, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if r := header.Get("Range"); r != "" {
		req.Header.Set("Range", r)
	}
	resp, err := g.assets.Do(req) // authenticated, same host, redirects not followed
	if err != nil {
		return nil, translateError(ctx, op, nil, err)
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusPartialContent, http.StatusRequestedRangeNotSatisfiable:
		return resp, nil
	}
	defer resp.Body.Close()
	if err := gh.CheckResponse(resp); err != nil {
		return nil, translateError(ctx, op, nil, err)
	}
	return nil, fmt.Errorf("%s: %w", op, &workflows.TransientError{Status: resp.StatusCode, Err: fmt.Errorf("unexpected answer %s", resp.Status)})
}

// assetBrowserURL finds the browser_download_url of the asset with id
// assetID among the repository's releases (drafts included).
func (g *Gitea) assetBrowserURL(ctx context.Context, op, owner, name string, assetID int64) (string, error) {
	base := fmt.Sprintf("%s/releases?limit=%d", repoPath(owner, name), giteaPageSize)
	for page, pages := 1, 0; pages < maxListPages; pages++ {
		var releases []releaseJSON
		next, err := g.get(ctx, op, pagePath(base, page), &releases)
		if err != nil {
			return "", err
		}
		for _, r := range releases {
			for _, a := range r.Assets {
				if a.ID == assetID && a.BrowserDownloadURL != "" {
					return a.BrowserDownloadURL, nil
				}
			}
		}
		if next <= page {
			break
		}
		page = next
	}
	return "", fmt.Errorf("%s: no release holds asset %d: %w", op, assetID, workflows.ErrNotFound)
}

// FindReleaseAsset finds the asset called name in the release tagged tag,
// drafts included (Gitea lists drafts to writers). Gitea's assets carry no
// label, state or digest: Label and SHA256 are empty.
func (g *Gitea) FindReleaseAsset(ctx context.Context, repo, tag, name string) (workflows.Asset, error) {
	if err := g.paceRead(ctx); err != nil {
		return workflows.Asset{}, err
	}
	return g.Client.FindReleaseAsset(ctx, repo, tag, name)
}

// ParseGiteaWebhook is ParseWebhook for Gitea's deliveries: their
// workflow_run payloads name the workflow by file name (a string id, which
// ParseWebhook never reads), their runs have started_at and completed_at
// instead of created_at and updated_at, and their job steps are numbered
// from 0 (renumbered from 1, as GitHub's).
func ParseGiteaWebhook(eventType string, payload []byte) (workflows.WebhookEvent, error) {
	ev, err := ParseWebhook(eventType, payload)
	if err != nil {
		return ev, err
	}
	if ev.Job != nil {
		renumberGiteaSteps(ev.Job.Steps)
	}
	if ev.Run != nil {
		var times struct {
			WorkflowRun struct {
				StartedAt   time.Time `json:"started_at"`
				CompletedAt time.Time `json:"completed_at"`
			} `json:"workflow_run"`
		}
		if json.Unmarshal(payload, &times) == nil {
			started, completed := utcOrZero(times.WorkflowRun.StartedAt), utcOrZero(times.WorkflowRun.CompletedAt)
			ev.Run.CreatedAt = cmp.Or(ev.Run.CreatedAt, started)
			ev.Run.UpdatedAt = cmp.Or(ev.Run.UpdatedAt, completed, started)
		}
	}
	return ev, nil
}
