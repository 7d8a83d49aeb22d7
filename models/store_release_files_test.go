package models_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
)

func TestReleaseFilesAreRecordedOnce(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := dbtest.Open(t, dialect)
			store := models.NewStore(db)
			p := models.Project{Name: "App", Repository: "acme/app", Platforms: "linux"}
			require.NoError(t, store.CreateProject(ctx, &p))
			now := time.Now().UTC()
			published := models.Release{ID: models.NewID("rel"), ProjectID: p.ID, Version: "1.0.0", Targets: "linux/x64",
				Status: models.StatusSuccess, PublishedAt: &now}
			draft := models.Release{ID: models.NewID("rel"), ProjectID: p.ID, Version: "1.1.0", Targets: "linux/x64",
				Status: models.StatusSuccess}
			require.NoError(t, db.Gorm.Create(&published).Error)
			require.NoError(t, db.Gorm.Create(&draft).Error)

			got, err := store.PublishedReleases(ctx, p.ID)
			require.NoError(t, err)
			require.Len(t, got, 1)
			require.Equal(t, published.ID, got[0].ID)

			none, err := store.ReleaseFiles(ctx, published.ID)
			require.NoError(t, err)
			require.Empty(t, none)
			first := []models.ReleaseFile{
				{ReleaseID: published.ID, Name: "latest.json", Kind: models.FileManifest, Size: 2, SHA256: "aa", Repository: "acme/app", Content: "{}"},
				{ReleaseID: published.ID, Name: "SHA256SUMS", Kind: models.FileChecksums, Size: 3, SHA256: "bb", Repository: "acme/app", Content: "x\n"},
			}
			require.NoError(t, store.RecordReleaseFiles(ctx, first))
			// Another replica records the same files (say with another
			// digest): the first record stays.
			again := append([]models.ReleaseFile(nil), first...)
			again[0].SHA256, again[0].Content = "cc", `{"v":1}`
			require.NoError(t, store.RecordReleaseFiles(ctx, again))
			files, err := store.ReleaseFiles(ctx, published.ID)
			require.NoError(t, err)
			require.Len(t, files, 2)
			require.Equal(t, "SHA256SUMS", files[0].Name, "by name")
			require.Equal(t, "latest.json", files[1].Name)
			require.Equal(t, "aa", files[1].SHA256)
			require.Equal(t, "{}", files[1].Content)

			huge := models.ReleaseFile{ReleaseID: draft.ID, Name: "latest.json", Kind: models.FileManifest, Repository: "acme/app",
				Content: strings.Repeat("x", models.MaxReleaseFileContent+1)}
			require.ErrorIs(t, store.RecordReleaseFiles(ctx, []models.ReleaseFile{huge}), models.ErrInvalid)
		})
	}
}
