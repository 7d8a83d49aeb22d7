package workflows

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
)

// CancelBuild asks for a build to be cancelled and returns it as it stands.
// A build not dispatched yet is cancelled at once and will never be
// dispatched. A dispatched one keeps its status until GitHub confirms the
// cancellation (webhook or poll); its run is cancelled by a River job, now
// or as soon as the run is known. A terminal build returns a
// *models.StateError with code "build_finished"; an unknown one
// models.ErrNotFound.
func (e *Engine) CancelBuild(ctx context.Context, buildID string) (models.Build, error) {
	var out models.Build
	now := e.clock.Now()
	err := e.store.Tx(ctx, func(tx *gorm.DB) error {
		b, err := e.store.LockBuildTx(ctx, tx, buildID)
		if err != nil {
			return err
		}
		if models.IsTerminal(b.Status) {
			return models.Conflict("build_finished", "build %s already finished (%s); only a queued or building build can be cancelled", b.ID, b.Status)
		}
		switch {
		case b.DispatchedAt == nil:
			if _, err := e.transitionTx(ctx, tx, &b, models.Transition{
				To: models.StatusCancelled, Reason: "cancelled before it was dispatched", At: now,
				Level: models.LevelWarning, Message: "Build cancelled before it was dispatched",
				Fields: map[string]any{"completed_at": now, "cancel_requested": true},
			}, now); err != nil {
				return err
			}
			b.CompletedAt = &now
		case !b.CancelRequested:
			if err := models.UpdateBuildTx(ctx, tx, b.ID, now, map[string]any{"cancel_requested": true}); err != nil {
				return err
			}
			msg := "Cancellation requested; waiting for GitHub to confirm"
			if b.RunID != nil {
				if err := e.insertTx(ctx, tx, CancelRunArgs{BuildID: b.ID, Repo: e.repoOf(b), RunID: *b.RunID}); err != nil {
					return err
				}
				msg = fmt.Sprintf("Cancellation of workflow run %d requested", *b.RunID)
			}
			if err := models.AppendLogTx(ctx, tx, b.ID, models.LogLine{Timestamp: now, Level: models.LevelWarning, Message: msg}); err != nil {
				return err
			}
		}
		b.CancelRequested = true
		out = b
		return nil
	})
	if err != nil {
		return models.Build{}, fmt.Errorf("cancel build %s: %w", buildID, err)
	}
	e.log.Info("build cancellation requested", "build_id", buildID, "status", out.Status)
	return e.store.LoadBuild(ctx, buildID)
}

// cancelRun asks GitHub to cancel a run. A run that already completed (409)
// needs nothing more: polling the build picks up its conclusion.
func (e *Engine) cancelRun(ctx context.Context, args CancelRunArgs, finalAttempt bool) error {
	if b, err := e.store.LoadBuild(ctx, args.BuildID); err == nil && !e.servesBuild(b) {
		return e.foreignBuild(ctx, b)
	}
	err := e.forge.CancelRun(ctx, args.Repo, args.RunID)
	var invalid *InvalidError
	switch {
	case err == nil:
		e.log.Info("workflow run cancel requested", "build_id", args.BuildID, "run_id", args.RunID)
		return nil
	case errors.Is(err, ErrNotFound):
		e.log.Warn("cancel: workflow run not found", "build_id", args.BuildID, "run_id", args.RunID)
		return nil
	case errors.As(err, &invalid):
		if invalid.Status == 409 {
			return nil // already completed
		}
		return e.noteBuild(ctx, args.BuildID, fmt.Sprintf("GitHub refused to cancel workflow run %d: %s%s", args.RunID, invalid.Message, refusalHint(invalid.Status)))
	}
	var limited *RateLimitError
	if finalAttempt && !errors.As(err, &limited) {
		return e.noteBuild(ctx, args.BuildID, fmt.Sprintf("Could not cancel workflow run %d: %v", args.RunID, err))
	}
	return e.forgeJobError(fmt.Errorf("cancel run %d of build %s: %w", args.RunID, args.BuildID, err))
}

// noteBuild appends a warning entry to a build's log.
func (e *Engine) noteBuild(ctx context.Context, buildID, msg string) error {
	e.log.Warn(msg, "build_id", buildID)
	err := e.store.Tx(ctx, func(tx *gorm.DB) error {
		return models.AppendLogTx(ctx, tx, buildID, models.LogLine{Timestamp: e.clock.Now(), Level: models.LevelWarning, Message: msg})
	})
	if errors.Is(err, models.ErrNotFound) {
		return nil
	}
	return err
}
