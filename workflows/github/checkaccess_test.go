package github

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/workflows"
)

// TestCheckAccessRateLimitingDisabled: GET /rate_limit answers 404 on a
// GitHub Enterprise Server whose rate limiting is disabled (the operation
// lists 404): the credentials were accepted, and the repository check
// still decides.
func TestCheckAccessRateLimitingDisabled(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.mux.HandleFunc("/rate_limit", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"message":"Rate limiting is not enabled.","documentation_url":"https://docs.github.com/enterprise-server@3.19/rest"}`)
	})
	b.mux.HandleFunc("/repos/acme/builder", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"id":1,"full_name":"acme/builder","private":true}`)
	})
	ctx := context.Background()
	require.NoError(t, b.client.CheckAccess(ctx, ""))
	require.NoError(t, b.client.CheckAccess(ctx, "acme/builder"))
	require.ErrorIs(t, b.client.CheckAccess(ctx, "acme/missing"), workflows.ErrNotFound, "the repository check still runs")
}
