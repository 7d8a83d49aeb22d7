package models_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
)

type uniqueArgs struct{ N int }

func (uniqueArgs) Kind() string { return "test_unique" }

func (uniqueArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type jobsBundle struct {
	ctx   context.Context
	db    *models.DB
	store *models.Store
}

func setupJobs(t *testing.T, dialect string) *jobsBundle {
	t.Helper()
	db := dbtest.Open(t, dialect)
	return &jobsBundle{ctx: context.Background(), db: db, store: models.NewStore(db)}
}

// counts returns the number of settings rows and of River jobs of kind.
func (b *jobsBundle) counts(t *testing.T, kind string) (settings, jobs int64) {
	t.Helper()
	require.NoError(t, b.db.Gorm.Model(&models.Setting{}).Count(&settings).Error)
	require.NoError(t, b.db.Gorm.Raw("SELECT count(*) FROM river_job WHERE kind = ?", kind).Scan(&jobs).Error)
	return settings, jobs
}

// TestJobsInsertTxIsAtomic: a GORM write and a River job inserted in one
// Store.Tx are both there after commit and both absent after a rollback.
func TestJobsInsertTxIsAtomic(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			b := setupJobs(t, dialect)
			errRollback := errors.New("roll back")

			err := b.store.Tx(b.ctx, func(tx *gorm.DB) error {
				require.NoError(t, tx.Create(&models.Setting{Key: "a", Value: "1"}).Error)
				_, err := b.store.Jobs().InsertTx(b.ctx, tx, pingArgs{N: 1}, nil)
				require.NoError(t, err)
				require.NoError(t, b.store.Jobs().InsertManyTx(b.ctx, tx, []river.InsertManyParams{{Args: pingArgs{N: 2}}}))
				// Inside the transaction, GORM sees River's jobs.
				var jobs int64
				require.NoError(t, tx.Raw("SELECT count(*) FROM river_job WHERE kind = ?", pingArgs{}.Kind()).Scan(&jobs).Error)
				require.EqualValues(t, 2, jobs)
				return errRollback
			})
			require.ErrorIs(t, err, errRollback)
			settings, jobs := b.counts(t, pingArgs{}.Kind())
			require.Zero(t, settings, "rolled back: no row")
			require.Zero(t, jobs, "rolled back: no job")

			require.NoError(t, b.store.Tx(b.ctx, func(tx *gorm.DB) error {
				if err := tx.Create(&models.Setting{Key: "a", Value: "1"}).Error; err != nil {
					return err
				}
				_, err := b.store.Jobs().InsertTx(b.ctx, tx, pingArgs{N: 1}, nil)
				return err
			}))
			settings, jobs = b.counts(t, pingArgs{}.Kind())
			require.EqualValues(t, 1, settings, "committed: the row")
			require.EqualValues(t, 1, jobs, "committed: the job")
		})
	}
}

// TestJobsNestedTransaction: a nested tx.Transaction is a savepoint: its
// rollback undoes its row and its job, and the outer transaction commits
// the rest.
func TestJobsNestedTransaction(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			b := setupJobs(t, dialect)
			errInner := errors.New("inner fails")
			require.NoError(t, b.store.Tx(b.ctx, func(tx *gorm.DB) error {
				if err := tx.Create(&models.Setting{Key: "outer", Value: "1"}).Error; err != nil {
					return err
				}
				if _, err := b.store.Jobs().InsertTx(b.ctx, tx, pingArgs{N: 1}, nil); err != nil {
					return err
				}
				err := tx.Transaction(func(inner *gorm.DB) error {
					require.NoError(t, inner.Create(&models.Setting{Key: "inner", Value: "1"}).Error)
					_, err := b.store.Jobs().InsertTx(b.ctx, inner, pingArgs{N: 2}, nil)
					require.NoError(t, err)
					return errInner
				})
				require.ErrorIs(t, err, errInner)
				return nil
			}))
			settings, jobs := b.counts(t, pingArgs{}.Kind())
			require.EqualValues(t, 1, settings)
			require.EqualValues(t, 1, jobs)
		})
	}
}

// TestJobsUniqueSkipped: a unique job inserted again, alone or among
// others, is skipped without failing the transaction.
func TestJobsUniqueSkipped(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			b := setupJobs(t, dialect)
			require.NoError(t, b.store.Tx(b.ctx, func(tx *gorm.DB) error {
				first, err := b.store.Jobs().InsertTx(b.ctx, tx, uniqueArgs{N: 1}, nil)
				require.NoError(t, err)
				require.False(t, first.UniqueSkippedAsDuplicate)
				again, err := b.store.Jobs().InsertTx(b.ctx, tx, uniqueArgs{N: 1}, nil)
				require.NoError(t, err)
				require.True(t, again.UniqueSkippedAsDuplicate)
				require.Equal(t, first.Job.ID, again.Job.ID)
				return nil
			}))
			require.NoError(t, b.store.Tx(b.ctx, func(tx *gorm.DB) error {
				return b.store.Jobs().InsertManyTx(b.ctx, tx, []river.InsertManyParams{{Args: uniqueArgs{N: 1}}, {Args: uniqueArgs{N: 2}}})
			}))
			_, jobs := b.counts(t, uniqueArgs{}.Kind())
			require.EqualValues(t, 2, jobs)
		})
	}
}

// TestJobsRefuseOtherTransactions: a job can only go into a transaction of
// Store.Tx, never silently outside it.
func TestJobsRefuseOtherTransactions(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			b := setupJobs(t, dialect)
			_, err := b.store.Jobs().InsertTx(b.ctx, b.db.Gorm, pingArgs{N: 1}, nil)
			require.Error(t, err)
			require.Error(t, b.store.Jobs().InsertManyTx(b.ctx, b.db.Gorm, []river.InsertManyParams{{Args: pingArgs{N: 1}}}))
		})
	}
}

// TestJobsInsertNotifiesAtCommit: on PostgreSQL a job insert sends River's
// insert NOTIFY (which wakes the workers of every replica) inside the
// transaction, so it arrives when the transaction commits, not before.
func TestJobsInsertNotifiesAtCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rawURL := dbtest.PostgresURL(t)
	db, err := models.Open(ctx, rawURL)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Migrate(ctx, slog.New(slog.DiscardHandler)))
	store := models.NewStore(db)

	listener, err := pgx.Connect(ctx, rawURL)
	require.NoError(t, err)
	t.Cleanup(func() { listener.Close(context.Background()) })
	var schema string
	require.NoError(t, listener.QueryRow(ctx, "SELECT current_schema()").Scan(&schema))
	_, err = listener.Exec(ctx, "LISTEN "+pgx.Identifier{schema + ".river_insert"}.Sanitize())
	require.NoError(t, err)

	require.NoError(t, store.Tx(ctx, func(tx *gorm.DB) error {
		if _, err := store.Jobs().InsertTx(ctx, tx, pingArgs{N: 1}, nil); err != nil {
			return err
		}
		early, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err := listener.WaitForNotification(early)
		require.ErrorIs(t, err, context.DeadlineExceeded, "no notification before commit")
		return nil
	}))
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := listener.WaitForNotification(wait)
	require.NoError(t, err, "notification after commit")
	require.JSONEq(t, `{"queue": "default"}`, n.Payload)
}
