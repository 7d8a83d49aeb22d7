package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// LogLine is a log entry to append; its sequence number is assigned by
// AppendLogTx.
type LogLine struct {
	Timestamp time.Time
	Level     string
	Message   string
}

// AppendLogTx appends lines to a build's log inside tx, numbering them after
// the build's last entry, and wakes the build's event streams. It locks the build row (UPDATE) so concurrent
// appenders never reuse a sequence number.
func AppendLogTx(ctx context.Context, tx *gorm.DB, buildID string, lines ...LogLine) error {
	if len(lines) == 0 {
		return nil
	}
	var row struct {
		LogSeq    int64
		ProjectID string
	}
	res := tx.WithContext(ctx).Raw(
		"UPDATE builds SET log_seq = log_seq + ? WHERE id = ? RETURNING log_seq, project_id", len(lines), buildID,
	).Scan(&row)
	if res.Error != nil {
		return fmt.Errorf("append log to build %s: %w", buildID, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("append log to build %s: %w", buildID, ErrNotFound)
	}
	first := row.LogSeq - int64(len(lines)) + 1
	entries := make([]BuildLogEntry, len(lines))
	for i, l := range lines {
		entries[i] = BuildLogEntry{
			BuildID:   buildID,
			Seq:       first + int64(i),
			Timestamp: l.Timestamp.UTC(),
			Level:     l.Level,
			Message:   l.Message,
		}
	}
	if err := tx.WithContext(ctx).CreateInBatches(entries, 500).Error; err != nil {
		return fmt.Errorf("append log to build %s: %w", buildID, err)
	}
	// Every change of a build (status, step, progress) appends to its log:
	// this is where event streams learn of it.
	return notifyBuildChangeTx(ctx, tx, buildID, row.ProjectID)
}

// RecordTransitionTx stores a status change of a build, appends it to the
// build's log as an orchestrator entry with the given level and message, and
// records its event (build.queued, build.started, …; see RecordEventTx).
// Every status change goes through it: a new build (from "") and
// TransitionBuildTx.
func RecordTransitionTx(ctx context.Context, tx *gorm.DB, buildID, from, to, reason string, at time.Time, level, message string) error {
	t := BuildTransition{BuildID: buildID, FromStatus: from, ToStatus: to, Reason: reason, At: at.UTC()}
	if err := tx.WithContext(ctx).Create(&t).Error; err != nil {
		return fmt.Errorf("record transition of build %s to %s: %w", buildID, to, err)
	}
	if err := AppendLogTx(ctx, tx, buildID, LogLine{Timestamp: at, Level: level, Message: message}); err != nil {
		return err
	}
	return recordBuildEventTx(ctx, tx, buildID, to)
}
