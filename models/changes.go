package models

import (
	"context"
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// notifyBuildChangeTx wakes the event streams of a build and of its project
// (Outbox.Subscribe) for a change that records no event: new log entries, a
// step, progress. It uses the outbox's wake-ups (NOTIFY on EventsChannel at
// commit on PostgreSQL, in-process after the commit on SQLite) with "-" for the event id, as
// there is no event row to read: the streams read the build and its log.
func notifyBuildChangeTx(ctx context.Context, tx *gorm.DB, buildID, projectID string) error {
	o, err := outboxOf(tx)
	if err != nil {
		return nil // a database without outbox (no streams to wake)
	}
	if o.notifier.pool == nil {
		o.notifier.wakeTx(tx, wakeKey{projectID, ResourceBuild, buildID})
		return nil
	}
	payload := strings.Join([]string{"-", projectID, ResourceBuild, buildID}, " ")
	if err := tx.WithContext(ctx).Exec("SELECT pg_notify(?, ?)", EventsChannel, payload).Error; err != nil {
		return fmt.Errorf("notify %s: %w", EventsChannel, err)
	}
	return nil
}
