package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm/clause"
)

// SettingOrCreate returns the setting key, storing value first if the key
// is absent. Concurrent callers (replicas) all get the one value stored
// first.
func (s *Store) SettingOrCreate(ctx context.Context, key, value string, now time.Time) (string, error) {
	st := Setting{Key: key, Value: value, UpdatedAt: now.UTC()}
	if err := s.Gorm(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&st).Error; err != nil {
		return "", fmt.Errorf("create setting %s: %w", key, err)
	}
	return s.GetSetting(ctx, key)
}
