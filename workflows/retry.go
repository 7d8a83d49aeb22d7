package workflows

import (
	"context"
	"fmt"

	"github.com/deskforge/deskforge/models"
)

// RetryBuild queues a new build of the same project, platform, arch and
// version as the finished build buildID, with RetryOf naming it (through
// CreateBuild, so it is snapshotted from the project as it is now). A build
// still queued or building returns a *models.StateError ("build_active"):
// cancel it first. An unknown build returns models.ErrNotFound.
func (e *Engine) RetryBuild(ctx context.Context, buildID string) (models.Build, error) {
	orig, err := e.store.LoadBuild(ctx, buildID)
	if err != nil {
		return models.Build{}, fmt.Errorf("retry build %s: %w", buildID, err)
	}
	if !models.IsTerminal(orig.Status) {
		return models.Build{}, models.Conflict("build_active",
			"build %s is still %s; cancel it or wait for it to finish before retrying", orig.ID, orig.Status)
	}
	return e.CreateBuild(ctx, CreateBuildRequest{
		ProjectID: orig.ProjectID,
		Platform:  orig.Platform,
		Arch:      orig.Arch,
		Version:   orig.Version,
		RetryOf:   orig.ID,
	})
}
