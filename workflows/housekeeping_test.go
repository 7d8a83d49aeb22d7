package workflows

import (
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
)

func TestPurgeIdempotencyKeysDeletesOnlyExpiredKeys(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, dialect)
			now := tb.clock.Now()
			keys := []models.IdempotencyKey{
				{ProjectID: "proj_a", Key: "old", RequestHash: "h", BuildID: "build_1", CreatedAt: now.Add(-models.IdempotencyWindow - time.Minute)},
				{ProjectID: "proj_a", Key: "live", RequestHash: "h", BuildID: "build_2", CreatedAt: now.Add(-models.IdempotencyWindow + time.Minute)},
			}
			require.NoError(t, tb.db.Gorm.Create(&keys).Error)

			w := &purgeIdempotencyKeysWorker{engine: tb.engine}
			require.NoError(t, w.Work(tb.ctx, &river.Job[PurgeIdempotencyKeysArgs]{}))

			var left []string
			require.NoError(t, tb.db.Gorm.Model(&models.IdempotencyKey{}).Order("key").Pluck("key", &left).Error)
			require.Equal(t, []string{"live"}, left)
		})
	}
}
