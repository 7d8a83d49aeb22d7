package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
)

func validProject() map[string]any {
	return map[string]any{
		"name":      "Acme Desktop",
		"url":       "https://acme.example",
		"author":    "Acme",
		"version":   "1.2.0",
		"appId":     "com.acme.desktop",
		"platforms": []string{"linux", "mac"},
		"window":    map[string]any{"width": 1280, "height": 720, "resizable": false},
		"features":  map[string]any{"autoUpdate": true, "tray": true, "menuBar": false},
	}
}

func with(base map[string]any, key string, value any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	if value == nil {
		delete(out, key)
	} else {
		out[key] = value
	}
	return out
}

func TestAPIProjects(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		r := b.do(t, http.MethodPost, "/projects", b.adminKey, validProject())
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		p := r.json(t)
		id := p["id"].(string)
		require.Regexp(t, `^proj_[0-9a-z]{26}$`, id)
		require.Equal(t, testPublicURL+"/projects/"+id, r.header.Get("Location"))
		require.Equal(t, []any{"mac", "linux"}, p["platforms"], "canonical order")
		require.Equal(t, map[string]any{"width": float64(1280), "height": float64(720), "resizable": false}, p["window"])
		require.Equal(t, map[string]any{"autoUpdate": true, "tray": true, "menuBar": false}, p["features"])
		for _, k := range []string{"repository", "workflow", "ref"} {
			v, present := p[k]
			require.True(t, present, k)
			require.Nil(t, v, k)
		}
		require.Regexp(t, timestampRe, p["createdAt"])
		require.Regexp(t, timestampRe, p["updatedAt"])
		keys := make([]string, 0, len(p))
		for k := range p {
			keys = append(keys, k)
		}
		require.ElementsMatch(t, []string{"id", "name", "url", "author", "version", "appId", "platforms", "window", "features",
			"repository", "workflow", "ref", "createdAt", "updatedAt"}, keys)

		g := b.do(t, http.MethodGet, "/projects/"+id, b.adminKey, nil)
		require.Equal(t, http.StatusOK, g.status)
		require.JSONEq(t, string(r.body), string(g.body))

		// A repository project gets the default workflow and ref.
		r = b.do(t, http.MethodPost, "/projects", b.adminKey, map[string]any{"name": "Repo App", "repository": "acme/app", "platforms": []string{"windows"}})
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		rp := r.json(t)
		require.Equal(t, "deskforge.yml", rp["workflow"])
		require.Equal(t, "main", rp["ref"])
		require.Nil(t, rp["url"])
		require.Equal(t, map[string]any{"width": float64(1200), "height": float64(800), "resizable": true}, rp["window"])

		// PATCH changes only what is sent; nested objects merge.
		r = b.do(t, http.MethodPatch, "/projects/"+id, b.adminKey, map[string]any{"version": "1.3.0", "window": map[string]any{"width": 800}})
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		up := r.json(t)
		require.Equal(t, "1.3.0", up["version"])
		require.Equal(t, map[string]any{"width": float64(800), "height": float64(720), "resizable": false}, up["window"])
		require.Equal(t, "Acme Desktop", up["name"])
		r = b.do(t, http.MethodPatch, "/projects/"+id, b.adminKey, map[string]any{"window": map[string]any{"height": 100}})
		require.Equal(t, http.StatusBadRequest, r.status)
		_, field := r.errorOf(t)
		require.Equal(t, "window.height", field)
		r = b.do(t, http.MethodPatch, "/projects/proj_01hqz00000000000000000000z", b.adminKey, map[string]any{"author": "x"})
		require.Equal(t, http.StatusNotFound, r.status)

		// List, newest first, with paging.
		r = b.do(t, http.MethodGet, "/projects?limit=2", b.adminKey, nil)
		require.Equal(t, http.StatusOK, r.status)
		l := r.json(t)
		require.EqualValues(t, 4, l["total"])
		require.Len(t, l["projects"], 2)
		require.NotNil(t, l["nextCursor"])
		r = b.do(t, http.MethodGet, "/projects?limit=2&cursor="+l["nextCursor"].(string), b.adminKey, nil)
		l2 := r.json(t)
		require.Len(t, l2["projects"], 2)
		require.Nil(t, l2["nextCursor"])

		// DELETE refuses while builds are active, then succeeds; builds stay.
		buildID := b.createBuild(t, id, b.adminKey, map[string]any{"platform": "linux"})
		r = b.do(t, http.MethodDelete, "/projects/"+id, b.adminKey, nil)
		require.Equal(t, http.StatusConflict, r.status)
		code, _ := r.errorOf(t)
		require.Equal(t, "project_has_active_builds", code)
		require.NoError(t, b.db.Gorm.Model(&models.Build{}).Where("id = ?", buildID).Update("status", models.StatusFailed).Error)
		_, projectKey, err := b.store.CreateAPIKey(b.ctx, models.NewAPIKeyParams{Role: models.RoleProject, ProjectID: id})
		require.NoError(t, err)
		r = b.do(t, http.MethodDelete, "/projects/"+id, b.adminKey, nil)
		require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
		require.Equal(t, http.StatusNotFound, b.do(t, http.MethodGet, "/projects/"+id, b.adminKey, nil).status)
		require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/builds/"+buildID, b.adminKey, nil).status, "builds are kept")
		require.Equal(t, http.StatusUnauthorized, b.do(t, http.MethodGet, "/projects", projectKey, nil).status, "its keys are revoked")
		require.Equal(t, http.StatusNotFound, b.do(t, http.MethodDelete, "/projects/"+id, b.adminKey, nil).status)
	})
}

func TestAPIProjectValidation(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		base := validProject()
		tests := []struct {
			name  string
			body  map[string]any
			field string
		}{
			{"MissingName", with(base, "name", nil), "name"},
			{"BlankName", with(base, "name", "  "), "name"},
			{"LongName", with(base, "name", strings.Repeat("n", 201)), "name"},
			{"NoURLNorRepository", with(base, "url", nil), "url"},
			{"URLAndRepository", with(base, "repository", "acme/app"), "repository"},
			{"FTPURL", with(base, "url", "ftp://acme.example"), "url"},
			{"RelativeURL", with(base, "url", "/app"), "url"},
			{"JavaScriptURL", with(base, "url", "javascript:alert(1)"), "url"},
			{"MissingPlatforms", with(base, "platforms", nil), "platforms"},
			{"EmptyPlatforms", with(base, "platforms", []string{}), "platforms"},
			{"UnknownPlatform", with(base, "platforms", []string{"mac", "ios"}), "platforms"},
			{"DuplicatePlatform", with(base, "platforms", []string{"mac", "mac"}), "platforms"},
			{"PlatformsNotArray", with(base, "platforms", "mac"), "platforms"},
			{"NarrowWindow", with(base, "window", map[string]any{"width": 199}), "window.width"},
			{"WideWindow", with(base, "window", map[string]any{"width": 10001}), "window.width"},
			{"ShortWindow", with(base, "window", map[string]any{"height": 10}), "window.height"},
			{"WindowWidthString", with(base, "window", map[string]any{"width": "wide"}), "window.width"},
			{"AppIDNotReverseDNS", with(base, "appId", "myapp"), "appId"},
			{"AppIDWithSpaces", with(base, "appId", "com.acme.my app"), "appId"},
			{"BadVersion", with(base, "version", "v1"), "version"},
			{"BadRepository", with(with(base, "url", nil), "repository", "not a repo"), "repository"},
			{"BadWorkflow", with(with(with(base, "url", nil), "repository", "acme/app"), "workflow", "build.sh"), "workflow"},
			{"BadRef", with(with(with(base, "url", nil), "repository", "acme/app"), "ref", "has space"), "ref"},
			{"RepositoryDotDot", with(with(base, "url", nil), "repository", "acme/.."), "repository"},
			{"RepositoryDot", with(with(base, "url", nil), "repository", "acme/."), "repository"},
			{"RefDotDot", with(with(with(base, "url", nil), "repository", "acme/app"), "ref", "a..b"), "ref"},
			{"RefReflog", with(with(with(base, "url", nil), "repository", "acme/app"), "ref", "a@{1}"), "ref"},
			{"RefLock", with(with(with(base, "url", nil), "repository", "acme/app"), "ref", "x.lock"), "ref"},
			{"RefHiddenComponent", with(with(with(base, "url", nil), "repository", "acme/app"), "ref", "feature/.x"), "ref"},
			{"RefTrailingSlash", with(with(with(base, "url", nil), "repository", "acme/app"), "ref", "main/"), "ref"},
			{"RefNUL", with(with(with(base, "url", nil), "repository", "acme/app"), "ref", "main\x00"), "ref"},
			{"ZeroWindowWidth", with(base, "window", map[string]any{"width": 0}), "window.width"},
			{"ZeroWindowHeight", with(base, "window", map[string]any{"height": 0}), "window.height"},
			{"URLWithCredentials", with(base, "url", "https://ada:s3cret@acme.example"), "url"},
			{"URLWithUser", with(base, "url", "https://ada@acme.example"), "url"},
			{"WorkflowOnWebApp", with(base, "workflow", "x.yml"), "workflow"},
			{"UnknownField", with(base, "colour", "red"), "colour"},
			{"FeatureNotBool", with(base, "features", map[string]any{"tray": "yes"}), "features.tray"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := b.do(t, http.MethodPost, "/projects", b.adminKey, tt.body)
				require.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
				code, field := r.errorOf(t)
				require.Equal(t, "invalid_request", code)
				require.Equal(t, tt.field, field)
				require.NotContains(t, string(r.body), "s3cret", "a password is never echoed")
			})
		}
		var n int64
		require.NoError(t, b.db.Gorm.Model(&models.Project{}).Count(&n).Error)
		require.Equal(t, int64(2), n, "only the bundle's projects")
	})
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		r := b.do(t, http.MethodPost, "/apikeys", b.adminKey, map[string]any{"name": "ci", "projectId": b.projectA.ID})
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		k := r.json(t)
		plaintext := k["key"].(string)
		require.True(t, strings.HasPrefix(plaintext, "df_"))
		require.Equal(t, "project", k["role"])
		require.Equal(t, b.projectA.ID, k["projectId"])
		require.True(t, strings.HasPrefix(plaintext, k["prefix"].(string)))

		// The key works, sees its project only, and is never shown again.
		require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/projects/"+b.projectA.ID, plaintext, nil).status)
		require.Equal(t, http.StatusNotFound, b.do(t, http.MethodGet, "/projects/"+b.projectB.ID, plaintext, nil).status)
		r = b.do(t, http.MethodGet, "/apikeys", b.adminKey, nil)
		require.Equal(t, http.StatusOK, r.status)
		require.NotContains(t, string(r.body), plaintext)
		require.EqualValues(t, 5, r.json(t)["total"])
		r = b.do(t, http.MethodGet, "/apikeys?projectId="+b.projectA.ID, b.adminKey, nil)
		require.EqualValues(t, 2, r.json(t)["total"])

		var stored models.APIKey
		require.NoError(t, b.db.Gorm.Where("id = ?", k["id"]).Take(&stored).Error)
		require.Equal(t, models.HashAPIKey(plaintext), stored.Hash)
		require.NotContains(t, stored.Hash, plaintext)
		require.NotNil(t, stored.LastUsedAt)

		r = b.do(t, http.MethodDelete, "/apikeys/"+k["id"].(string), b.adminKey, nil)
		require.Equal(t, http.StatusOK, r.status)
		require.Regexp(t, timestampRe, r.json(t)["revokedAt"])
		require.Equal(t, http.StatusUnauthorized, b.do(t, http.MethodGet, "/projects/"+b.projectA.ID, plaintext, nil).status)
		require.Equal(t, http.StatusNotFound, b.do(t, http.MethodDelete, "/apikeys/key_missing", b.adminKey, nil).status)

		for name, tt := range map[string]struct {
			body  map[string]any
			field string
		}{
			"UnknownRole":         {map[string]any{"role": "root"}, "role"},
			"ProjectKeyNoProject": {map[string]any{"role": "project"}, "projectId"},
			"AdminWithProject":    {map[string]any{"role": "admin", "projectId": b.projectA.ID}, "projectId"},
			"MissingProject":      {map[string]any{"projectId": "proj_01hqz00000000000000000000z"}, "projectId"},
		} {
			r := b.do(t, http.MethodPost, "/apikeys", b.adminKey, tt.body)
			require.Equal(t, http.StatusBadRequest, r.status, name)
			_, field := r.errorOf(t)
			require.Equal(t, tt.field, field, name)
		}
	})
}
