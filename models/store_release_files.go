package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm/clause"
)

// Kinds of the files of a published release (ReleaseFile.Kind).
const (
	// FileChecksums is SHA256SUMS.
	FileChecksums = "checksums"
	// FileManifest is an update manifest (latest.json, latest*.yml).
	FileManifest = "manifest"
	// FileUpdater is an updater artifact or its .sig, when it is not the
	// installer itself (Tauri's .app.tar.gz on mac).
	FileUpdater = "updater"
)

// MaxReleaseFileContent is the largest content a ReleaseFile keeps (update
// manifests are a few kilobytes).
const MaxReleaseFileContent = 1 << 20

// ReleaseFile is a file a publication added to a release's GitHub release
// besides the builds' installers: SHA256SUMS, update manifests, updater
// artifacts. It is recorded once, after publication, from what GitHub
// stores (size, digest, asset id), so that GET /releases/:id and the update
// server answer without asking GitHub again. Manifests keep their content.
type ReleaseFile struct {
	ReleaseID string `gorm:"primaryKey;size:40"`
	Name      string `gorm:"primaryKey;size:255"`
	Kind      string `gorm:"size:16;not null"`
	Size      int64
	SHA256    string `gorm:"column:sha256;size:64"`
	// Repository and AssetID locate the GitHub asset (downloads).
	Repository string `gorm:"size:200;not null"`
	AssetID    int64
	// RepoPrivate is the repository's visibility at publication.
	RepoPrivate bool
	// BrowserDownloadURL is GitHub's public link (it needs credentials in a
	// private repository).
	BrowserDownloadURL string `gorm:"size:2048"`
	// Content is the file's text, for manifests only ("" otherwise).
	Content   string `gorm:"type:text"`
	CreatedAt time.Time
}

// RecordReleaseFiles stores the files of a published release. Files already
// recorded (by another replica or an earlier attempt) are kept: a published
// release's files never change.
func (s *Store) RecordReleaseFiles(ctx context.Context, files []ReleaseFile) error {
	if len(files) == 0 {
		return nil
	}
	for _, f := range files {
		if len(f.Content) > MaxReleaseFileContent {
			return fmt.Errorf("record file %s of release %s: content of %d bytes: %w", f.Name, f.ReleaseID, len(f.Content), ErrInvalid)
		}
	}
	err := s.Gorm(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&files).Error
	if err != nil {
		return fmt.Errorf("record files of release %s: %w", files[0].ReleaseID, err)
	}
	return nil
}

// ReleaseFiles returns the recorded files of a release, by name; none
// before its publication was recorded.
func (s *Store) ReleaseFiles(ctx context.Context, releaseID string) ([]ReleaseFile, error) {
	var fs []ReleaseFile
	if err := s.Gorm(ctx).Where("release_id = ?", releaseID).Order("name").Find(&fs).Error; err != nil {
		return nil, fmt.Errorf("files of release %s: %w", releaseID, err)
	}
	return fs, nil
}

// PublishedReleases returns a project's published releases (any order).
func (s *Store) PublishedReleases(ctx context.Context, projectID string) ([]Release, error) {
	var rs []Release
	err := s.Gorm(ctx).Where("project_id = ? AND published_at IS NOT NULL", projectID).Find(&rs).Error
	if err != nil {
		return nil, fmt.Errorf("published releases of %s: %w", projectID, err)
	}
	return rs, nil
}
