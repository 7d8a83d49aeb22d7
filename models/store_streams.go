package models

import (
	"context"
	"fmt"
)

// ProjectTransitionsAfter returns up to limit status transitions of a
// project's builds with an id greater than after, in id order: what a
// project's event stream sends.
func (s *Store) ProjectTransitionsAfter(ctx context.Context, projectID string, after int64, limit int) ([]BuildTransition, error) {
	var ts []BuildTransition
	err := s.Gorm(ctx).Model(&BuildTransition{}).
		Joins("JOIN builds ON builds.id = build_transitions.build_id").
		Where("builds.project_id = ? AND build_transitions.id > ?", projectID, after).
		Order("build_transitions.id").Limit(limit).
		Select("build_transitions.*").Find(&ts).Error
	if err != nil {
		return nil, fmt.Errorf("transitions of project %s: %w", projectID, err)
	}
	return ts, nil
}

// LastTransitionID returns the id of the latest status transition of any
// build (0 when none).
func (s *Store) LastTransitionID(ctx context.Context) (int64, error) {
	var id int64
	if err := s.Gorm(ctx).Model(&BuildTransition{}).Select("COALESCE(MAX(id), 0)").Scan(&id).Error; err != nil {
		return 0, fmt.Errorf("last transition: %w", err)
	}
	return id, nil
}
