package e2e

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/templates"
	"github.com/deskforge/deskforge/workflows/ghsim"
)

// useProject creates a web-app project called name (on the shared builder
// repository) and makes the harness's requests act as its key.
func (h *harness) useProject(name string) models.Project {
	h.t.Helper()
	p := models.Project{Name: name, URL: "https://example.com", Version: "1.0.0", Platforms: "mac,windows,linux",
		WindowWidth: 1200, WindowHeight: 800, WindowResizable: true}
	require.NoError(h.t, h.store.CreateProject(h.ctx, &p))
	_, key, err := h.store.CreateAPIKey(h.ctx, models.NewAPIKeyParams{Name: name, Role: models.RoleProject, ProjectID: p.ID})
	require.NoError(h.t, err)
	h.project, h.apiKey = p, key
	return p
}

func (h *harness) build(id string) models.Build {
	h.t.Helper()
	b, err := h.store.GetBuild(h.ctx, id)
	require.NoError(h.t, err)
	return b
}

// TestTwinProjectsAndRebuildSupersedes: projects "Twin" and "twin!" (same
// slug, same builder repository) build the same version and target: both
// succeed with their own asset and both downloads serve their own bytes. A
// rebuild of Twin replaces Twin's asset: the first build's download then
// answers 410 artifact_superseded naming the rebuild, and twin! is
// untouched.
func TestTwinProjectsAndRebuildSupersedes(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, config{dialect: dialect, webhooks: true})
			twin := h.useProject("Twin")
			twinKey := h.apiKey
			first := h.trigger("mac", "arm64", "5.1.1")
			twinBang := h.useProject("twin!")
			twinBangKey := h.apiKey
			other := h.trigger("mac", "arm64", "5.1.1")
			h.apiKey = h.adminKy
			done := h.waitTerminal(90*time.Second, first.ID, other.ID)

			names := map[string]string{
				first.ID: templates.ProjectAssetName(twin.ID, "Twin", "5.1.1", "mac", "arm64"),
				other.ID: templates.ProjectAssetName(twinBang.ID, "twin!", "5.1.1", "mac", "arm64"),
			}
			require.NotEqual(t, names[first.ID], names[other.ID])
			assetIDs := map[int64]bool{}
			for id, key := range map[string]string{first.ID: twinKey, other.ID: twinBangKey} {
				require.Equal(t, "success", done[id].Status, "build %s", id)
				row := h.build(id)
				require.Equal(t, names[id], row.ArtifactName)
				assetIDs[*row.ArtifactAssetID] = true
				h.apiKey = key
				require.Equal(t, ghsim.AssetBytes(names[id]), h.download(id), "each project downloads its own installer")
			}
			require.Len(t, assetIDs, 2, "two projects, two assets")

			h.project, h.apiKey = twin, twinKey
			rebuild := h.trigger("mac", "arm64", "5.1.1")
			require.Equal(t, "success", h.waitTerminal(90*time.Second, rebuild.ID)[rebuild.ID].Status)
			require.False(t, assetIDs[*h.build(rebuild.ID).ArtifactAssetID], "the rebuild uploaded a new asset")
			require.Equal(t, ghsim.AssetBytes(names[first.ID]), h.download(rebuild.ID))

			status, body := h.api(http.MethodGet, "/builds/"+first.ID+"/download", nil, nil)
			require.Equal(t, http.StatusGone, status, "%s", body)
			var envelope struct {
				Error struct{ Code, Message string }
			}
			require.NoError(t, json.Unmarshal(body, &envelope))
			require.Equal(t, "artifact_superseded", envelope.Error.Code)
			require.Contains(t, envelope.Error.Message, rebuild.ID)
			require.Equal(t, "success", h.get(first.ID).Status, "the first build did succeed")

			h.apiKey = twinBangKey
			require.Equal(t, ghsim.AssetBytes(names[other.ID]), h.download(other.ID), "twin! is untouched by Twin's rebuild")
		})
	}
}
