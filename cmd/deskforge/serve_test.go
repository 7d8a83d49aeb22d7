package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/workflows/github"
)

// TestCheckGitHubSaysLoudlyWhenCredentialsFail: serve checks its GitHub
// credentials and the builder repository at start; a failure is an ERROR
// line saying builds will not be dispatched, a success an info line.
func TestCheckGitHubSaysLoudlyWhenCredentialsFail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		rateLimit int // status of GET /rate_limit
		repo      int // status of GET /repos/acme/builder
		want      string
	}{
		{"bad token", http.StatusUnauthorized, http.StatusOK, `level=ERROR msg="GITHUB CHECK FAILED`},
		{"builder repository not visible", http.StatusOK, http.StatusNotFound, `level=ERROR msg="GITHUB CHECK FAILED`},
		{"fine", http.StatusOK, http.StatusOK, `level=INFO msg="GitHub credentials checked"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				status := map[string]int{"/rate_limit": tt.rateLimit, "/repos/acme/builder": tt.repo}[r.URL.Path]
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				if status == http.StatusOK {
					fmt.Fprint(w, `{"resources":{"core":{"limit":5000,"remaining":5000,"reset":1}},"full_name":"acme/builder","private":true}`)
					return
				}
				fmt.Fprintf(w, `{"message":%q}`, http.StatusText(status))
			}))
			t.Cleanup(srv.Close)
			client, err := github.New(context.Background(), github.Options{BaseURL: srv.URL, Token: "ghp_x", HTTPClient: srv.Client()})
			require.NoError(t, err)
			var out bytes.Buffer
			checkGitHub(context.Background(), client, "acme/builder", slog.New(slog.NewTextHandler(&out, nil)))
			require.Contains(t, out.String(), tt.want)
			require.NotContains(t, out.String(), "ghp_x", "the token is never logged")
		})
	}
}
