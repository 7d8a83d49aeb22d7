package server_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/server"
	"github.com/deskforge/deskforge/workflows"
)

// signedLinkRe splits a signed link: expires, signature, unsigned path.
var signedLinkRe = regexp.MustCompile(`^` + regexp.QuoteMeta(testPublicURL) + `/signed/(\d+)/([A-Za-z0-9_-]{43})(/.+)$`)

// signLink signs path as the documented format says (signing.go).
func signLink(key []byte, path string, expires int64) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(path + "\n" + strconv.FormatInt(expires, 10)))
	return "/signed/" + strconv.FormatInt(expires, 10) + "/" + base64.RawURLEncoding.EncodeToString(m.Sum(nil)) + path
}

// storedSigningKey is the key the server generated and stored.
func (b *apiBundle) storedSigningKey(t *testing.T) []byte {
	t.Helper()
	v, err := b.store.GetSetting(b.ctx, "downloads.signing_key")
	require.NoError(t, err)
	key, err := hex.DecodeString(v)
	require.NoError(t, err)
	require.Len(t, key, 32)
	return key
}

func TestSignedArtifactLinks(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			b := setupEngineAPI(t, dialect, engineOpts{})
			noRedirects(b)
			idA := b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": "mac"})
			idB := b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": "mac"})
			public := b.succeed(t, idA, false)
			b.succeed(t, idB, false)

			link := b.do(t, http.MethodGet, "/builds/"+idA, b.keyA, nil).json(t)["artifactUrl"].(string)
			parts := signedLinkRe.FindStringSubmatch(link)
			require.NotNil(t, parts, link)
			expires, sig, pathA := parts[1], parts[2], parts[3]
			require.Equal(t, "/builds/"+idA+"/artifacts/my-app-1.0.0-mac-x64.dmg", pathA)
			exp, err := strconv.ParseInt(expires, 10, 64)
			require.NoError(t, err)
			require.GreaterOrEqual(t, exp, time.Now().Add(server.SignedLinkTTL).Unix()-1, "valid for at least SignedLinkTTL")
			key := b.storedSigningKey(t)
			require.Equal(t, link, testPublicURL+signLink(key, pathA, exp), "the documented format")

			pathB := "/builds/" + idB + "/artifacts/my-app-1.0.0-mac-x64.dmg"
			tampered := []byte(sig)
			tampered[0] ^= 1
			tests := []struct {
				name   string
				path   string
				status int
				code   string
			}{
				{"valid", strings.TrimPrefix(link, testPublicURL), http.StatusFound, ""},
				{"expired", signLink(key, pathA, time.Now().Add(-time.Minute).Unix()), http.StatusForbidden, "link_expired"},
				{"tampered signature", "/signed/" + expires + "/" + string(tampered) + pathA, http.StatusForbidden, "link_invalid"},
				{"expiry moved", "/signed/" + strconv.FormatInt(exp+3600, 10) + "/" + sig + pathA, http.StatusForbidden, "link_invalid"},
				{"another build's signature", "/signed/" + expires + "/" + sig + pathB, http.StatusForbidden, "link_invalid"},
				{"another key", signLink([]byte("not the server's key"), pathA, exp), http.StatusForbidden, "link_invalid"},
				{"malformed expiry", "/signed/soon/" + sig + pathA, http.StatusForbidden, "link_invalid"},
			}
			for _, tt := range tests {
				for _, method := range []string{http.MethodGet, http.MethodHead} {
					r := b.do(t, method, tt.path, "", nil)
					require.Equal(t, tt.status, r.status, "%s %s: %s", method, tt.name, r.body)
					if tt.status == http.StatusFound {
						require.Equal(t, public.ArtifactDownloadURL, r.header.Get("Location"), tt.name)
						continue
					}
					if method == http.MethodGet {
						code, _ := r.errorOf(t)
						require.Equal(t, tt.code, code, tt.name)
					}
				}
			}

			// The authenticated routes are as they were.
			require.Equal(t, http.StatusFound, b.do(t, http.MethodGet, "/builds/"+idA+"/download", b.keyA, nil).status)
			require.Equal(t, http.StatusUnauthorized, b.do(t, http.MethodGet, "/builds/"+idA+"/download", "", nil).status)
			require.Equal(t, http.StatusFound, b.do(t, http.MethodGet, pathA, b.keyA, nil).status)
			require.Equal(t, http.StatusUnauthorized, b.do(t, http.MethodGet, pathA, "", nil).status)

			// Another replica (another server on the same database) shares
			// the stored key: it verifies this one's links.
			engine := workflows.NewEngine(b.store, assetForge{signedBase: b.signed.URL}, nil, nil, workflows.Options{PublicURL: testPublicURL})
			replica := httptest.NewServer(server.New(server.Options{Store: b.store, Engine: engine, PublicURL: testPublicURL}).Handler())
			t.Cleanup(replica.Close)
			c := *b.client
			req, err := http.NewRequestWithContext(b.ctx, http.MethodGet, replica.URL+strings.TrimPrefix(link, testPublicURL), nil)
			require.NoError(t, err)
			resp, err := c.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusFound, resp.StatusCode)
		})
	}
}

// TestSigningKeyConfigured: DESKFORGE_SIGNING_KEY (Options.SigningKey)
// signs the links; nothing is stored.
func TestSigningKeyConfigured(t *testing.T) {
	t.Parallel()
	key := []byte("a configured signing key of 32 bytes or more")
	b := startAPI(t, models.DialectSQLite, assetForge{}, workflows.Options{}, server.Options{SigningKey: key})
	id := b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": "mac"})
	require.NoError(t, b.db.Gorm.Model(&models.Build{}).Where("id = ?", id).Updates(map[string]any{
		"status": models.StatusSuccess, "artifact_asset_id": 1, "artifact_name": "a b.dmg",
		"artifact_download_url": "https://github.test/a%20b.dmg",
	}).Error)
	link := b.do(t, http.MethodGet, "/builds/"+id, b.keyA, nil).json(t)["artifactUrl"].(string)
	parts := signedLinkRe.FindStringSubmatch(link)
	require.NotNil(t, parts, link)
	require.Equal(t, "/builds/"+id+"/artifacts/a%20b.dmg", parts[3])
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	require.NoError(t, err)
	require.Equal(t, testPublicURL+signLink(key, parts[3], exp), link)
	_, err = b.store.GetSetting(b.ctx, "downloads.signing_key")
	require.ErrorIs(t, err, models.ErrNotFound)

	u, err := url.Parse(link)
	require.NoError(t, err)
	c := *b.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(b.url + u.EscapedPath())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	require.Equal(t, "https://github.test/a%20b.dmg", resp.Header.Get("Location"))
}

// TestReleaseAssets: GET /releases/:id lists the installers and the files
// of the publication, each with size, sha256 and a signed link that serves
// exactly the recorded bytes.
func TestReleaseAssets(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			b := setupEngineAPI(t, dialect, engineOpts{})
			rel := b.publishRelease(t, b.projectA.ID, "1.1.0", false)
			buildID := b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": "mac"})
			b.succeed(t, buildID, false)
			require.NoError(t, b.db.Gorm.Model(&models.Build{}).Where("id = ?", buildID).Update("release_id", rel.ID).Error)
			sums := strings.Repeat("a", 64) + "  my-app-1.0.0-mac-x64.dmg\n"
			sum := sha256.Sum256([]byte(sums))
			require.NoError(t, b.store.RecordReleaseFiles(b.ctx, []models.ReleaseFile{{ReleaseID: rel.ID, Name: workflows.ChecksumsAsset,
				Kind: models.FileChecksums, Size: int64(len(sums)), SHA256: hex.EncodeToString(sum[:]), Repository: "acme/app", AssetID: 9, Content: sums}}))

			got := b.do(t, http.MethodGet, "/releases/"+rel.ID, b.keyA, nil)
			require.Equal(t, http.StatusOK, got.status, "%s", got.body)
			assets := map[string]map[string]any{}
			for _, a := range got.json(t)["assets"].([]any) {
				m := a.(map[string]any)
				assets[m["name"].(string)] = m
				require.NotNil(t, signedLinkRe.FindStringSubmatch(m["url"].(string)), "%v", m)
			}
			require.Len(t, assets, 4, "installer, SHA256SUMS, latest.json, updater artifact")
			require.Equal(t, "installer", assets["my-app-1.0.0-mac-x64.dmg"]["kind"])
			require.EqualValues(t, len(artifactBytes), assets["my-app-1.0.0-mac-x64.dmg"]["size"])
			require.Equal(t, "manifest", assets["latest.json"]["kind"])
			require.Equal(t, "updater", assets["My App.app.tar.gz"]["kind"])
			a := assets["SHA256SUMS"]
			require.Equal(t, "checksums", a["kind"])
			require.EqualValues(t, len(sums), a["size"])
			require.Equal(t, hex.EncodeToString(sum[:]), a["sha256"])

			// Followed without a key: the bytes, with the sha256 as ETag.
			path := strings.TrimPrefix(a["url"].(string), testPublicURL)
			r := b.do(t, http.MethodGet, path, "", nil)
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			require.Equal(t, sums, string(r.body))
			require.Equal(t, `"`+hex.EncodeToString(sum[:])+`"`, r.header.Get("ETag"))
			manifest := b.do(t, http.MethodGet, strings.TrimPrefix(assets["latest.json"]["url"].(string), testPublicURL), "", nil)
			require.Equal(t, http.StatusOK, manifest.status)
			require.Equal(t, "application/json", manifest.header.Get("Content-Type"))
			require.Equal(t, "1.1.0", manifest.json(t)["version"])

			// Another file's signature does not open this one.
			parts := signedLinkRe.FindStringSubmatch(a["url"].(string))
			r = b.do(t, http.MethodGet, "/signed/"+parts[1]+"/"+parts[2]+"/releases/"+rel.ID+"/files/latest.json", "", nil)
			require.Equal(t, http.StatusForbidden, r.status)
			// With an API key, unsigned.
			require.Equal(t, sums, string(b.do(t, http.MethodGet, "/releases/"+rel.ID+"/files/SHA256SUMS", b.keyA, nil).body))
			require.Equal(t, http.StatusNotFound, b.do(t, http.MethodGet, "/releases/"+rel.ID+"/files/SHA256SUMS", b.keyB, nil).status)
			require.Equal(t, http.StatusNotFound, b.do(t, http.MethodGet, "/releases/"+rel.ID+"/files/nope.txt", b.keyA, nil).status)
		})
	}
}
