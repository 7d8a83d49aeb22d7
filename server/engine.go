package server

import (
	"context"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/workflows"
)

// BuildEngine is what the HTTP layer needs from the build engine;
// *workflows.Engine satisfies it.
type BuildEngine interface {
	// CreateBuild validates a build request and queues the build with its
	// dispatch job (see workflows.Engine.CreateBuild for the errors).
	CreateBuild(ctx context.Context, req workflows.CreateBuildRequest) (models.Build, error)
}
