package metrics_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/metrics"
)

func TestEndpointOf(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ path, want string }{
		{"/repos/acme/app/actions/workflows/deskforge.yml/dispatches", "/repos/{owner}/{repo}/actions/workflows/{name}/dispatches"},
		{"/api/v3/repos/acme/app/actions/runs/123/jobs", "/repos/{owner}/{repo}/actions/runs/{id}/jobs"},
		{"/repos/acme/app/actions/jobs/9/logs", "/repos/{owner}/{repo}/actions/jobs/{id}/logs"},
		{"/repos/acme/app/releases/tags/v1.0.0", "/repos/{owner}/{repo}/releases/tags/{name}"},
		{"/repos/acme/app/contents/.github/workflows/deskforge.yml", "/repos/{owner}/{repo}/contents/{name}"},
		{"/repos/acme/app/git/ref/heads/main", "/repos/{owner}/{repo}/git/ref/{name}"},
		{"/rate_limit", "/rate_limit"},
		{"/_blob/logs/abc", "other"},
	} {
		require.Equal(t, tt.want, metrics.EndpointOf(tt.path), tt.path)
	}
}
