package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/templates"
	"github.com/deskforge/deskforge/workflows"
	"github.com/deskforge/deskforge/workflows/ghsim"
)

const (
	publishCall = "PATCH /repos/{owner}/{repo}/releases/{release_id}"
	uploadCall  = "POST /repos/{owner}/{repo}/releases/{release_id}/assets"
)

type releaseView struct {
	ID          string  `json:"id"`
	Status      string  `json:"status"`
	PublishedAt *string `json:"publishedAt"`
	Builds      []struct {
		ID       string `json:"id"`
		Platform string `json:"platform"`
		Arch     string `json:"arch"`
		Status   string `json:"status"`
	} `json:"builds"`
}

func (h *harness) release(method, path string, body any, want int) releaseView {
	h.t.Helper()
	status, data := h.api(method, path, body, nil)
	require.Equal(h.t, want, status, "%s", data)
	var r releaseView
	require.NoError(h.t, json.Unmarshal(data, &r))
	return r
}

func (h *harness) enableAutoUpdate() {
	h.t.Helper()
	_, err := h.store.UpdateProject(h.ctx, h.project.ID, func(p *models.Project) error {
		p.FeatureAutoUpdate = true
		return nil
	})
	require.NoError(h.t, err)
}

func (h *harness) waitRelease(id string, done func(r releaseView) bool) releaseView {
	h.t.Helper()
	var r releaseView
	require.Eventually(h.t, func() bool {
		r = h.release(http.MethodGet, "/releases/"+id, nil, http.StatusOK)
		return done(r)
	}, 120*time.Second, 50*time.Millisecond, "release %s never got there", id)
	return r
}

func TestReleaseOfSixTargetsIsPublishedOnce(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, config{dialect: dialect, webhooks: true})
			h.enableAutoUpdate()
			rel := h.release(http.MethodPost, "/projects/"+h.project.ID+"/releases",
				map[string]any{"version": "1.4.0", "notes": "Faster startup"}, http.StatusCreated)
			require.Len(t, rel.Builds, 6)
			rel = h.waitRelease(rel.ID, func(r releaseView) bool { return r.PublishedAt != nil })
			require.Equal(t, "success", rel.Status)

			counters := h.sim.Counters().Endpoints
			require.Equal(t, 1, counters[publishCall].Requests, "published once")
			require.Equal(t, 2, counters[uploadCall].Requests, "SHA256SUMS and latest.json")
			var ghRel ghsim.ReleaseInfo
			for _, r := range h.sim.Releases(builderRepo) {
				if r.Tag == "v1.4.0" {
					ghRel = r
				}
			}
			require.False(t, ghRel.Draft)

			sums, ok := h.sim.AssetContent(builderRepo, "v1.4.0", workflows.ChecksumsAsset)
			require.True(t, ok)
			lines := strings.Split(strings.TrimSpace(string(sums)), "\n")
			require.Len(t, lines, 6)
			byName := map[string]string{}
			for _, l := range lines {
				sum, name, ok := strings.Cut(l, "  ")
				require.True(t, ok, l)
				byName[name] = sum
			}
			manifestBytes, ok := h.sim.AssetContent(builderRepo, "v1.4.0", workflows.TauriManifestAsset)
			require.True(t, ok)
			var manifest workflows.TauriManifest
			require.NoError(t, json.Unmarshal(manifestBytes, &manifest))
			require.Equal(t, "1.4.0", manifest.Version)
			require.Equal(t, "Faster startup", manifest.Notes)
			_, err := time.Parse(time.RFC3339, manifest.PubDate)
			require.NoError(t, err)
			require.Len(t, manifest.Platforms, 6)
			for _, b := range rel.Builds {
				bd := h.get(b.ID)
				data := h.download(b.ID)
				row, err := h.store.LoadBuild(h.ctx, b.ID)
				require.NoError(t, err)
				name := row.ArtifactName
				require.Contains(t, name, "-1.4.0-"+b.Platform+"-"+b.Arch)
				require.Equal(t, sha256Hex(data), byName[name], "SHA256SUMS matches the bytes of %s", name)
				require.Equal(t, "success", bd.Status)
				updater := templates.UpdaterArtifactName(name, b.Platform)
				entry, ok := manifest.Platforms[workflows.TauriPlatformKey(b.Platform, b.Arch)]
				require.True(t, ok, "platform %s/%s", b.Platform, b.Arch)
				require.Equal(t, string(ghsim.SignatureBytes(updater)), entry.Signature)
				require.True(t, strings.HasSuffix(entry.URL, "/releases/download/v1.4.0/"+updater), entry.URL)
			}

			// The publication again (a second run, or one resumed after a
			// crash): nothing is uploaded or published again.
			require.NoError(t, h.node.engine.PublishRelease(h.ctx, rel.ID))
			require.NoError(t, h.db.Gorm.Exec("UPDATE releases SET published_at = NULL WHERE id = ?", rel.ID).Error)
			require.NoError(t, h.node.engine.PublishRelease(h.ctx, rel.ID))
			counters = h.sim.Counters().Endpoints
			require.Equal(t, 2, counters[uploadCall].Requests, "uploaded once")
			require.Equal(t, 2, counters[publishCall].Requests, "the resumed publication re-sent the idempotent publish only")

			// The version is immutable now.
			status, body := h.api(http.MethodPost, "/projects/"+h.project.ID+"/builds", map[string]any{"platform": "mac", "version": "1.4.0"}, nil)
			require.Equal(t, http.StatusConflict, status)
			require.Contains(t, string(body), "version_published")
		})
	}
}

func TestFailedReleaseIsNotPublishedAndRetryRebuildsOnlyTheFailedTarget(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config{webhooks: true, scenario: []ghsim.Rule{{Platform: "linux", Arch: "arm64", Outcome: ghsim.OutcomeFailure}}})
	h.enableAutoUpdate()
	rel := h.release(http.MethodPost, "/projects/"+h.project.ID+"/releases",
		map[string]any{"version": "2.0.0", "targets": []string{"mac/arm64", "linux/arm64"}}, http.StatusCreated)
	rel = h.waitRelease(rel.ID, func(r releaseView) bool { return r.Status == "failed" })
	require.Nil(t, rel.PublishedAt)
	require.Zero(t, h.sim.Counters().Endpoints[publishCall].Requests)
	_, ok := h.sim.AssetContent(builderRepo, "v2.0.0", workflows.TauriManifestAsset)
	require.False(t, ok, "a failed release gets no manifest")
	before := map[string]string{}
	for _, b := range rel.Builds {
		before[b.Platform+"/"+b.Arch] = b.ID
	}

	h.sim.SetScenario(nil)
	retried := h.release(http.MethodPost, "/releases/"+rel.ID+"/retry", nil, http.StatusAccepted)
	require.Equal(t, "building", retried.Status)
	rel = h.waitRelease(rel.ID, func(r releaseView) bool { return r.PublishedAt != nil })
	require.Equal(t, "success", rel.Status)
	for _, b := range rel.Builds {
		if b.Platform == "mac" {
			require.Equal(t, before["mac/arm64"], b.ID, "the succeeded target was not rebuilt")
		} else {
			require.NotEqual(t, before["linux/arm64"], b.ID)
		}
	}
	require.Equal(t, 1, h.sim.Counters().Endpoints[publishCall].Requests)
	runs := 0
	for _, n := range h.runsByBuild() {
		runs += n
	}
	require.Equal(t, 3, runs, "two builds, one retry")
}
