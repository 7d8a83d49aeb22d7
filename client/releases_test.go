package client_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/client"
)

func TestCreateReleaseSendsBodyAndIdempotencyKey(t *testing.T) {
	t.Parallel()
	var gotPath, gotKey string
	var gotBody map[string]any
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotKey, gotBody = r.Method+" "+r.URL.Path, r.Header.Get("Idempotency-Key"), nil
		data, _ := io.ReadAll(r.Body)
		require.NoError(t, json.Unmarshal(data, &gotBody))
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"id":"rel_x","projectId":"proj_1","version":"1.4.0","targets":["mac/arm64"],"notes":"n","status":"queued",`+
			`"createdAt":"2024-01-20T10:00:00Z","completedAt":null,"publishedAt":null,"releaseUrl":null,`+
			`"builds":[{"id":"build_a","platform":"mac","arch":"arm64","status":"queued"}],"assets":[]}`)
	}), true)
	rel, err := c.CreateRelease(t.Context(), "proj_1", client.ReleaseRequest{Version: "1.4.0", Targets: []string{"mac/arm64"}, Notes: "n", IdempotencyKey: "k1"})
	require.NoError(t, err, "strict: the client knows every field of the answer")
	require.Equal(t, "POST /projects/proj_1/releases", gotPath)
	require.Equal(t, "k1", gotKey)
	require.Equal(t, map[string]any{"version": "1.4.0", "targets": []any{"mac/arm64"}, "notes": "n"}, gotBody)
	require.Equal(t, []client.ReleaseBuild{{ID: "build_a", Platform: "mac", Arch: "arm64", Status: "queued"}}, rel.Builds)

	_, err = c.CreateRelease(t.Context(), "proj_1", client.ReleaseRequest{})
	require.NoError(t, err)
	require.Empty(t, gotBody, "defaults are left to the server")
}

// A release is followed until it is published, not merely successful (the
// publication runs after the last build), through a transient failure.
func TestWatchReleaseWaitsForThePublication(t *testing.T) {
	t.Parallel()
	var polls atomic.Int32
	states := []string{
		`"status":"building","publishedAt":null,"builds":[{"id":"build_a","platform":"mac","arch":"arm64","status":"building"}]`,
		`"status":"building","publishedAt":null,"builds":[{"id":"build_a","platform":"mac","arch":"arm64","status":"building"}]`,
		"",
		`"status":"success","publishedAt":null,"builds":[{"id":"build_a","platform":"mac","arch":"arm64","status":"success"}]`,
		`"status":"success","publishedAt":"2024-01-20T10:05:00Z","builds":[{"id":"build_a","platform":"mac","arch":"arm64","status":"success"}]`,
	}
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(polls.Add(1)) - 1
		if states[n] == "" {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, `{"id":"rel_x","createdAt":"2024-01-20T10:00:00Z",%s}`, states[n])
	}), false)
	var seen []string
	final, err := c.WatchRelease(t.Context(), "rel_x", client.WatchOptions{Interval: time.Millisecond}, func(r *client.Release) error {
		seen = append(seen, fmt.Sprintf("%s published=%t", r.Status, r.PublishedAt != nil))
		return nil
	})
	require.NoError(t, err)
	require.True(t, client.ReleaseDone(final))
	require.Equal(t, []string{"building published=false", "success published=false", "success published=true"}, seen,
		"unchanged polls are not reported")
	require.EqualValues(t, 5, polls.Load())
}
