package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm/clause"
)

// Replica is a running `deskforge serve` process as its heartbeats show it.
// Replicas divide the per-process limits (API rate limits, the GitHub write
// pace) by how many of them are alive, so that the limits hold roughly for
// the whole fleet.
type Replica struct {
	ID        string    `gorm:"primaryKey;size:40"`
	Host      string    `gorm:"size:255"`
	StartedAt time.Time `gorm:"not null"`
	SeenAt    time.Time `gorm:"not null;index"`
}

// BeatReplica records that r is alive at r.SeenAt (a new row, or its
// SeenAt moved forward) and drops replicas unheard of since forgetBefore,
// which died without saying so.
func (s *Store) BeatReplica(ctx context.Context, r Replica, forgetBefore time.Time) error {
	r.StartedAt, r.SeenAt = r.StartedAt.UTC(), r.SeenAt.UTC()
	err := s.Gorm(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "id"}},
		DoUpdates: clause.AssignmentColumns([]string{"seen_at"}),
	}).Create(&r).Error
	if err != nil {
		return fmt.Errorf("beat replica %s: %w", r.ID, err)
	}
	if err := s.Gorm(ctx).Where("seen_at < ?", forgetBefore.UTC()).Delete(&Replica{}).Error; err != nil {
		return fmt.Errorf("forget dead replicas: %w", err)
	}
	return nil
}

// LiveReplicas counts the replicas heard of since since (at least 1: the
// caller is one).
func (s *Store) LiveReplicas(ctx context.Context, since time.Time) (int, error) {
	var n int64
	if err := s.Gorm(ctx).Model(&Replica{}).Where("seen_at >= ?", since.UTC()).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count live replicas: %w", err)
	}
	return max(int(n), 1), nil
}

// RemoveReplica deletes replica id's row: it is stopping.
func (s *Store) RemoveReplica(ctx context.Context, id string) error {
	if err := s.Gorm(ctx).Delete(&Replica{ID: id}).Error; err != nil {
		return fmt.Errorf("remove replica %s: %w", id, err)
	}
	return nil
}
