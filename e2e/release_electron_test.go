package e2e

import (
	"crypto/sha512"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/templates"
	"github.com/deskforge/deskforge/workflows"
	"github.com/deskforge/deskforge/workflows/ghsim"
)

// useElectron turns the harness's project into an Electron app of its own
// repository, built by the Electron template.
func (h *harness) useElectron(autoUpdate bool) {
	h.t.Helper()
	p, err := h.store.UpdateProject(h.ctx, h.project.ID, func(p *models.Project) error {
		p.URL, p.Repository, p.Workflow, p.FeatureAutoUpdate = "", appRepo, "electron-app.yml", autoUpdate
		return nil
	})
	require.NoError(h.t, err)
	h.project = p
}

func sha512Base64(b []byte) string {
	s := sha512.Sum512(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

// electronManifest reads a latest*.yml of the release tagged tag from the
// simulator, failing the test when it is missing.
func (h *harness) electronManifest(tag, name string) workflows.ElectronManifest {
	h.t.Helper()
	data, ok := h.sim.AssetContent(appRepo, tag, name)
	require.True(h.t, ok, "%s was uploaded", name)
	var m workflows.ElectronManifest
	require.NoError(h.t, yaml.Unmarshal(data, &m), "%s", data)
	require.Contains(h.t, string(data), "releaseDate: '", "releaseDate is single-quoted as js-yaml writes it")
	return m
}

func TestElectronReleaseWritesLatestYMLFromUploadedBytes(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, config{dialect: dialect, webhooks: true})
			h.useElectron(true)
			rel := h.release(http.MethodPost, "/projects/"+h.project.ID+"/releases",
				map[string]any{"version": "3.1.0", "notes": "Dark mode"}, http.StatusCreated)
			require.Len(t, rel.Builds, 6)
			rel = h.waitRelease(rel.ID, func(r releaseView) bool { return r.PublishedAt != nil })
			require.Equal(t, "success", rel.Status)
			require.Equal(t, 1, h.sim.Counters().Endpoints[publishCall].Requests, "published once")
			require.Equal(t, 5, h.sim.Counters().Endpoints[uploadCall].Requests,
				"SHA256SUMS, latest.yml, latest-mac.yml, latest-linux.yml, latest-linux-arm64.yml")
			_, ok := h.sim.AssetContent(appRepo, "v3.1.0", workflows.TauriManifestAsset)
			require.False(t, ok, "an Electron project gets no latest.json")

			installers := map[string]string{} // platform/arch -> installer asset name
			for _, b := range rel.Builds {
				row, err := h.store.LoadBuild(h.ctx, b.ID)
				require.NoError(t, err)
				installers[b.Platform+"/"+b.Arch] = row.ArtifactName
				if b.Platform == "mac" {
					// The .dmg is listed too: its sha512 is of the bytes
					// DeskForge serves for the build.
					require.Equal(t, sha512Base64(h.download(b.ID)), sha512Base64(mustAsset(t, h.sim, row.ArtifactName)))
				}
			}
			updater := func(target string) string {
				platform, _, _ := strings.Cut(target, "/")
				return templates.ElectronUpdaterArtifactName(installers[target], platform)
			}
			want := map[string][]string{
				"latest.yml":             {updater("windows/x64"), updater("windows/arm64")},
				"latest-mac.yml":         {updater("mac/x64"), updater("mac/arm64"), installers["mac/x64"], installers["mac/arm64"]},
				"latest-linux.yml":       {installers["linux/x64"]},
				"latest-linux-arm64.yml": {installers["linux/arm64"]},
			}
			require.True(t, strings.HasSuffix(updater("mac/arm64"), "-mac-arm64.zip"))
			require.True(t, strings.HasSuffix(updater("windows/x64"), "-windows-x64.exe"))
			for name, files := range want {
				m := h.electronManifest("v3.1.0", name)
				require.Equal(t, "3.1.0", m.Version, name)
				require.Equal(t, "Dark mode", m.ReleaseNotes, name)
				_, err := time.Parse("2006-01-02T15:04:05.000Z", m.ReleaseDate)
				require.NoError(t, err, name)
				var urls []string
				for _, f := range m.Files {
					urls = append(urls, f.URL)
					data := mustAsset(t, h.sim, f.URL)
					require.Equal(t, sha512Base64(data), f.SHA512, "%s: sha512 of %s", name, f.URL)
					require.Equal(t, int64(len(data)), f.Size, "%s: size of %s", name, f.URL)
				}
				require.Equal(t, files, urls, name)
				require.Equal(t, m.Files[0].URL, m.Path, "%s: path is the first file", name)
				require.Equal(t, m.Files[0].SHA512, m.SHA512, name)
			}

			// Run again, and resumed after a crash before the database
			// recorded the publication: nothing is uploaded twice.
			require.NoError(t, h.node.engine.PublishRelease(h.ctx, rel.ID))
			require.NoError(t, h.db.Gorm.Exec("UPDATE releases SET published_at = NULL WHERE id = ?", rel.ID).Error)
			require.NoError(t, h.node.engine.PublishRelease(h.ctx, rel.ID))
			require.Equal(t, 5, h.sim.Counters().Endpoints[uploadCall].Requests, "uploaded once")
		})
	}
}

func mustAsset(t *testing.T, sim *ghsim.Sim, name string) []byte {
	t.Helper()
	for _, tag := range []string{"v3.1.0", "v3.2.0", "v3.3.0"} {
		if data, ok := sim.AssetContent(appRepo, tag, name); ok {
			return data
		}
	}
	t.Fatalf("no asset %s", name)
	return nil
}

func TestElectronReleaseFailedTargetGetsNoManifestUntilRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config{webhooks: true, scenario: []ghsim.Rule{{Platform: "windows", Arch: "arm64", Outcome: ghsim.OutcomeFailure}}})
	h.useElectron(true)
	rel := h.release(http.MethodPost, "/projects/"+h.project.ID+"/releases",
		map[string]any{"version": "3.2.0", "targets": []string{"windows/x64", "windows/arm64"}}, http.StatusCreated)
	rel = h.waitRelease(rel.ID, func(r releaseView) bool { return r.Status == "failed" })
	require.Nil(t, rel.PublishedAt)
	for _, name := range []string{"latest.yml", workflows.ChecksumsAsset} {
		_, ok := h.sim.AssetContent(appRepo, "v3.2.0", name)
		require.False(t, ok, "a failed release gets no %s", name)
	}

	h.sim.SetScenario(nil)
	h.release(http.MethodPost, "/releases/"+rel.ID+"/retry", nil, http.StatusAccepted)
	rel = h.waitRelease(rel.ID, func(r releaseView) bool { return r.PublishedAt != nil })
	m := h.electronManifest("v3.2.0", "latest.yml")
	require.Len(t, m.Files, 2, "both arches, the retried one included")
	require.True(t, strings.HasSuffix(m.Files[1].URL, "-windows-arm64.exe"), m.Files[1].URL)
	require.Equal(t, sha512Base64(mustAsset(t, h.sim, m.Files[1].URL)), m.Files[1].SHA512)
}

func TestElectronReleaseWithoutAutoUpdateHasChecksumsOnly(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config{webhooks: true})
	h.useElectron(false)
	rel := h.release(http.MethodPost, "/projects/"+h.project.ID+"/releases",
		map[string]any{"version": "3.3.0", "targets": []string{"mac/arm64", "linux/x64"}}, http.StatusCreated)
	h.waitRelease(rel.ID, func(r releaseView) bool { return r.PublishedAt != nil })
	require.Equal(t, 1, h.sim.Counters().Endpoints[uploadCall].Requests, "SHA256SUMS only")
	for _, name := range []string{"latest-mac.yml", "latest-linux.yml"} {
		_, ok := h.sim.AssetContent(appRepo, "v3.3.0", name)
		require.False(t, ok, "%s needs features.autoUpdate", name)
	}

	// features.autoUpdate turned on after the builds ran: they uploaded no
	// electron-updater .zip, so a publication refuses to write manifests
	// that would point at nothing.
	h.useElectron(true)
	require.NoError(t, h.db.Gorm.Exec("UPDATE releases SET published_at = NULL WHERE id = ?", rel.ID).Error)
	err := h.node.engine.PublishRelease(h.ctx, rel.ID)
	require.Error(t, err)
	require.Contains(t, err.Error(), "uploaded no ")
	require.Contains(t, err.Error(), "-mac-arm64.zip: electron-updater needs it")
	require.Equal(t, 1, h.sim.Counters().Endpoints[uploadCall].Requests, "no manifest uploaded")
}
