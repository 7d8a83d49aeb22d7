package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/server"
	"github.com/deskforge/deskforge/workflows"
)

func TestCORS(t *testing.T) {
	t.Parallel()
	b := startAPI(t, models.DialectSQLite, nil, workflows.Options{},
		server.Options{CORSOrigins: []string{"https://app.example.com"}})
	preflight := func(origin string) response {
		return b.do(t, http.MethodOptions, "/projects/"+b.projectA.ID+"/builds", "", nil,
			"Origin", origin, "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "authorization, content-type, idempotency-key")
	}

	t.Run("PreflightAllowed", func(t *testing.T) {
		t.Parallel()
		r := preflight("https://app.example.com")
		require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
		require.Equal(t, "https://app.example.com", r.header.Get("Access-Control-Allow-Origin"))
		require.Contains(t, r.header.Get("Access-Control-Allow-Methods"), "POST")
		for _, h := range []string{"Authorization", "Content-Type", "Idempotency-Key"} {
			require.Contains(t, r.header.Get("Access-Control-Allow-Headers"), h)
		}
		require.Empty(t, r.header.Get("Access-Control-Allow-Credentials"), "keys are not cookies")
		require.Contains(t, r.header.Values("Vary"), "Origin")
	})
	t.Run("PreflightRefused", func(t *testing.T) {
		t.Parallel()
		r := preflight("https://evil.example.com")
		require.Equal(t, http.StatusForbidden, r.status, "%s", r.body)
		require.Empty(t, r.header.Get("Access-Control-Allow-Origin"))
		code, _ := r.errorOf(t)
		require.Equal(t, "forbidden", code)
	})
	t.Run("RequestFromAllowedOrigin", func(t *testing.T) {
		t.Parallel()
		r := b.do(t, http.MethodGet, "/projects/"+b.projectA.ID, b.keyA, nil, "Origin", "https://app.example.com")
		require.Equal(t, http.StatusOK, r.status)
		require.Equal(t, "https://app.example.com", r.header.Get("Access-Control-Allow-Origin"))
		require.Contains(t, r.header.Get("Access-Control-Expose-Headers"), "RateLimit-Remaining")
		// Error answers carry the header too, so that the page can read them.
		r = b.do(t, http.MethodGet, "/projects", "", nil, "Origin", "https://app.example.com")
		require.Equal(t, http.StatusUnauthorized, r.status)
		require.Equal(t, "https://app.example.com", r.header.Get("Access-Control-Allow-Origin"))
	})
	t.Run("RequestFromOtherOrigin", func(t *testing.T) {
		t.Parallel()
		r := b.do(t, http.MethodGet, "/projects/"+b.projectA.ID, b.keyA, nil, "Origin", "https://evil.example.com")
		require.Equal(t, http.StatusOK, r.status, "served, but the browser keeps the answer from the page")
		require.Empty(t, r.header.Get("Access-Control-Allow-Origin"))
	})
}

func TestCORSOffByDefault(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, models.DialectSQLite)
	r := b.do(t, http.MethodOptions, "/projects", "", nil, "Origin", "https://app.example.com", "Access-Control-Request-Method", "GET")
	require.NotEqual(t, http.StatusNoContent, r.status)
	require.Empty(t, r.header.Get("Access-Control-Allow-Origin"))
	r = b.do(t, http.MethodGet, "/projects", b.adminKey, nil, "Origin", "https://app.example.com")
	require.Empty(t, r.header.Get("Access-Control-Allow-Origin"))
}

func TestCORSAnyOrigin(t *testing.T) {
	t.Parallel()
	b := startAPI(t, models.DialectSQLite, nil, workflows.Options{}, server.Options{CORSOrigins: []string{"*"}})
	r := b.do(t, http.MethodOptions, "/builds/x", "", nil, "Origin", "http://localhost:3000", "Access-Control-Request-Method", "DELETE")
	require.Equal(t, http.StatusNoContent, r.status)
	require.Equal(t, "http://localhost:3000", r.header.Get("Access-Control-Allow-Origin"))
}
