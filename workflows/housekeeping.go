package workflows

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/deskforge/deskforge/models"
)

// purgeInterval is how often expired idempotency keys are deleted.
const purgeInterval = time.Hour

// PurgeIdempotencyKeysArgs is the periodic job that deletes idempotency keys
// older than models.IdempotencyWindow (a key past the window no longer
// replays its build, so its row is dead weight).
type PurgeIdempotencyKeysArgs struct{}

// Kind implements river.JobArgs.
func (PurgeIdempotencyKeysArgs) Kind() string { return "purge_idempotency_keys" }

// InsertOpts implements river.JobArgsWithInsertOpts: at most one pending purge.
func (PurgeIdempotencyKeysArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 3, Priority: 4, UniqueOpts: uniqueWhileActive()}
}

type purgeIdempotencyKeysWorker struct {
	river.WorkerDefaults[PurgeIdempotencyKeysArgs]
	engine *Engine
}

// Work implements river.Worker.
func (w *purgeIdempotencyKeysWorker) Work(ctx context.Context, job *river.Job[PurgeIdempotencyKeysArgs]) error {
	n, err := w.engine.store.PurgeIdempotencyKeys(ctx, w.engine.clock.Now().Add(-models.IdempotencyWindow))
	if err != nil {
		return fmt.Errorf("purge idempotency keys: %w", err)
	}
	if n > 0 {
		w.engine.log.Debug("purged expired idempotency keys", "count", n)
	}
	return nil
}
