package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
)

// moveBuild moves a build to status as the engine would.
func (b *apiBundle) moveBuild(t *testing.T, id, status string) {
	t.Helper()
	now := time.Now()
	require.NoError(t, b.store.Tx(b.ctx, func(tx *gorm.DB) error {
		bd, err := b.store.LockBuildTx(b.ctx, tx, id)
		if err != nil {
			return err
		}
		_, err = models.TransitionBuildTx(b.ctx, tx, &bd, models.Transition{To: status, At: now, Level: models.LevelInfo, Message: "test: " + status}, now)
		return err
	}))
}

func releaseBuildIDs(t *testing.T, rel map[string]any) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for _, x := range rel["builds"].([]any) {
		m := x.(map[string]any)
		ids[m["platform"].(string)+"/"+m["arch"].(string)] = m["id"].(string)
	}
	return ids
}

func TestCreateReleaseQueuesOneBuildPerTarget(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		r := b.do(t, http.MethodPost, "/projects/"+b.projectA.ID+"/releases", b.keyA, map[string]any{"notes": "First"},
			"Idempotency-Key", "rel-1")
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		rel := r.json(t)
		require.Regexp(t, `^rel_[0-9a-z]{26}$`, rel["id"])
		require.Equal(t, testPublicURL+"/releases/"+rel["id"].(string), r.header.Get("Location"))
		require.Equal(t, "1.0.0", rel["version"])
		require.Equal(t, "queued", rel["status"])
		require.Len(t, releaseBuildIDs(t, rel), 6)
		require.EqualValues(t, 6, b.count(t, "builds"))
		var jobs int64
		require.NoError(t, b.db.Gorm.Raw("SELECT count(*) FROM river_job WHERE kind = 'dispatch_build'").Scan(&jobs).Error)
		require.EqualValues(t, 6, jobs)

		// Replay: same release, nothing new.
		again := b.do(t, http.MethodPost, "/projects/"+b.projectA.ID+"/releases", b.keyA, map[string]any{"notes": "First"},
			"Idempotency-Key", "rel-1")
		require.Equal(t, http.StatusCreated, again.status)
		require.Equal(t, rel["id"], again.json(t)["id"])
		require.EqualValues(t, 6, b.count(t, "builds"))

		got := b.do(t, http.MethodGet, "/releases/"+rel["id"].(string), b.keyA, nil)
		require.Equal(t, http.StatusOK, got.status)
		require.Equal(t, rel["builds"], got.json(t)["builds"])
		require.Equal(t, http.StatusNotFound, b.do(t, http.MethodGet, "/releases/"+rel["id"].(string), b.keyB, nil).status)

		list := b.do(t, http.MethodGet, "/projects/"+b.projectA.ID+"/releases?limit=1", b.adminKey, nil).json(t)
		require.EqualValues(t, 1, list["total"])
		require.Len(t, list["releases"], 1)
		require.Nil(t, list["nextCursor"])
	})
}

func TestCreateReleaseValidation(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, "sqlite")
	cases := []struct {
		name  string
		key   string
		body  map[string]any
		code  string
		field string
	}{
		{"unknown target", b.keyA, map[string]any{"targets": []string{"mac/x64", "beos/x64"}}, "invalid_request", "targets[1]"},
		{"repeated target", b.keyA, map[string]any{"targets": []string{"mac/x64", "mac/x64"}}, "invalid_request", "targets[1]"},
		{"bad version", b.keyA, map[string]any{"version": "one"}, "invalid_request", "version"},
		{"no version", b.adminKey, map[string]any{}, "invalid_request", "version"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			project := b.projectA.ID
			if tc.name == "no version" {
				project = b.projectB.ID
			}
			r := b.do(t, http.MethodPost, "/projects/"+project+"/releases", tc.key, tc.body)
			require.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
			code, field := r.errorOf(t)
			require.Equal(t, tc.code, code)
			require.Equal(t, tc.field, field)
		})
	}
	r := b.do(t, http.MethodPost, "/projects/"+b.projectA.ID+"/releases", b.keyB, map[string]any{})
	require.Equal(t, http.StatusNotFound, r.status)
	require.EqualValues(t, 0, b.count(t, "releases"))
}

func TestReleaseStatusFollowsBuildsAndRetryRebuildsFailedTargets(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		r := b.do(t, http.MethodPost, "/projects/"+b.projectA.ID+"/releases", b.keyA,
			map[string]any{"version": "2.0.0", "targets": []string{"mac/arm64", "linux/x64"}})
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		relID := r.json(t)["id"].(string)
		ids := releaseBuildIDs(t, r.json(t))
		status := func() string {
			return b.do(t, http.MethodGet, "/releases/"+relID, b.keyA, nil).json(t)["status"].(string)
		}

		b.moveBuild(t, ids["mac/arm64"], models.StatusBuilding)
		require.Equal(t, "building", status())
		b.moveBuild(t, ids["linux/x64"], models.StatusFailed)
		require.Equal(t, "building", status(), "mac/arm64 still runs")
		b.moveBuild(t, ids["mac/arm64"], models.StatusSuccess)
		require.Equal(t, "failed", status())
		rt := b.do(t, http.MethodPost, "/releases/"+relID+"/cancel", b.keyA, nil)
		require.Equal(t, http.StatusConflict, rt.status)

		retry := b.do(t, http.MethodPost, "/releases/"+relID+"/retry", b.keyA, nil)
		require.Equal(t, http.StatusAccepted, retry.status, "%s", retry.body)
		require.Equal(t, "building", retry.json(t)["status"])
		newIDs := releaseBuildIDs(t, retry.json(t))
		require.Equal(t, ids["mac/arm64"], newIDs["mac/arm64"], "the succeeded target is kept")
		require.NotEqual(t, ids["linux/x64"], newIDs["linux/x64"])
		require.EqualValues(t, 3, b.count(t, "builds"))
		again := b.do(t, http.MethodPost, "/releases/"+relID+"/retry", b.keyA, nil)
		require.Equal(t, http.StatusConflict, again.status)
		code, _ := again.errorOf(t)
		require.Equal(t, "release_not_retryable", code)

		var published int64
		require.NoError(t, b.db.Gorm.Raw("SELECT count(*) FROM river_job WHERE kind = 'publish_release'").Scan(&published).Error)
		require.Zero(t, published, "a failed release gets no publication")

		b.moveBuild(t, newIDs["linux/x64"], models.StatusSuccess)
		require.Equal(t, "success", status())
		require.NoError(t, b.db.Gorm.Raw("SELECT count(*) FROM river_job WHERE kind = 'publish_release'").Scan(&published).Error)
		require.EqualValues(t, 1, published)

		var types []string
		require.NoError(t, b.db.Gorm.Raw("SELECT type FROM events WHERE resource_id = ? ORDER BY id", relID).Scan(&types).Error)
		require.Equal(t, []string{"release.queued", "release.building", "release.failed", "release.building", "release.succeeded"}, types)
	})
}

func TestCancelRelease(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, "sqlite")
	r := b.do(t, http.MethodPost, "/projects/"+b.projectA.ID+"/releases", b.keyA, map[string]any{"targets": []string{"windows/x64"}})
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	relID := r.json(t)["id"].(string)
	c := b.do(t, http.MethodPost, "/releases/"+relID+"/cancel", b.keyA, nil)
	require.Equal(t, http.StatusAccepted, c.status, "%s", c.body)
	require.Equal(t, "cancelled", c.json(t)["status"])
	require.Equal(t, http.StatusNotFound, b.do(t, http.MethodPost, "/releases/"+relID+"/cancel", b.keyB, nil).status)
}

func TestPublishedVersionIsImmutable(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, "sqlite")
	r := b.do(t, http.MethodPost, "/projects/"+b.projectA.ID+"/releases", b.keyA, map[string]any{"targets": []string{"windows/x64"}})
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	relID := r.json(t)["id"].(string)
	require.NoError(t, b.store.Tx(b.ctx, func(tx *gorm.DB) error {
		_, err := models.MarkReleasePublishedTx(b.ctx, tx, relID, "", time.Now())
		return err
	}))
	for _, path := range []string{"/builds", "/releases"} {
		body := map[string]any{"platform": "mac"}
		if path == "/releases" {
			body = map[string]any{}
		}
		c := b.do(t, http.MethodPost, "/projects/"+b.projectA.ID+path, b.keyA, body)
		require.Equal(t, http.StatusConflict, c.status, "%s", c.body)
		code, _ := c.errorOf(t)
		require.Equal(t, "version_published", code)
	}
	ok := b.do(t, http.MethodPost, "/projects/"+b.projectA.ID+"/builds", b.keyA, map[string]any{"platform": "mac", "version": "1.0.1"})
	require.Equal(t, http.StatusCreated, ok.status)
}
