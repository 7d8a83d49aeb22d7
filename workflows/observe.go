package workflows

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
)

// BuildObserver is told of every build transition the engine makes (the
// metrics' queue time and duration histograms). It is called inside the
// transition's transaction, once per transition across replicas (the
// transition's conditional update has one winner), and must not block.
type BuildObserver interface {
	// BuildTransitioned: b (already in its new status) moved from status
	// from at at.
	BuildTransitioned(b models.Build, from string, at time.Time)
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
