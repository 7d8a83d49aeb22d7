package workflows

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Forge is what the build engine needs from GitHub Actions. The go-github
// implementation lives in workflows/github; tests point it at the simulator in
// workflows/ghsim. Implementations must be safe for concurrent use.
//
// Errors: ErrNotFound when the repository, workflow, run, job, release or
// asset does not exist (or the job log is not available yet); *RateLimitError
// when GitHub refuses for a rate limit (wait until Until); *TransientError for
// 5xx answers and network failures (retry); *InvalidError for other 4xx
// answers, carrying GitHub's message (do not retry).
type Forge interface {
	// DispatchWorkflow triggers a workflow_dispatch run. It asks GitHub for
	// the run's details; a server that does not support return_run_details
	// (GHES) is remembered and the result then has RunID 0, so the caller
	// must find the run by its display title.
	DispatchWorkflow(ctx context.Context, req DispatchRequest) (DispatchResult, error)
	// ListDispatchRuns lists the workflow_dispatch runs of a workflow file
	// created at or after since, newest first (all pages).
	ListDispatchRuns(ctx context.Context, repo, workflow string, since time.Time) ([]Run, error)
	// GetRun reads one workflow run (conditional request when polled again).
	GetRun(ctx context.Context, repo string, runID int64) (Run, error)
	// ListJobs lists the latest attempt's jobs of a run (conditional request
	// when polled again).
	ListJobs(ctx context.Context, repo string, runID int64) ([]Job, error)
	// JobLogs opens the raw log of a completed job (following GitHub's
	// redirect to the signed URL). ErrNotFound while the job still runs.
	JobLogs(ctx context.Context, repo string, jobID int64) (io.ReadCloser, error)
	// CancelRun asks GitHub to cancel a run. Cancelling a run that already
	// completed returns *InvalidError with Status 409.
	CancelRun(ctx context.Context, repo string, runID int64) error
	// FindReleaseAsset finds the asset called name in the release tagged tag,
	// drafts included. ErrNotFound when the release or the asset is missing.
	FindReleaseAsset(ctx context.Context, repo, tag, name string) (Asset, error)
	// AssetDownloadURL returns a short-lived URL from which the asset's bytes
	// can be fetched without credentials (GitHub's signed redirect).
	// ErrAssetStreamed when GitHub answers with the bytes themselves (200)
	// instead of a redirect: use OpenAsset.
	AssetDownloadURL(ctx context.Context, repo string, assetID int64) (string, error)
	// OpenAsset fetches an asset's bytes, whether GitHub streams them (200)
	// or redirects to a signed URL (302, followed without credentials).
	// The Range header of header is forwarded; the answer (200, 206 or
	// 416) is returned for the caller to relay and close.
	OpenAsset(ctx context.Context, repo string, assetID int64, header http.Header) (*http.Response, error)
	// RepositoryPrivate reports whether a repository is private.
	RepositoryPrivate(ctx context.Context, repo string) (bool, error)
	// UploadReleaseAsset uploads data as the asset called name of the
	// release tagged tag (drafts included). ErrNotFound when there is no
	// such release; *InvalidError with Status 422 when the release already
	// has an asset of that name.
	UploadReleaseAsset(ctx context.Context, repo, tag, name, contentType string, data []byte) (Asset, error)
	// PublishRelease sets the body of the release tagged tag to notes and
	// publishes it if it is a draft; it returns the release's web URL.
	// Publishing a published release changes nothing but its body.
	PublishRelease(ctx context.Context, repo, tag, notes string) (string, error)
}

// AssetLabeller is implemented by a Forge that may answer that its release
// assets carry no label (Gitea and Forgejo: LabelsAssets false). The engine
// then cannot check that the asset of a build's name was uploaded by that
// build (templates.AssetLabel) and records it as is. A Forge that does not
// implement it labels assets (GitHub).
type AssetLabeller interface {
	LabelsAssets() bool
}

// DispatchRequest is one workflow_dispatch call.
type DispatchRequest struct {
	Repo     string            // "owner/name"
	Workflow string            // workflow file name, e.g. "deskforge.yml"
	Ref      string            // branch or tag
	Inputs   map[string]string // contract inputs, strings only
}

// DispatchResult is what GitHub returned for a dispatch. RunID is 0 when the
// server could not return run details.
type DispatchResult struct {
	RunID   int64
	RunURL  string // API URL of the run
	HTMLURL string // web URL of the run
}

// Run is a GitHub Actions workflow run.
type Run struct {
	ID           int64
	Repo         string
	DisplayTitle string
	Event        string
	Status       string // queued, in_progress, completed, waiting, requested, pending
	Conclusion   string // set when completed
	RunAttempt   int
	HTMLURL      string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Job is one job of a workflow run.
type Job struct {
	ID          int64
	RunID       int64
	Name        string
	Status      string // queued, waiting, in_progress, completed
	Conclusion  string
	RunnerName  string
	Labels      []string
	StartedAt   time.Time // zero when unknown
	CompletedAt time.Time // zero when unknown
	Steps       []Step
}

// Step is one step of a job.
type Step struct {
	Number      int
	Name        string
	Status      string
	Conclusion  string
	StartedAt   time.Time
	CompletedAt time.Time
}

// Asset is a release asset.
type Asset struct {
	ID   int64
	Name string
	// Label is the asset's label: a DeskForge template writes
	// templates.AssetLabel, naming the build that uploaded it.
	Label              string
	Size               int64
	ContentType        string
	SHA256             string // hex, from the asset's "sha256:<hex>" digest; "" if GitHub gave none
	BrowserDownloadURL string
	// Draft is true when the asset's release is a draft: its
	// browser_download_url then needs credentials even in a public
	// repository, so downloads go through AssetDownloadURL.
	Draft bool
}

// ErrNotFound is returned by a Forge when GitHub answers 404.
var ErrNotFound = errors.New("not found on GitHub")

// ErrAssetStreamed is returned by Forge.AssetDownloadURL when GitHub answers
// a release asset download with the bytes (200) rather than a redirect to a
// signed URL; GitHub's OpenAPI description says clients must handle both.
var ErrAssetStreamed = errors.New("GitHub streamed the asset instead of redirecting to a signed URL")

// RateLimitError means GitHub refused the call for a rate limit; calls may
// resume at Until.
type RateLimitError struct {
	Until     time.Time
	Secondary bool
	Message   string
	// Local is true when the Forge held the call back itself to stay within
	// GitHub's budget (GitHub was not called).
	Local bool
}

func (e *RateLimitError) Error() string {
	kind := "primary"
	if e.Secondary {
		kind = "secondary"
	}
	return fmt.Sprintf("GitHub %s rate limit until %s: %s", kind, e.Until.UTC().Format(time.RFC3339), e.Message)
}

// TransientError wraps a failure worth retrying: a 5xx answer or a network
// error.
type TransientError struct {
	Status int // 0 for network errors
	Err    error
}

func (e *TransientError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("GitHub answered %d: %v", e.Status, e.Err)
	}
	return fmt.Sprintf("GitHub unreachable: %v", e.Err)
}

func (e *TransientError) Unwrap() error { return e.Err }

// InvalidError is a 4xx answer other than 404 and rate limits: GitHub refused
// the request and retrying it unchanged will not help.
type InvalidError struct {
	Status  int
	Message string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("GitHub refused the request (%d): %s", e.Status, e.Message)
}
