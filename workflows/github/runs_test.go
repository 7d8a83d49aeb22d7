package github

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/workflows"
)

const runJSON = `{"id":5,"name":"DeskForge","display_title":"deskforge build_01 mac arm64","event":"workflow_dispatch",
	"status":"in_progress","conclusion":null,"run_attempt":1,"html_url":"https://github.com/o/r/actions/runs/5",
	"created_at":"2026-01-20T10:00:00Z","updated_at":"2026-01-20T10:00:30Z","repository":{"full_name":"o/r"}}`

func TestGetRun(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.mux.HandleFunc("/repos/o/r/actions/runs/5", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodGet)
		testAuth(t, r)
		writeJSON(w, http.StatusOK, runJSON)
	})
	run, err := b.client.GetRun(context.Background(), "o/r", 5)
	require.NoError(t, err)
	require.Equal(t, workflows.Run{
		ID: 5, Repo: "o/r", DisplayTitle: "deskforge build_01 mac arm64", Event: "workflow_dispatch",
		Status: "in_progress", RunAttempt: 1, HTMLURL: "https://github.com/o/r/actions/runs/5",
		CreatedAt: time.Date(2026, 1, 20, 10, 0, 0, 0, time.UTC), UpdatedAt: time.Date(2026, 1, 20, 10, 0, 30, 0, time.UTC),
	}, run)
	require.Zero(t, b.client.etags.len(), "an answer without ETag is not cached")
}

func TestGetRunConditional(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	var requests, notModified atomic.Int32
	var version atomic.Int32
	version.Store(1)
	b.mux.HandleFunc("/repos/o/r/actions/runs/5", func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		etag := fmt.Sprintf(`W/"v%d"`, version.Load())
		if r.Header.Get("If-None-Match") == etag {
			notModified.Add(1)
			w.Header().Set("ETag", etag)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		status := "in_progress"
		if version.Load() > 1 {
			status = "completed"
		}
		writeJSON(w, http.StatusOK, fmt.Sprintf(`{"id":5,"status":%q,"repository":{"full_name":"o/r"}}`, status))
	})

	first, err := b.client.GetRun(context.Background(), "o/r", 5)
	require.NoError(t, err)
	require.Equal(t, "in_progress", first.Status)

	second, err := b.client.GetRun(context.Background(), "o/r", 5)
	require.NoError(t, err)
	require.Equal(t, first, second, "a 304 returns the cached run")
	require.Equal(t, int32(2), requests.Load())
	require.Equal(t, int32(1), notModified.Load())

	version.Store(2)
	third, err := b.client.GetRun(context.Background(), "o/r", 5)
	require.NoError(t, err)
	require.Equal(t, "completed", third.Status, "a changed run is read again")
	require.Equal(t, int32(3), requests.Load())
	require.Equal(t, int32(1), notModified.Load())
}

func TestETagCacheIsBounded(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{ETagCacheSize: 2})
	var conditional atomic.Int32
	b.mux.HandleFunc("/repos/o/r/actions/runs/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") != "" {
			conditional.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"same"`)
		writeJSON(w, http.StatusOK, `{"id":1,"status":"queued"}`)
	})
	for id := range int64(3) {
		_, err := b.client.GetRun(context.Background(), "o/r", id+1)
		require.NoError(t, err)
	}
	require.Equal(t, 2, b.client.etags.len())
	_, err := b.client.GetRun(context.Background(), "o/r", 1) // evicted: unconditional
	require.NoError(t, err)
	require.Zero(t, conditional.Load())
	_, err = b.client.GetRun(context.Background(), "o/r", 3) // still cached: conditional
	require.NoError(t, err)
	require.Equal(t, int32(1), conditional.Load())
}

func TestListJobs(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	var requests, notModified atomic.Int32
	b.mux.HandleFunc("/repos/o/r/actions/runs/5/jobs", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodGet)
		requests.Add(1)
		page := r.URL.Query().Get("page")
		want := map[string]string{"filter": "latest", "per_page": "100"}
		if page != "" {
			want["page"] = page
		}
		testQuery(t, r, want)
		etag := `"jobs-` + page + `"`
		if r.Header.Get("If-None-Match") == etag {
			notModified.Add(1)
			w.WriteHeader(http.StatusNotModified) // no Link header on a 304
			return
		}
		w.Header().Set("ETag", etag)
		switch page {
		case "":
			w.Header().Set("Link", `<`+b.server.URL+apiPrefix+r.URL.Path+`?filter=latest&per_page=100&page=2>; rel="next"`)
			writeJSON(w, http.StatusOK, `{"total_count":2,"jobs":[{"id":11,"run_id":5,"name":"build","status":"completed",
				"conclusion":"success","runner_name":"GitHub Actions 3","labels":["macos-15"],
				"started_at":"2026-01-20T10:00:10Z","completed_at":"2026-01-20T10:05:00Z",
				"steps":[{"name":"Set up job","status":"completed","conclusion":"success","number":1,
				"started_at":"2026-01-20T10:00:10Z","completed_at":"2026-01-20T10:00:12Z"},
				{"name":"Build","status":"in_progress","conclusion":null,"number":2,"started_at":"2026-01-20T10:00:12Z","completed_at":null}]}]}`)
		case "2":
			writeJSON(w, http.StatusOK, `{"total_count":2,"jobs":[{"id":12,"run_id":5,"name":"publish","status":"queued",
				"labels":["ubuntu-24.04"],"started_at":"2026-01-20T10:05:01Z"}]}`)
		default:
			t.Errorf("unexpected page %q", page)
		}
	})

	want := []workflows.Job{
		{ID: 11, RunID: 5, Name: "build", Status: "completed", Conclusion: "success", RunnerName: "GitHub Actions 3",
			Labels: []string{"macos-15"}, StartedAt: time.Date(2026, 1, 20, 10, 0, 10, 0, time.UTC),
			CompletedAt: time.Date(2026, 1, 20, 10, 5, 0, 0, time.UTC),
			Steps: []workflows.Step{
				{Number: 1, Name: "Set up job", Status: "completed", Conclusion: "success",
					StartedAt: time.Date(2026, 1, 20, 10, 0, 10, 0, time.UTC), CompletedAt: time.Date(2026, 1, 20, 10, 0, 12, 0, time.UTC)},
				{Number: 2, Name: "Build", Status: "in_progress", StartedAt: time.Date(2026, 1, 20, 10, 0, 12, 0, time.UTC)},
			}},
		{ID: 12, RunID: 5, Name: "publish", Status: "queued", Labels: []string{"ubuntu-24.04"},
			StartedAt: time.Date(2026, 1, 20, 10, 5, 1, 0, time.UTC)},
	}
	jobs, err := b.client.ListJobs(context.Background(), "o/r", 5)
	require.NoError(t, err)
	require.Equal(t, want, jobs)
	require.Equal(t, int32(2), requests.Load())

	jobs, err = b.client.ListJobs(context.Background(), "o/r", 5)
	require.NoError(t, err)
	require.Equal(t, want, jobs, "both pages come from the cache, the second found through the cached Link")
	require.Equal(t, int32(4), requests.Load())
	require.Equal(t, int32(2), notModified.Load())
}

func TestJobLogs(t *testing.T) {
	t.Parallel()
	const logText = "\ufeff2026-01-20T10:00:10.1234567Z ##[group]Run actions/checkout@v4\n2026-01-20T10:00:11.0000000Z done\n"
	var signedAuth atomic.Value
	signed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		signedAuth.Store(r.Header.Get("Authorization"))
		if r.URL.Query().Get("sig") != "abc" {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, "<Error><Code>AuthenticationFailed</Code></Error>")
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, logText)
	}))
	t.Cleanup(signed.Close)

	b := setup(t, Options{})
	b.mux.HandleFunc("/repos/o/r/actions/jobs/11/logs", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodGet)
		testAuth(t, r)
		http.Redirect(w, r, signed.URL+"/logs/11.txt?sig=abc", http.StatusFound)
	})
	b.mux.HandleFunc("/repos/o/r/actions/jobs/12/logs", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, `{"message":"Not Found"}`)
	})
	b.mux.HandleFunc("/repos/o/r/actions/jobs/13/logs", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, signed.URL+"/logs/13.txt?sig=expired", http.StatusFound)
	})
	b.mux.HandleFunc("/repos/o/r/actions/jobs/14/logs", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})

	t.Run("follows the redirect without the token", func(t *testing.T) {
		body, err := b.client.JobLogs(context.Background(), "o/r", 11)
		require.NoError(t, err)
		defer body.Close()
		got, err := io.ReadAll(body)
		require.NoError(t, err)
		require.Equal(t, logText, string(got))
		require.Equal(t, "", signedAuth.Load(), "the token must not reach the signed URL's host")
	})
	t.Run("not available yet", func(t *testing.T) {
		_, err := b.client.JobLogs(context.Background(), "o/r", 12)
		require.ErrorIs(t, err, workflows.ErrNotFound)
	})
	t.Run("signed url refused", func(t *testing.T) {
		_, err := b.client.JobLogs(context.Background(), "o/r", 13)
		var ie *workflows.InvalidError
		require.ErrorAs(t, err, &ie)
		require.Equal(t, http.StatusForbidden, ie.Status)
	})
	t.Run("server error", func(t *testing.T) {
		_, err := b.client.JobLogs(context.Background(), "o/r", 14)
		var te *workflows.TransientError
		require.ErrorAs(t, err, &te)
		require.Equal(t, http.StatusServiceUnavailable, te.Status)
	})
}

func TestJobLogsRateLimited(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	reset := time.Now().Add(10 * time.Minute).Truncate(time.Second)
	b.mux.HandleFunc("/repos/o/r/actions/jobs/11/logs", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", fmt.Sprint(reset.Unix()))
		writeJSON(w, http.StatusForbidden, `{"message":"API rate limit exceeded"}`)
	})
	_, err := b.client.JobLogs(context.Background(), "o/r", 11)
	var rl *workflows.RateLimitError
	require.ErrorAs(t, err, &rl)
	require.False(t, rl.Secondary)
	require.True(t, rl.Until.Equal(reset))
}

func TestCancelRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		write func(w http.ResponseWriter)
		check func(t *testing.T, err error)
	}{
		{
			name:  "202 is success",
			write: func(w http.ResponseWriter) { writeJSON(w, http.StatusAccepted, `{}`) },
			check: func(t *testing.T, err error) { require.NoError(t, err) },
		},
		{
			name: "409 on a completed run",
			write: func(w http.ResponseWriter) {
				writeJSON(w, http.StatusConflict, `{"message":"Cannot cancel a workflow run that is completed."}`)
			},
			check: func(t *testing.T, err error) {
				var ie *workflows.InvalidError
				require.ErrorAs(t, err, &ie)
				require.Equal(t, http.StatusConflict, ie.Status)
				require.Equal(t, "Cannot cancel a workflow run that is completed.", ie.Message)
			},
		},
		{
			name:  "404",
			write: func(w http.ResponseWriter) { writeJSON(w, http.StatusNotFound, `{"message":"Not Found"}`) },
			check: func(t *testing.T, err error) { require.ErrorIs(t, err, workflows.ErrNotFound) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Options{})
			var calls atomic.Int32
			b.mux.HandleFunc("/repos/o/r/actions/runs/5/cancel", func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				assert.Equal(t, http.MethodPost, r.Method)
				testAuth(t, r)
				tt.write(w)
			})
			tt.check(t, b.client.CancelRun(context.Background(), "o/r", 5))
			require.Equal(t, int32(1), calls.Load())
		})
	}
}
