package server_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/server"
)

// TestEveryGETRouteAnswersHEAD guards the router: a GET route registered
// without its HEAD twin (server.go's getAndHead) would answer HEAD with 405.
func TestEveryGETRouteAnswersHEAD(t *testing.T) {
	t.Parallel()
	db := dbtest.Open(t, models.DialectSQLite)
	r := server.New(server.Options{Store: models.NewStore(db)}).Handler().(*gin.Engine)
	head := map[string]bool{}
	for _, rt := range r.Routes() {
		if rt.Method == http.MethodHead {
			head[rt.Path] = true
		}
	}
	for _, rt := range r.Routes() {
		if rt.Method == http.MethodGet {
			require.True(t, head[rt.Path], "GET %s has no HEAD route: register it with getAndHead", rt.Path)
		}
	}
}

func TestHEADAnswersLikeGETWithoutABody(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		id := b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": "mac"})
		for _, path := range []string{"/healthz", "/projects", "/projects/" + b.projectA.ID, "/projects/" + b.projectA.ID + "/builds",
			"/builds/" + id, "/builds/" + id + "/logs"} {
			get := b.do(t, http.MethodGet, path, b.keyA, nil)
			head := b.do(t, http.MethodHead, path, b.keyA, nil)
			require.Equal(t, http.StatusOK, head.status, path)
			require.Empty(t, head.body, path)
			require.Equal(t, get.header.Get("Content-Type"), head.header.Get("Content-Type"), path)
			if cl := head.header.Get("Content-Length"); cl != "" {
				require.Equal(t, strconv.Itoa(len(get.body)), cl, path)
			}
		}
		// Errors too: the status and headers of GET.
		head := b.do(t, http.MethodHead, "/builds/build_00000000000000000000000000", b.keyA, nil)
		require.Equal(t, http.StatusNotFound, head.status)
		require.Empty(t, head.body)
		head = b.do(t, http.MethodHead, "/projects", "", nil)
		require.Equal(t, http.StatusUnauthorized, head.status)
		require.NotEmpty(t, head.header.Get("WWW-Authenticate"))
	})
}

func TestTrailingSlashAnswersTheErrorEnvelope(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, models.DialectSQLite)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		r := b.do(t, method, "/projects/", b.adminKey, nil)
		require.Equal(t, http.StatusNotFound, r.status, "%s %s", method, r.body)
		require.Equal(t, "application/json; charset=utf-8", r.header.Get("Content-Type"))
		require.Empty(t, r.header.Get("Location"), "no redirect")
		code, _ := r.errorOf(t)
		require.Equal(t, "not_found", code)
		require.Contains(t, string(r.body), "no endpoint "+method+" /projects/")
	}
	r := b.do(t, http.MethodGet, "/builds/x/", b.adminKey, nil)
	require.Equal(t, http.StatusNotFound, r.status)
	code, _ := r.errorOf(t)
	require.Equal(t, "not_found", code)
}
