package models_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
)

func TestAppendLogTxNumbersEntriesWithoutGaps(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := dbtest.Open(t, dialect)
			store := models.NewStore(db)
			b := models.Build{ID: models.NewID("build"), ProjectID: "proj_x", Version: "1.0.0", Platform: "mac", Arch: "x64", Status: models.StatusQueued}
			require.NoError(t, db.Gorm.Create(&b).Error)

			var wg sync.WaitGroup
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := store.Tx(ctx, func(tx *gorm.DB) error {
						return models.AppendLogTx(ctx, tx, b.ID,
							models.LogLine{Timestamp: time.Now(), Level: models.LevelInfo, Message: "a"},
							models.LogLine{Timestamp: time.Now(), Level: models.LevelInfo, Message: "b"})
					})
					require.NoError(t, err)
				}()
			}
			wg.Wait()
			var seqs []int64
			require.NoError(t, db.Gorm.Model(&models.BuildLogEntry{}).Where("build_id = ?", b.ID).Order("seq").Pluck("seq", &seqs).Error)
			require.Len(t, seqs, 16)
			for i, s := range seqs {
				require.Equal(t, int64(i+1), s)
			}

			err := store.Tx(ctx, func(tx *gorm.DB) error {
				return models.AppendLogTx(ctx, tx, "build_missing", models.LogLine{Level: models.LevelInfo, Message: "x"})
			})
			require.ErrorIs(t, err, models.ErrNotFound)
		})
	}
}
