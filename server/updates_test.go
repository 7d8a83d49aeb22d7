package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/server"
	"github.com/deskforge/deskforge/workflows"
)

// testPlatforms are the Tauri platform keys of a seeded release and the
// name of each one's updater artifact.
var testPlatforms = map[string]string{
	"darwin-aarch64": "My App.app.tar.gz",
	"windows-x86_64": "my-app-1.0.0-mac-x64.dmg", // a build's installer (see succeed)
	"linux-x86_64":   "my-app.AppImage",
}

// publishRelease stores a published release of version for project, with
// the latest.json its publication would have written (GitHub URLs under
// github.test, signatures "sig <version> <key>"), as the publish job and
// RecordReleaseFiles leave it.
func (b *apiBundle) publishRelease(t testing.TB, projectID, version string, private bool) models.Release {
	t.Helper()
	now := time.Now().UTC()
	rel := models.Release{ID: models.NewID("rel"), ProjectID: projectID, Version: version, Targets: "mac/arm64",
		Notes: "Notes of " + version, Status: models.StatusSuccess, CreatedAt: now, UpdatedAt: now, CompletedAt: &now}
	m := workflows.TauriManifest{Version: version, Notes: rel.Notes, PubDate: now.Format(time.RFC3339), Platforms: map[string]workflows.TauriPlatform{}}
	for key, name := range testPlatforms {
		m.Platforms[key] = workflows.TauriPlatform{Signature: "sig " + version + " " + key,
			URL: "https://github.test/acme/app/releases/download/v" + version + "/" + strings.ReplaceAll(name, " ", "%20")}
	}
	manifest, err := json.Marshal(m)
	require.NoError(t, err)
	require.NoError(t, b.store.Tx(b.ctx, func(tx *gorm.DB) error {
		if err := models.CreateReleaseTx(b.ctx, tx, &rel); err != nil {
			return err
		}
		_, err := models.MarkReleasePublishedTx(b.ctx, tx, rel.ID, "https://github.test/acme/app/releases/tag/v"+version, now)
		return err
	}))
	require.NoError(t, b.store.RecordReleaseFiles(b.ctx, []models.ReleaseFile{
		{ReleaseID: rel.ID, Name: workflows.TauriManifestAsset, Kind: models.FileManifest, Size: int64(len(manifest)),
			SHA256: "00", Repository: "acme/app", AssetID: 7, RepoPrivate: private, Content: string(manifest)},
		{ReleaseID: rel.ID, Name: "My App.app.tar.gz", Kind: models.FileUpdater, Size: 10, Repository: "acme/app",
			AssetID: 8, RepoPrivate: private, BrowserDownloadURL: m.Platforms["darwin-aarch64"].URL},
	}))
	got, err := b.store.GetRelease(b.ctx, rel.ID)
	require.NoError(t, err)
	return got
}

// setAutoUpdate switches a project's features.autoUpdate through the API.
func (b *apiBundle) setAutoUpdate(t testing.TB, projectID string, on bool) {
	t.Helper()
	r := b.do(t, http.MethodPatch, "/projects/"+projectID, b.adminKey, map[string]any{"features": map[string]any{"autoUpdate": on}})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
}

// countQueries counts the database queries made from now on.
func countQueries(t *testing.T, db *gorm.DB) *atomic.Int64 {
	t.Helper()
	n := &atomic.Int64{}
	count := func(*gorm.DB) { n.Add(1) }
	require.NoError(t, db.Callback().Query().After("gorm:query").Register("test:count_queries", count))
	require.NoError(t, db.Callback().Row().After("gorm:row").Register("test:count_rows", count))
	return n
}

func TestUpdateEndpoint(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			b := setupEngineAPI(t, dialect, engineOpts{})
			p := b.projectA.ID
			b.setAutoUpdate(t, p, true)
			b.publishRelease(t, p, "1.0.0", false)
			b.publishRelease(t, p, "1.1.0", false)
			b.publishRelease(t, p, "1.2.0-beta.1", false)
			// Built but not published: never offered.
			unpublished := models.Release{ID: models.NewID("rel"), ProjectID: p, Version: "9.0.0", Targets: "mac/arm64", Status: models.StatusSuccess}
			require.NoError(t, b.store.Tx(b.ctx, func(tx *gorm.DB) error { return models.CreateReleaseTx(b.ctx, tx, &unpublished) }))

			tests := []struct {
				name, path string
				status     int
				version    string // of the offered update (200)
				code       string // of the error (4xx)
				field      string
			}{
				{"older", "/updates/" + p + "/darwin/aarch64/1.0.0", 200, "1.1.0", "", ""},
				{"equal", "/updates/" + p + "/darwin/aarch64/1.1.0", 204, "", "", ""},
				{"newer", "/updates/" + p + "/darwin/aarch64/1.5.0", 204, "", "", ""},
				{"much older", "/updates/" + p + "/linux/x86_64/0.1.0", 200, "1.1.0", "", ""},
				{"DeskForge's names", "/updates/" + p + "/mac/arm64/1.0.0", 200, "1.1.0", "", ""},
				{"pre-release not offered to a stable client", "/updates/" + p + "/windows/x86_64/1.1.0", 204, "", "", ""},
				{"pre-release offered to a pre-release client", "/updates/" + p + "/windows/x86_64/1.1.0-beta.3", 200, "1.2.0-beta.1", "", ""},
				{"older pre-release of the same version", "/updates/" + p + "/windows/x64/1.2.0-alpha.1", 200, "1.2.0-beta.1", "", ""},
				{"pre-release client on the latest", "/updates/" + p + "/windows/x86_64/1.2.0-beta.1", 204, "", "", ""},
				{"pre-release client past every pre-release gets the stable", "/updates/" + p + "/darwin/aarch64/1.0.1-rc.1", 200, "1.2.0-beta.1", "", ""},
				{"target the release lacks", "/updates/" + p + "/linux/armv7/1.0.0", 204, "", "", ""},
				{"malformed version", "/updates/" + p + "/darwin/aarch64/1.0", 400, "", "invalid_request", "currentVersion"},
				{"version with v", "/updates/" + p + "/darwin/aarch64/v1.0.0", 400, "", "invalid_request", "currentVersion"},
				{"unknown target", "/updates/" + p + "/solaris/aarch64/1.0.0", 400, "", "invalid_request", "target"},
				{"unknown arch", "/updates/" + p + "/linux/mips/1.0.0", 400, "", "invalid_request", "arch"},
				{"unknown project", "/updates/" + models.NewID("proj") + "/darwin/aarch64/1.0.0", 404, "", "not_found", ""},
				{"malformed project id", "/updates/nope/darwin/aarch64/1.0.0", 404, "", "not_found", ""},
				{"project without autoUpdate", "/updates/" + b.projectB.ID + "/linux/x86_64/0.0.1", 404, "", "not_found", ""},
			}
			for _, tt := range tests {
				r := b.do(t, http.MethodGet, tt.path, "", nil)
				require.Equal(t, tt.status, r.status, "%s: %s", tt.name, r.body)
				switch tt.status {
				case http.StatusOK:
					var got map[string]string
					require.NoError(t, json.Unmarshal(r.body, &got), tt.name)
					require.Equal(t, tt.version, got["version"], tt.name)
					require.Equal(t, "Notes of "+tt.version, got["notes"], tt.name)
					_, err := time.Parse(time.RFC3339, got["pub_date"])
					require.NoError(t, err, tt.name)
					key := strings.SplitN(strings.TrimPrefix(tt.path, "/updates/"+p+"/"), "/", 3)
					platform := map[string]string{"mac": "darwin"}[key[0]] + map[string]string{"darwin": "darwin", "windows": "windows", "linux": "linux"}[key[0]]
					arch := map[string]string{"arm64": "aarch64", "x64": "x86_64"}[key[1]] + map[string]string{"aarch64": "aarch64", "x86_64": "x86_64"}[key[1]]
					require.Equal(t, "sig "+tt.version+" "+platform+"-"+arch, got["signature"], tt.name)
					// A public repository: GitHub's own link.
					require.True(t, strings.HasPrefix(got["url"], "https://github.test/acme/app/releases/download/v"+tt.version+"/"), "%s: %s", tt.name, got["url"])
					require.Len(t, got, 5, tt.name)
				case http.StatusNoContent:
					require.Empty(t, r.body, tt.name)
				default:
					code, field := r.errorOf(t)
					require.Equal(t, tt.code, code, tt.name)
					require.Equal(t, tt.field, field, tt.name)
				}
			}

			// Served from memory: no query until something changes.
			queries := countQueries(t, b.db.Gorm)
			for range 20 {
				require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/updates/"+p+"/darwin/aarch64/1.0.0", "", nil).status)
			}
			require.Zero(t, queries.Load(), "the update endpoint read the database on its hot path")

			// A publication reaches clients without a restart (the
			// release.published event reloads the cache)…
			b.publishRelease(t, p, "1.3.0", false)
			require.Eventually(t, func() bool {
				r := b.do(t, http.MethodGet, "/updates/"+p+"/darwin/aarch64/1.1.0", "", nil)
				return r.status == http.StatusOK && r.json(t)["version"] == "1.3.0"
			}, 30*time.Second, 20*time.Millisecond)
			require.NotZero(t, queries.Load(), "the counter counts (the reload read the database)")
			// …and so does switching auto-update off.
			b.setAutoUpdate(t, p, false)
			require.Eventually(t, func() bool {
				return b.do(t, http.MethodGet, "/updates/"+p+"/darwin/aarch64/1.1.0", "", nil).status == http.StatusNotFound
			}, 30*time.Second, 20*time.Millisecond)
		})
	}
}

// TestUpdateEndpointPrivateRepository: GitHub's links of a private
// repository need credentials, so the update points at signed DeskForge
// links, which an app follows without a key.
func TestUpdateEndpointPrivateRepository(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			b := setupEngineAPI(t, dialect, engineOpts{})
			noRedirects(b)
			p := b.projectA.ID
			b.setAutoUpdate(t, p, true)
			rel := b.publishRelease(t, p, "1.1.0", true)
			// The Windows updater artifact is the installer of a build of
			// the release.
			buildID := b.createBuild(t, p, b.keyA, map[string]any{"platform": "mac"})
			b.succeed(t, buildID, true)
			require.NoError(t, b.db.Gorm.Model(&models.Build{}).Where("id = ?", buildID).Update("release_id", rel.ID).Error)

			for _, tt := range []struct{ target, wantPath string }{
				{"darwin/aarch64", "/releases/" + rel.ID + "/files/My%20App.app.tar.gz"},
				{"windows/x86_64", "/builds/" + buildID + "/artifacts/my-app-1.0.0-mac-x64.dmg"},
			} {
				r := b.do(t, http.MethodGet, "/updates/"+p+"/"+tt.target+"/1.0.0", "", nil)
				require.Equal(t, http.StatusOK, r.status, "%s", r.body)
				u := r.json(t)["url"].(string)
				require.Regexp(t, `^`+testPublicURL+`/signed/\d+/[A-Za-z0-9_-]{43}`+tt.wantPath+`$`, u)
				// Followed without a key: a redirect to GitHub's signed URL.
				followed := b.do(t, http.MethodGet, strings.TrimPrefix(u, testPublicURL), "", nil)
				require.Equal(t, http.StatusFound, followed.status, "%s: %s", tt.target, followed.body)
				require.Contains(t, followed.header.Get("Location"), b.signed.URL+"/signed/")
			}
		})
	}
}

func TestUpdateEndpointRateLimitedPerAddress(t *testing.T) {
	t.Parallel()
	b := startAPI(t, models.DialectSQLite, nil, workflows.Options{}, server.Options{
		RateLimits: &server.RateLimits{Read: server.Rate{PerSecond: 0.001, Burst: 3}},
	})
	p := b.projectA.ID
	require.NoError(t, b.db.Gorm.Model(&models.Project{}).Where("id = ?", p).Update("feature_auto_update", true).Error)
	b.publishRelease(t, p, "1.1.0", false)
	for i := range 3 {
		r := b.do(t, http.MethodGet, "/updates/"+p+"/linux/x86_64/1.0.0", "", nil)
		require.Equal(t, http.StatusOK, r.status, "request %d: %s", i, r.body)
	}
	r := b.do(t, http.MethodGet, "/updates/"+p+"/linux/x86_64/1.0.0", "", nil)
	require.Equal(t, http.StatusTooManyRequests, r.status)
	code, _ := r.errorOf(t)
	require.Equal(t, "rate_limited", code)
	require.NotEmpty(t, r.header.Get("Retry-After"))
	// Any project, any version: the address's bucket is empty.
	r = b.do(t, http.MethodGet, fmt.Sprintf("/updates/%s/darwin/aarch64/0.0.%d", models.NewID("proj"), 1), "", nil)
	require.Equal(t, http.StatusTooManyRequests, r.status)
}
