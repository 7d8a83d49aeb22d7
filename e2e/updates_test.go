package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/templates"
	"github.com/deskforge/deskforge/workflows"
	"github.com/deskforge/deskforge/workflows/ghsim"
)

// fetchWithoutKey GETs url as an installed app or a browser does: no API
// key, redirects followed. Links on the harness's public URL go to the
// running node.
func (h *harness) fetchWithoutKey(url string) (int, []byte) {
	h.t.Helper()
	url = strings.Replace(url, "http://deskforge.test", h.dfURL, 1)
	req, err := http.NewRequestWithContext(h.ctx, http.MethodGet, url, nil)
	require.NoError(h.t, err)
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	return resp.StatusCode, data
}

// TestPublishedReleaseServesUpdates: a release published on the simulator
// from a private repository lists its files with signed links that serve
// exactly GitHub's bytes without a key, and the update server offers it to
// an older app as Tauri asks, with links an app can follow.
func TestPublishedReleaseServesUpdates(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, config{dialect: dialect, webhooks: true, privateRepo: true})
			h.enableAutoUpdate()
			rel := h.release(http.MethodPost, "/projects/"+h.project.ID+"/releases",
				map[string]any{"version": "1.4.0", "notes": "Faster startup", "targets": []string{"mac/arm64", "linux/x64"}}, http.StatusCreated)
			rel = h.waitRelease(rel.ID, func(r releaseView) bool { return r.PublishedAt != nil })

			var full struct {
				Assets []struct {
					Name   string `json:"name"`
					Kind   string `json:"kind"`
					Size   int64  `json:"size"`
					SHA256 string `json:"sha256"`
					URL    string `json:"url"`
				} `json:"assets"`
			}
			status, body := h.api(http.MethodGet, "/releases/"+rel.ID, nil, nil)
			require.Equal(t, http.StatusOK, status)
			require.NoError(t, json.Unmarshal(body, &full))
			kinds := map[string]int{}
			for _, a := range full.Assets {
				kinds[a.Kind]++
				require.Contains(t, a.URL, "/signed/", a.Name)
				if a.Kind == "updater" {
					continue // served by GitHub (a redirect); its bytes are checked through the update below
				}
				status, data := h.fetchWithoutKey(a.URL)
				require.Equal(t, http.StatusOK, status, "%s: %s", a.Name, data)
				require.Equal(t, a.Size, int64(len(data)), a.Name)
				require.Equal(t, a.SHA256, sha256Hex(data), a.Name)
				if a.Kind != "installer" {
					onGitHub, ok := h.sim.AssetContent(builderRepo, "v1.4.0", a.Name)
					require.True(t, ok, a.Name)
					require.Equal(t, onGitHub, data, a.Name)
				}
			}
			require.Equal(t, map[string]int{"installer": 2, "checksums": 1, "manifest": 1, "updater": 3}, kinds,
				"two installers, SHA256SUMS, latest.json, the mac .app.tar.gz and both .sig")

			for _, b := range rel.Builds {
				row, err := h.store.LoadBuild(h.ctx, b.ID)
				require.NoError(t, err)
				updater := templates.UpdaterArtifactName(row.ArtifactName, b.Platform)
				target, arch, _ := strings.Cut(workflows.TauriPlatformKey(b.Platform, b.Arch), "-")
				status, data := h.fetchWithoutKey(h.dfURL + "/updates/" + h.project.ID + "/" + target + "/" + arch + "/1.3.9")
				require.Equal(t, http.StatusOK, status, "%s", data)
				var update map[string]string
				require.NoError(t, json.Unmarshal(data, &update))
				require.Equal(t, "1.4.0", update["version"])
				require.Equal(t, "Faster startup", update["notes"])
				require.Equal(t, string(ghsim.SignatureBytes(updater)), update["signature"])
				require.Contains(t, update["url"], "/signed/", "a private repository: a signed DeskForge link")
				status, data = h.fetchWithoutKey(update["url"])
				require.Equal(t, http.StatusOK, status)
				require.Equal(t, ghsim.AssetBytes(updater), data, "the updater artifact %s", updater)

				status, _ = h.fetchWithoutKey(h.dfURL + "/updates/" + h.project.ID + "/" + target + "/" + arch + "/1.4.0")
				require.Equal(t, http.StatusNoContent, status)
			}
		})
	}
}
