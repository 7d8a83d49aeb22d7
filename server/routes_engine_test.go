package server_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/server"
	"github.com/deskforge/deskforge/workflows"
)

const testWebhookSecret = "It's a Secret to Everybody"

// artifactBytes is what the fake GitHub serves for every asset.
var artifactBytes = bytes.Repeat([]byte("DESKFORGE-INSTALLER-"), 5000)

// assetForge is a Forge that only knows how to hand out signed asset URLs
// (pointing at an httptest server that honours Range, like GitHub's).
type assetForge struct {
	workflows.Forge
	signedBase string
}

func (f assetForge) AssetDownloadURL(_ context.Context, repo string, assetID int64) (string, error) {
	return fmt.Sprintf("%s/signed/%d?sig=abc", f.signedBase, assetID), nil
}

type engineOpts struct {
	secret       string
	demo         bool
	downloadMode string
}

// engineBundle is an API with the engine's routes, a fake GitHub for
// assets, and helpers to put builds in a given state.
type engineBundle struct {
	*apiBundle
	signed *httptest.Server
}

func setupEngineAPI(t *testing.T, dialect string, o engineOpts) *engineBundle {
	t.Helper()
	signed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/public/my-app-1.0.0-mac-x64.dmg" && r.URL.Query().Get("sig") == "" {
			http.Error(w, "bad signature", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(artifactBytes))
	}))
	t.Cleanup(signed.Close)
	var secret []byte
	if o.secret != "" {
		secret = []byte(o.secret)
	}
	b := startAPI(t, dialect, assetForge{signedBase: signed.URL},
		workflows.Options{DownloadMode: o.downloadMode},
		server.Options{WebhookSecret: secret, Demo: o.demo})
	return &engineBundle{apiBundle: b, signed: signed}
}

// succeed puts a build in the success state with an artifact.
func (b *engineBundle) succeed(t *testing.T, id string, private bool) models.Build {
	t.Helper()
	now := time.Now().UTC()
	assetID, size := int64(42), int64(len(artifactBytes))
	sum := sha256.Sum256(artifactBytes)
	err := b.db.Gorm.Model(&models.Build{}).Where("id = ?", id).Updates(map[string]any{
		"status": models.StatusSuccess, "started_at": now.Add(-time.Minute), "completed_at": now,
		"artifact_asset_id": assetID, "artifact_name": "my-app-1.0.0-mac-x64.dmg", "artifact_size": size,
		"artifact_sha256": hex.EncodeToString(sum[:]), "artifact_content_type": "application/x-apple-diskimage",
		"artifact_download_url": b.signed.URL + "/public/my-app-1.0.0-mac-x64.dmg", "repo_private": private,
	}).Error
	require.NoError(t, err)
	got, err := b.store.GetBuild(b.ctx, id)
	require.NoError(t, err)
	return got
}

// signedWebhook posts a webhook delivery signed with secret ("" = unsigned).
func (b *engineBundle) webhook(t *testing.T, event, delivery string, body []byte, secret string) response {
	t.Helper()
	headers := []string{"X-GitHub-Event", event, "X-GitHub-Delivery", delivery, "X-GitHub-Hook-ID", "123", "User-Agent", "GitHub-Hookshot/abc"}
	if secret != "" {
		headers = append(headers, "X-Hub-Signature-256", sign(secret, body))
	}
	req, err := http.NewRequestWithContext(b.ctx, http.MethodPost, b.url+"/webhooks/github", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

func sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func (b *engineBundle) jobs(t *testing.T, kind string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, b.db.Gorm.Raw("SELECT count(*) FROM river_job WHERE kind = ?", kind).Scan(&n).Error)
	return n
}

func TestSignatureTestVector(t *testing.T) {
	t.Parallel()
	require.Equal(t, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", sign(testWebhookSecret, []byte("Hello, World!")))
}
