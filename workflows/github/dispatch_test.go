package github

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/workflows"
)

const dispatchPath = "/repos/o/r/actions/workflows/deskforge.yml/dispatches"

func testDispatchRequest() workflows.DispatchRequest {
	return workflows.DispatchRequest{
		Repo: "o/r", Workflow: "deskforge.yml", Ref: "main",
		Inputs: map[string]string{"build_id": "build_01", "platform": "mac"},
	}
}

// decodeDispatch reads a dispatch body, failing on anything but the three
// known keys.
func decodeDispatch(t *testing.T, r *http.Request) map[string]any {
	t.Helper()
	body, err := io.ReadAll(r.Body)
	assert.NoError(t, err)
	var got map[string]any
	assert.NoError(t, json.Unmarshal(body, &got))
	for k := range got {
		assert.Contains(t, []string{"ref", "inputs", "return_run_details"}, k)
	}
	assert.Equal(t, "main", got["ref"])
	assert.Equal(t, map[string]any{"build_id": "build_01", "platform": "mac"}, got["inputs"])
	return got
}

func TestDispatchWorkflowReturnsRunDetails(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.mux.HandleFunc(dispatchPath, func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodPost)
		testAuth(t, r)
		testJSONBody(t, r, `{"ref":"main","inputs":{"build_id":"build_01","platform":"mac"},"return_run_details":true}`)
		writeJSON(w, http.StatusOK, `{"workflow_run_id":987,"run_url":"https://api.github.com/repos/o/r/actions/runs/987",
			"html_url":"https://github.com/o/r/actions/runs/987"}`)
	})

	got, err := b.client.DispatchWorkflow(context.Background(), testDispatchRequest())
	require.NoError(t, err)
	require.Equal(t, workflows.DispatchResult{
		RunID:   987,
		RunURL:  "https://api.github.com/repos/o/r/actions/runs/987",
		HTMLURL: "https://github.com/o/r/actions/runs/987",
	}, got)
	require.True(t, b.client.SupportsRunDetails())
}

func TestDispatchWorkflowNoContent(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.mux.HandleFunc(dispatchPath, func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodPost)
		assert.Equal(t, true, decodeDispatch(t, r)["return_run_details"])
		w.WriteHeader(http.StatusNoContent)
	})

	got, err := b.client.DispatchWorkflow(context.Background(), testDispatchRequest())
	require.NoError(t, err)
	require.Zero(t, got.RunID)
	require.True(t, b.client.SupportsRunDetails(), "a 204 is not a rejection of the key")
}

func TestDispatchWorkflowGHESFallback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		status    int
		rejection string
	}{
		{"GHES 422 message", http.StatusUnprocessableEntity,
			`{"message":"Invalid request.\n\n\"return_run_details\" is not a permitted key.","documentation_url":"https://docs.github.com/enterprise-server@3.19/rest"}`},
		{"400 with errors list", http.StatusBadRequest,
			`{"message":"Invalid request.","errors":[{"code":"custom","message":"\"return_run_details\" is not a permitted key."}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Options{WritesPerMinute: 60_000})
			var withKey, withoutKey atomic.Int32
			b.mux.HandleFunc(dispatchPath, func(w http.ResponseWriter, r *http.Request) {
				testMethod(t, r, http.MethodPost)
				if _, ok := decodeDispatch(t, r)["return_run_details"]; ok {
					withKey.Add(1)
					writeJSON(w, tt.status, tt.rejection)
					return
				}
				withoutKey.Add(1)
				w.WriteHeader(http.StatusNoContent)
			})

			got, err := b.client.DispatchWorkflow(context.Background(), testDispatchRequest())
			require.NoError(t, err)
			require.Zero(t, got.RunID)
			require.False(t, b.client.SupportsRunDetails())
			require.Equal(t, int32(1), withKey.Load())
			require.Equal(t, int32(1), withoutKey.Load())

			_, err = b.client.DispatchWorkflow(context.Background(), testDispatchRequest())
			require.NoError(t, err)
			require.Equal(t, int32(1), withKey.Load(), "the second dispatch skips the key")
			require.Equal(t, int32(2), withoutKey.Load())
		})
	}
}

func TestDispatchWorkflowPresetWithoutRunDetails(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{DisableRunDetails: true})
	var calls atomic.Int32
	b.mux.HandleFunc(dispatchPath, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		assert.NotContains(t, decodeDispatch(t, r), "return_run_details")
		w.WriteHeader(http.StatusNoContent)
	})
	require.False(t, b.client.SupportsRunDetails())
	_, err := b.client.DispatchWorkflow(context.Background(), testDispatchRequest())
	require.NoError(t, err)
	require.Equal(t, int32(1), calls.Load())
}

func TestDispatchWorkflowRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		body   string
		check  func(t *testing.T, err error)
	}{
		{
			name: "undeclared input", status: http.StatusUnprocessableEntity,
			body: `{"message":"Unexpected inputs provided: [\"platform\"]"}`,
			check: func(t *testing.T, err error) {
				var ie *workflows.InvalidError
				require.ErrorAs(t, err, &ie)
				require.Equal(t, http.StatusUnprocessableEntity, ie.Status)
				require.Equal(t, `Unexpected inputs provided: ["platform"]`, ie.Message)
				require.ErrorContains(t, err, "dispatch deskforge.yml in o/r at main")
			},
		},
		{
			name: "bad ref", status: http.StatusUnprocessableEntity,
			body: `{"message":"No ref found for: nope"}`,
			check: func(t *testing.T, err error) {
				var ie *workflows.InvalidError
				require.ErrorAs(t, err, &ie)
				require.Equal(t, "No ref found for: nope", ie.Message)
			},
		},
		{
			name: "unknown workflow", status: http.StatusNotFound,
			body: `{"message":"Not Found"}`,
			check: func(t *testing.T, err error) {
				require.ErrorIs(t, err, workflows.ErrNotFound)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Options{})
			var calls atomic.Int32
			b.mux.HandleFunc(dispatchPath, func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				writeJSON(w, tt.status, tt.body)
			})
			_, err := b.client.DispatchWorkflow(context.Background(), testDispatchRequest())
			require.Error(t, err)
			tt.check(t, err)
			require.Equal(t, int32(1), calls.Load(), "a refusal that is not about return_run_details is not retried")
			require.True(t, b.client.SupportsRunDetails())
		})
	}
}

func TestWritePacing(t *testing.T) {
	t.Parallel()

	t.Run("a burst beyond the budget is refused locally", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{WritesPerMinute: 1, WriteBurst: 2, MaxPacingWait: 10 * time.Millisecond})
		var calls atomic.Int32
		b.mux.HandleFunc(dispatchPath, func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.WriteHeader(http.StatusNoContent)
		})
		b.mux.HandleFunc("/repos/o/r/actions/runs/1/cancel", func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.WriteHeader(http.StatusAccepted)
		})

		for range 2 {
			_, err := b.client.DispatchWorkflow(context.Background(), testDispatchRequest())
			require.NoError(t, err)
		}
		before := time.Now()
		for range 5 {
			_, err := b.client.DispatchWorkflow(context.Background(), testDispatchRequest())
			var rl *workflows.RateLimitError
			require.ErrorAs(t, err, &rl)
			require.Equal(t, "paced locally", rl.Message)
			require.WithinDuration(t, before.Add(time.Minute), rl.Until, 5*time.Second)
		}
		err := b.client.CancelRun(context.Background(), "o/r", 1)
		var rl *workflows.RateLimitError
		require.ErrorAs(t, err, &rl, "cancellations share the write budget")
		require.Equal(t, int32(2), calls.Load(), "refused writes never reach the server")
	})

	t.Run("replicas share the budget", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{WritesPerMinute: 1, WriteBurst: 4, MaxPacingWait: 10 * time.Millisecond})
		var calls atomic.Int32
		b.mux.HandleFunc(dispatchPath, func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.WriteHeader(http.StatusNoContent)
		})
		b.client.SetReplicas(2)
		var refused *workflows.RateLimitError
		for i := range 3 {
			_, err := b.client.DispatchWorkflow(context.Background(), testDispatchRequest())
			if i < 2 {
				require.NoError(t, err, "half the burst of 4")
				continue
			}
			require.ErrorAs(t, err, &refused)
		}
		// A burst of 4 a minute for the fleet: each of two replicas waits
		// two minutes for its next write slot.
		require.WithinDuration(t, time.Now().Add(2*time.Minute), refused.Until, 5*time.Second)
		require.Equal(t, int32(2), calls.Load())
	})

	t.Run("a short wait is waited out", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{WritesPerMinute: 1200, MaxPacingWait: time.Second})
		var calls atomic.Int32
		b.mux.HandleFunc(dispatchPath, func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.WriteHeader(http.StatusNoContent)
		})
		for range 3 {
			_, err := b.client.DispatchWorkflow(context.Background(), testDispatchRequest())
			require.NoError(t, err)
		}
		require.Equal(t, int32(3), calls.Load())
	})

	t.Run("waiting stops with the context", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{WritesPerMinute: 1, MaxPacingWait: time.Hour})
		var calls atomic.Int32
		b.mux.HandleFunc(dispatchPath, func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.WriteHeader(http.StatusNoContent)
		})
		_, err := b.client.DispatchWorkflow(context.Background(), testDispatchRequest())
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		_, err = b.client.DispatchWorkflow(ctx, testDispatchRequest())
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, int32(1), calls.Load())
	})
}

func TestListDispatchRuns(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	since := time.Date(2026, 1, 20, 10, 0, 0, 0, time.UTC)
	b.mux.HandleFunc("/repos/o/r/actions/workflows/deskforge.yml/runs", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodGet)
		testAuth(t, r)
		want := map[string]string{"event": "workflow_dispatch", "created": ">=2026-01-20T10:00:00Z", "per_page": "100"}
		switch r.URL.Query().Get("page") {
		case "":
			testQuery(t, r, want)
			w.Header().Set("Link", `<`+b.server.URL+apiPrefix+r.URL.Path+`?page=2&per_page=100>; rel="next", <`+
				b.server.URL+apiPrefix+r.URL.Path+`?page=2&per_page=100>; rel="last"`)
			writeJSON(w, http.StatusOK, `{"total_count":3,"workflow_runs":[
				{"id":3,"display_title":"deskforge build_03 mac arm64","event":"workflow_dispatch","status":"queued",
				 "run_attempt":1,"html_url":"https://github.com/o/r/actions/runs/3","created_at":"2026-01-20T10:03:00Z",
				 "updated_at":"2026-01-20T10:03:05Z","repository":{"full_name":"o/r"}},
				{"id":2,"display_title":"deskforge build_02 mac arm64","event":"workflow_dispatch","status":"completed",
				 "conclusion":"success","run_attempt":2,"created_at":"2026-01-20T10:02:00Z","updated_at":"2026-01-20T10:09:00Z"}]}`)
		case "2":
			want["page"] = "2"
			testQuery(t, r, want)
			writeJSON(w, http.StatusOK, `{"total_count":3,"workflow_runs":[
				{"id":1,"display_title":"deskforge build_01 mac arm64","event":"workflow_dispatch","status":"in_progress",
				 "created_at":"2026-01-20T10:01:00Z","updated_at":"2026-01-20T10:01:30Z"}]}`)
		default:
			t.Errorf("unexpected page %q", r.URL.Query().Get("page"))
		}
	})

	runs, err := b.client.ListDispatchRuns(context.Background(), "o/r", "deskforge.yml", since.In(time.FixedZone("CET", 3600)))
	require.NoError(t, err)
	require.Equal(t, []workflows.Run{
		{ID: 3, Repo: "o/r", DisplayTitle: "deskforge build_03 mac arm64", Event: "workflow_dispatch", Status: "queued",
			RunAttempt: 1, HTMLURL: "https://github.com/o/r/actions/runs/3",
			CreatedAt: time.Date(2026, 1, 20, 10, 3, 0, 0, time.UTC), UpdatedAt: time.Date(2026, 1, 20, 10, 3, 5, 0, time.UTC)},
		{ID: 2, Repo: "o/r", DisplayTitle: "deskforge build_02 mac arm64", Event: "workflow_dispatch", Status: "completed",
			Conclusion: "success", RunAttempt: 2,
			CreatedAt: time.Date(2026, 1, 20, 10, 2, 0, 0, time.UTC), UpdatedAt: time.Date(2026, 1, 20, 10, 9, 0, 0, time.UTC)},
		{ID: 1, Repo: "o/r", DisplayTitle: "deskforge build_01 mac arm64", Event: "workflow_dispatch", Status: "in_progress",
			CreatedAt: time.Date(2026, 1, 20, 10, 1, 0, 0, time.UTC), UpdatedAt: time.Date(2026, 1, 20, 10, 1, 30, 0, time.UTC)},
	}, runs)
}
