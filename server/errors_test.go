package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/workflows"
)

func TestRenderErrorTranslatesEveryKind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		field      string
		retryAfter bool
	}{
		{"Field", fmt.Errorf("wrapped: %w", models.Invalid("platform", "platform must be one of mac")), 400, "invalid_request", "platform", false},
		{"Invalid", fmt.Errorf("x: %w", models.ErrInvalid), 400, "invalid_request", "", false},
		{"NotFound", fmt.Errorf("get build b: %w", models.ErrNotFound), 404, "not_found", "", false},
		{"StateError", models.Conflict("not_ready", "build has not succeeded"), 409, "not_ready", "", false},
		{"Conflict", fmt.Errorf("x: %w", models.ErrConflict), 409, "conflict", "", false},
		{"RateLimited", &models.RateLimitedError{RetryAfter: 3 * time.Second, Message: "slow down"}, 429, "rate_limited", "", true},
		{"TooLarge", &http.MaxBytesError{Limit: 10}, 413, "payload_too_large", "", false},
		{"GitHubRateLimit", &workflows.RateLimitError{Until: time.Now().Add(time.Minute), Message: "API rate limit exceeded"}, 503, "github_rate_limited", "", true},
		{"GitHubTransient", fmt.Errorf("dispatch: %w", &workflows.TransientError{Status: 502, Err: errors.New("bad gateway")}), 502, "github_unavailable", "", false},
		{"GitHubInvalid", &workflows.InvalidError{Status: 422, Message: "Unexpected inputs provided"}, 502, "github_refused", "", false},
		{"GitHubNotFound", fmt.Errorf("asset: %w", workflows.ErrNotFound), 502, "github_not_found", "", false},
		{"Unknown", errors.New("disk on fire"), 500, "internal", "", false},
	}
	s := New(Options{})
	for _, tt := range tests {
		s.router.GET("/test/"+tt.name, func(c *gin.Context) { s.renderError(c, tt.err) })
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/test/"+tt.name, nil))
			require.Equal(t, tt.status, w.Code)
			var body errorBody
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
			require.Equal(t, tt.code, body.Error.Code)
			require.Equal(t, tt.field, body.Error.Field)
			require.NotEmpty(t, body.Error.Message)
			require.Equal(t, w.Header().Get("X-Request-Id"), body.RequestID)
			require.Equal(t, tt.retryAfter, w.Header().Get("Retry-After") != "")
			if tt.code == "internal" {
				require.NotContains(t, body.Error.Message, "disk on fire", "internal details stay in the log")
			}
		})
	}
}

func TestRecoverPanicAnswers500InTheEnvelope(t *testing.T) {
	t.Parallel()
	var logged strings.Builder
	s := New(Options{Log: newTestLogger(&logged)})
	s.router.GET("/boom", func(c *gin.Context) { panic("boom") })
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/boom", nil))
	require.Equal(t, http.StatusInternalServerError, w.Code)
	var body errorBody
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	require.Equal(t, "internal", body.Error.Code)
	require.Contains(t, logged.String(), "panic serving request")
	require.Contains(t, logged.String(), "errors_test.go", "the stack is logged")
	require.Contains(t, logged.String(), `"status":500`, "the access log sees the 500")
}

func TestAccessLogNeverLogsTheKey(t *testing.T) {
	t.Parallel()
	var logged strings.Builder
	s := New(Options{Log: newTestLogger(&logged)})
	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	req.Header.Set("Authorization", "Bearer df_secretsecret")
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	require.Equal(t, http.StatusOK, w.Code)
	require.Contains(t, logged.String(), `"path":"/healthz"`)
	require.NotContains(t, logged.String(), "df_secretsecret")
}
