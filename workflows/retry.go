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
// cancel it first; a build of a deleted project one with code
// "project_deleted". An unknown build returns models.ErrNotFound.
func (e *Engine) RetryBuild(ctx context.Context, buildID string) (models.Build, error) {
	orig, err := e.store.LoadBuild(ctx, buildID)
	if err != nil {
		return models.Build{}, fmt.Errorf("retry build %s: %w", buildID, err)
	}
	if !models.IsTerminal(orig.Status) {
		return models.Build{}, models.Conflict("build_active",
			"build %s is still %s; cancel it or wait for it to finish before retrying", orig.ID, orig.Status)
	}
	exists, err := e.store.ProjectExists(ctx, orig.ProjectID)
	if err != nil {
		return models.Build{}, fmt.Errorf("retry build %s: %w", buildID, err)
	}
	if !exists {
		return models.Build{}, models.Conflict("project_deleted",
			"build %s belongs to project %s, which was deleted: its builds can still be read but not retried", orig.ID, orig.ProjectID)
	}
	return e.CreateBuild(ctx, CreateBuildRequest{
		ProjectID: orig.ProjectID,
		Platform:  orig.Platform,
		Arch:      orig.Arch,
		Version:   orig.Version,
		RetryOf:   orig.ID,
	})
}
