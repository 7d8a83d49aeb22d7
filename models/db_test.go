package models_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
)

type pingArgs struct{ N int }

func (pingArgs) Kind() string { return "test_ping" }

type pingWorker struct {
	river.WorkerDefaults[pingArgs]
	done chan int
}

func (w *pingWorker) Work(ctx context.Context, job *river.Job[pingArgs]) error {
	w.done <- job.Args.N
	return nil
}

func TestMigrateTwiceAndRiverInsertTx(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := dbtest.Open(t, dialect)
			require.NoError(t, db.Migrate(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))), "second migrate")

			workers := river.NewWorkers()
			w := &pingWorker{done: make(chan int, 1)}
			river.AddWorker(workers, w)
			client, err := river.NewClient[*sql.Tx](db.RiverDriver(), &river.Config{
				Queues:        map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
				Workers:       workers,
				FetchCooldown: 20 * time.Millisecond, FetchPollInterval: 50 * time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			require.NoError(t, err)

			store := models.NewStore(db)
			// A rolled-back transaction leaves neither row nor job.
			err = store.Tx(ctx, func(tx *gorm.DB) error {
				require.NoError(t, tx.Create(&models.Setting{Key: "a", Value: "1"}).Error)
				_, err := store.Jobs().InsertTx(ctx, tx, pingArgs{N: 1}, nil)
				require.NoError(t, err)
				return context.Canceled
			})
			require.ErrorIs(t, err, context.Canceled)
			var n int64
			require.NoError(t, db.Gorm.Model(&models.Setting{}).Count(&n).Error)
			require.Zero(t, n)

			require.NoError(t, store.Tx(ctx, func(tx *gorm.DB) error {
				if err := tx.Create(&models.Setting{Key: "a", Value: "1"}).Error; err != nil {
					return err
				}
				_, err := store.Jobs().InsertTx(ctx, tx, pingArgs{N: 2}, nil)
				return err
			}))
			require.NoError(t, client.Start(ctx))
			t.Cleanup(func() { require.NoError(t, client.Stop(context.Background())) })
			select {
			case got := <-w.done:
				require.Equal(t, 2, got, "only the committed job runs")
			case <-time.After(10 * time.Second):
				t.Fatal("job never ran")
			}
		})
	}
}
