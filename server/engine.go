package server

import (
	"context"
	"net/http"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/workflows"
)

// BuildEngine is what the HTTP layer needs from the build engine;
// *workflows.Engine satisfies it.
type BuildEngine interface {
	// CreateBuild validates a build request and queues the build with its
	// dispatch job (see workflows.Engine.CreateBuild for the errors).
	CreateBuild(ctx context.Context, req workflows.CreateBuildRequest) (models.Build, error)

	// CancelBuild requests a build's cancellation (see
	// workflows.Engine.CancelBuild): models.ErrConflict when terminal.
	CancelBuild(ctx context.Context, buildID string) (models.Build, error)
	// RetryBuild queues a new build like a finished one, with RetryOf set.
	RetryBuild(ctx context.Context, buildID string) (models.Build, error)
	// RecordWebhook stores a verified delivery and enqueues its event;
	// false when the delivery id was seen before.
	RecordWebhook(ctx context.Context, d workflows.Delivery, ev *workflows.WebhookEvent) (bool, error)
	// ArtifactURL is where a successful build's installer is downloaded
	// from (redirect mode); workflows.ErrNotReady before success.
	ArtifactURL(ctx context.Context, b models.Build) (string, error)
	// OpenArtifact fetches the installer for the proxy mode, forwarding the
	// Range of header.
	OpenArtifact(ctx context.Context, b models.Build, header http.Header) (*http.Response, error)
	// CreateRelease queues a release and one build per target (see
	// workflows.Engine.CreateRelease for the errors).
	CreateRelease(ctx context.Context, req workflows.CreateReleaseRequest) (models.Release, error)
	// CancelRelease cancels a release's running builds.
	CancelRelease(ctx context.Context, id string) (models.Release, error)
	// RetryRelease rebuilds a failed or cancelled release's failed and
	// cancelled targets.
	RetryRelease(ctx context.Context, id string) (models.Release, error)
	// ReleaseFiles returns a published release's files besides its
	// installers (recorded from GitHub the first time).
	ReleaseFiles(ctx context.Context, rel models.Release) ([]models.ReleaseFile, error)
	// ReleaseFileURL is where a release file is downloaded from without
	// credentials; workflows.ErrAssetStreamed: use OpenReleaseFile.
	ReleaseFileURL(ctx context.Context, f models.ReleaseFile) (string, error)
	// OpenReleaseFile fetches a release file's bytes (Range forwarded).
	OpenReleaseFile(ctx context.Context, f models.ReleaseFile, header http.Header) (*http.Response, error)
	// Options are the engine's effective options (DownloadMode).
	Options() workflows.Options
}
