package workflows

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
)

// Observer is told of what the engine does that the metrics time: every
// build transition (queue time and duration), every workflow run found for
// a dispatched build, and every webhook event applied. The build calls
// are made inside their transaction, once per change across replicas (the
// change's conditional update has one winner); none may block.
type Observer interface {
	// BuildTransitioned: b (already in its new status) moved from status
	// from at at.
	BuildTransitioned(b models.Build, from string, at time.Time)
	// RunFound: b's workflow run was found at at (from the dispatch's
	// answer, a webhook or a poll); b.DispatchedAt is when it was
	// dispatched.
	RunFound(b models.Build, at time.Time)
	// WebhookApplied: a GitHub webhook event (workflow_run, workflow_job)
	// was applied lag after its delivery was recorded.
	WebhookApplied(event string, lag time.Duration)
}

// transitionTx is models.TransitionBuildTx telling Options.Observer.
func (e *Engine) transitionTx(ctx context.Context, tx *gorm.DB, b *models.Build, t models.Transition, now time.Time) (bool, error) {
	from := b.Status
	changed, err := models.TransitionBuildTx(ctx, tx, b, t, now)
	if changed && e.opts.Observer != nil {
		at := t.At
		if at.IsZero() {
			at = now
		}
		e.opts.Observer.BuildTransitioned(*b, from, at)
	}
	return changed, err
}
