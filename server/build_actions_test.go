package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/workflows"
)

// noRedirects makes the bundle's client show redirects instead of following them.
func noRedirects(b *engineBundle) {
	c := *b.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	b.client = &c
}

func TestCancelBuild(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			b := setupEngineAPI(t, dialect, engineOpts{})
			id := b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": "mac"})

			// Another project's key: 404.
			r := b.do(t, http.MethodPost, "/builds/"+id+"/cancel", b.keyB, nil)
			require.Equal(t, http.StatusNotFound, r.status)

			// Not dispatched yet: cancelled at once.
			r = b.do(t, http.MethodPost, "/builds/"+id+"/cancel", b.keyA, nil)
			require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)
			body := r.json(t)
			require.Equal(t, "cancelled", body["status"])
			require.NotNil(t, body["completedAt"])

			// Terminal: 409, saying it is finished and how.
			r = b.do(t, http.MethodPost, "/builds/"+id+"/cancel", b.keyA, nil)
			require.Equal(t, http.StatusConflict, r.status)
			code, _ := r.errorOf(t)
			require.Equal(t, "build_finished", code)
			require.Contains(t, r.json(t)["error"].(map[string]any)["message"], "build "+id+" already finished (cancelled)")

			r = b.do(t, http.MethodPost, "/builds/build_01hzzzzzzzzzzzzzzzzzzzzzzz/cancel", b.adminKey, nil)
			require.Equal(t, http.StatusNotFound, r.status)
		})
	}
}

func TestRetryBuild(t *testing.T) {
	t.Parallel()
	b := setupEngineAPI(t, models.DialectSQLite, engineOpts{})
	id := b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": "windows", "arch": "arm64", "version": "2.0.0"})

	r := b.do(t, http.MethodPost, "/builds/"+id+"/retry", b.keyA, nil)
	require.Equal(t, http.StatusConflict, r.status, "an active build is not retried")
	code, _ := r.errorOf(t)
	require.Equal(t, "build_active", code)

	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, "/builds/"+id+"/cancel", b.keyA, nil).status)
	r = b.do(t, http.MethodPost, "/builds/"+id+"/retry", b.keyA, nil)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	body := r.json(t)
	require.NotEqual(t, id, body["id"])
	require.Equal(t, id, body["retryOf"])
	require.Equal(t, "queued", body["status"])
	for k, v := range map[string]string{"projectId": b.projectA.ID, "platform": "windows", "arch": "arm64", "version": "2.0.0"} {
		require.Equal(t, v, body[k], k)
	}
	require.Equal(t, testPublicURL+"/builds/"+body["id"].(string), r.header.Get("Location"))
	got := b.do(t, http.MethodGet, "/builds/"+body["id"].(string), b.keyA, nil).json(t)
	require.Equal(t, id, got["retryOf"])
	require.Equal(t, int64(2), b.jobs(t, workflows.DispatchBuildArgs{}.Kind()))

	require.Equal(t, http.StatusNotFound, b.do(t, http.MethodPost, "/builds/"+id+"/retry", b.keyB, nil).status)
}

// TestBuildsOfDeletedProject: the builds a deleted project keeps answer
// GET, and a retry answers 409 project_deleted instead of a 404 that would
// say the build does not exist.
func TestBuildsOfDeletedProject(t *testing.T) {
	t.Parallel()
	b := setupEngineAPI(t, models.DialectSQLite, engineOpts{})
	id := b.createBuild(t, b.projectA.ID, b.adminKey, map[string]any{"platform": "mac"})
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, "/builds/"+id+"/cancel", b.adminKey, nil).status)
	require.Equal(t, http.StatusNoContent, b.do(t, http.MethodDelete, "/projects/"+b.projectA.ID, b.adminKey, nil).status)

	r := b.do(t, http.MethodGet, "/builds/"+id, b.adminKey, nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/builds/"+id+"/logs", b.adminKey, nil).status)

	r = b.do(t, http.MethodPost, "/builds/"+id+"/retry", b.adminKey, nil)
	require.Equal(t, http.StatusConflict, r.status, "%s", r.body)
	code, _ := r.errorOf(t)
	require.Equal(t, "project_deleted", code)
	require.Contains(t, r.json(t)["error"].(map[string]any)["message"], "was deleted")
}

// TestNotReadySaysWhy: downloading a build that will never have an
// artifact says so, instead of "once it has succeeded".
func TestNotReadySaysWhy(t *testing.T) {
	t.Parallel()
	b := setupEngineAPI(t, models.DialectSQLite, engineOpts{})
	tests := []struct {
		status, want string
	}{
		{models.StatusFailed, "failed and has no artifact"},
		{models.StatusCancelled, "was cancelled and has no artifact"},
		{models.StatusBuilding, "can be downloaded once it has succeeded"},
	}
	for _, tt := range tests {
		id := b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": "mac"})
		require.NoError(t, b.db.Gorm.Model(&models.Build{}).Where("id = ?", id).Update("status", tt.status).Error)
		r := b.do(t, http.MethodGet, "/builds/"+id+"/download", b.keyA, nil)
		require.Equal(t, http.StatusConflict, r.status)
		code, _ := r.errorOf(t)
		require.Equal(t, "not_ready", code)
		require.Contains(t, r.json(t)["error"].(map[string]any)["message"], tt.want, tt.status)
	}
}

func TestDownloadRedirects(t *testing.T) {
	t.Parallel()
	b := setupEngineAPI(t, models.DialectSQLite, engineOpts{})
	noRedirects(b)
	id := b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": "mac"})

	for _, path := range []string{"/builds/" + id + "/download", "/builds/" + id + "/artifacts/my-app-1.0.0-mac-x64.dmg"} {
		r := b.do(t, http.MethodGet, path, b.keyA, nil)
		require.Equal(t, http.StatusConflict, r.status, path)
		code, _ := r.errorOf(t)
		require.Equal(t, "not_ready", code)
	}

	public := b.succeed(t, id, false)
	r := b.do(t, http.MethodGet, "/builds/"+id+"/download", b.keyA, nil)
	require.Equal(t, http.StatusFound, r.status)
	require.Equal(t, public.ArtifactDownloadURL, r.header.Get("Location"))

	got := b.do(t, http.MethodGet, "/builds/"+id, b.keyA, nil).json(t)
	require.Regexp(t, `^`+regexp.QuoteMeta(testPublicURL)+`/signed/\d+/[A-Za-z0-9_-]{43}/builds/`+id+`/artifacts/my-app-1\.0\.0-mac-x64\.dmg$`, got["artifactUrl"])
	require.EqualValues(t, len(artifactBytes), got["artifactSize"])

	b.succeed(t, id, true)
	r = b.do(t, http.MethodGet, "/builds/"+id+"/artifacts/my-app-1.0.0-mac-x64.dmg", b.keyA, nil)
	require.Equal(t, http.StatusFound, r.status)
	require.Equal(t, b.signed.URL+"/signed/42?sig=abc", r.header.Get("Location"), "private: GitHub's signed URL, no token")

	r = b.do(t, http.MethodGet, "/builds/"+id+"/artifacts/other.dmg", b.keyA, nil)
	require.Equal(t, http.StatusNotFound, r.status)
	require.Equal(t, http.StatusNotFound, b.do(t, http.MethodGet, "/builds/"+id+"/download", b.keyB, nil).status)
}

func TestDownloadFollowedYieldsExactBytes(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{workflows.DownloadRedirect, workflows.DownloadProxy} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			b := setupEngineAPI(t, models.DialectSQLite, engineOpts{downloadMode: mode})
			id := b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": "mac"})
			b.succeed(t, id, true)
			// curl -L -o file: follow the redirect (without our key) and write the bytes.
			r := b.do(t, http.MethodGet, "/builds/"+id+"/download", b.keyA, nil)
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			require.Equal(t, artifactBytes, r.body)
		})
	}
}

func TestDownloadProxyHeadersAndRanges(t *testing.T) {
	t.Parallel()
	b := setupEngineAPI(t, models.DialectSQLite, engineOpts{downloadMode: workflows.DownloadProxy})
	id := b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": "mac"})
	got := b.succeed(t, id, false)
	sum := sha256.Sum256(artifactBytes)
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	path := "/builds/" + id + "/artifacts/" + got.ArtifactName

	r := b.do(t, http.MethodGet, path, b.keyA, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, artifactBytes, r.body)
	require.Equal(t, fmt.Sprint(len(artifactBytes)), r.header.Get("Content-Length"))
	require.Equal(t, etag, r.header.Get("ETag"))
	require.Equal(t, "bytes", r.header.Get("Accept-Ranges"))
	require.Equal(t, `attachment; filename=my-app-1.0.0-mac-x64.dmg`, r.header.Get("Content-Disposition"))
	require.Equal(t, "application/x-apple-diskimage", r.header.Get("Content-Type"))

	tests := []struct {
		name    string
		headers []string
		status  int
		body    []byte
		cr      string
	}{
		{"first bytes", []string{"Range", "bytes=0-9"}, http.StatusPartialContent, artifactBytes[:10], fmt.Sprintf("bytes 0-9/%d", len(artifactBytes))},
		{"suffix", []string{"Range", "bytes=-5"}, http.StatusPartialContent, artifactBytes[len(artifactBytes)-5:], fmt.Sprintf("bytes %d-%d/%d", len(artifactBytes)-5, len(artifactBytes)-1, len(artifactBytes))},
		{"resume with matching If-Range", []string{"Range", "bytes=100-", "If-Range", etag}, http.StatusPartialContent, artifactBytes[100:], fmt.Sprintf("bytes 100-%d/%d", len(artifactBytes)-1, len(artifactBytes))},
		{"stale If-Range: whole file", []string{"Range", "bytes=100-", "If-Range", `"old"`}, http.StatusOK, artifactBytes, ""},
		{"unsatisfiable", []string{"Range", "bytes=999999999-"}, http.StatusRequestedRangeNotSatisfiable, nil, ""},
		{"not modified", []string{"If-None-Match", etag}, http.StatusNotModified, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.do(t, http.MethodGet, path, b.keyA, nil, tt.headers...)
			require.Equal(t, tt.status, r.status, "%s", r.body)
			if tt.body != nil {
				require.Equal(t, tt.body, r.body)
				require.Equal(t, fmt.Sprint(len(tt.body)), r.header.Get("Content-Length"))
			}
			if tt.cr != "" {
				require.Equal(t, tt.cr, r.header.Get("Content-Range"))
			}
		})
	}
	// HEAD: headers only.
	r = b.do(t, http.MethodHead, path, b.keyA, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, fmt.Sprint(len(artifactBytes)), r.header.Get("Content-Length"))
	require.Empty(t, r.body)
	require.True(t, strings.HasPrefix(r.header.Get("Content-Disposition"), "attachment"))
}
