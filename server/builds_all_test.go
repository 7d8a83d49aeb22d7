package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestListAllBuilds(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		var a, o []string // builds of projects A and B, oldest first
		for _, p := range []string{"mac", "linux", "windows"} {
			a = append(a, b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": p, "arch": "x64"}))
		}
		for range 2 {
			o = append(o, b.createBuild(t, b.projectB.ID, b.keyB, map[string]any{"platform": "linux", "arch": "x64", "version": "2.0.0"}))
		}
		ids := func(r response) []string {
			var out []string
			for _, v := range r.json(t)["builds"].([]any) {
				out = append(out, v.(map[string]any)["id"].(string))
			}
			return out
		}

		// Admin: every project's, newest first, paged by keyset.
		r := b.do(t, http.MethodGet, "/builds?limit=3", b.adminKey, nil)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		require.Equal(t, []string{o[1], o[0], a[2]}, ids(r))
		require.EqualValues(t, 5, r.json(t)["total"])
		cursor := r.json(t)["nextCursor"].(string)
		r = b.do(t, http.MethodGet, "/builds?limit=3&cursor="+cursor, b.adminKey, nil)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		require.Equal(t, []string{a[1], a[0]}, ids(r))
		require.Nil(t, r.json(t)["nextCursor"])

		// Same filters as the project list.
		r = b.do(t, http.MethodGet, "/builds?platform=linux", b.adminKey, nil)
		require.Equal(t, []string{o[1], o[0], a[1]}, ids(r))
		require.EqualValues(t, 3, r.json(t)["total"])
		r = b.do(t, http.MethodGet, "/builds?platform=linux&version=2.0.0", b.adminKey, nil)
		require.EqualValues(t, 2, r.json(t)["total"])
		r = b.do(t, http.MethodGet, "/builds?platform=ios", b.adminKey, nil)
		require.Equal(t, http.StatusBadRequest, r.status)
		_, field := r.errorOf(t)
		require.Equal(t, "platform", field)

		// A project key sees its own project's builds only.
		r = b.do(t, http.MethodGet, "/builds", b.keyB, nil)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		require.Equal(t, []string{o[1], o[0]}, ids(r))
		require.EqualValues(t, 2, r.json(t)["total"])

		r = b.do(t, http.MethodGet, "/builds", "", nil)
		require.Equal(t, http.StatusUnauthorized, r.status)
	})
}
