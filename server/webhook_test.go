package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/server"
	"github.com/deskforge/deskforge/workflows"
)

func payload(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "github-webhooks", name+".json"))
	require.NoError(t, err)
	return data
}

func guid() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func TestWebhookAcceptsSignedEventsOnce(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			b := setupEngineAPI(t, dialect, engineOpts{secret: testWebhookSecret})
			tests := []struct {
				event, file string
				status      int
				result      string
				applies     bool
			}{
				{"workflow_job", "webhook-workflow-job-in-progress-1", http.StatusAccepted, "accepted", true},
				{"workflow_job", "webhook-workflow-job-queued-2", http.StatusAccepted, "accepted", true},
				{"workflow_job", "webhook-workflow-job-completed-1", http.StatusAccepted, "accepted", true},
				{"workflow_run", "webhook-workflow-run-requested-1", http.StatusAccepted, "accepted", true},
				{"workflow_run", "webhook-workflow-run-completed-1", http.StatusAccepted, "accepted", true},
				{"ping", "webhook-ping-event-1", http.StatusOK, "pong", false},
				{"release", "webhook-release-published-1", http.StatusAccepted, "ignored", false},
			}
			applied := int64(0)
			for _, tt := range tests {
				id := guid()
				body := payload(t, tt.file)
				r := b.webhook(t, tt.event, id, body, testWebhookSecret)
				require.Equal(t, tt.status, r.status, "%s: %s", tt.file, r.body)
				require.Equal(t, tt.result, r.json(t)["result"], tt.file)
				if tt.applies {
					applied++
					// GitHub's manual redelivery: same delivery id, no effect.
					again := b.webhook(t, tt.event, id, body, testWebhookSecret)
					require.Equal(t, http.StatusOK, again.status, "%s", again.body)
					require.Equal(t, "duplicate", again.json(t)["result"])
				}
			}
			require.Equal(t, applied, b.jobs(t, workflows.ApplyEventArgs{}.Kind()), "one apply job per new delivery")
			require.Equal(t, applied, b.count(t, "webhook_deliveries"))
		})
	}
}

func TestWebhookRejectsBadSignatures(t *testing.T) {
	t.Parallel()
	b := setupEngineAPI(t, models.DialectSQLite, engineOpts{secret: testWebhookSecret})
	body := payload(t, "webhook-workflow-job-queued-2")
	tests := []struct {
		name      string
		signature string
	}{
		{"unsigned", ""},
		{"wrong secret", sign("not the secret", body)},
		{"sha1", "sha1=" + strings.Repeat("0", 40)},
		{"garbage", "sha256=zz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.do(t, http.MethodPost, "/webhooks/github", "", body,
				"X-GitHub-Event", "workflow_job", "X-GitHub-Delivery", guid(), "X-Hub-Signature-256", tt.signature)
			require.Equal(t, http.StatusUnauthorized, r.status, "%s", r.body)
			code, _ := r.errorOf(t)
			require.Equal(t, "unauthorized", code)
		})
	}
	// A body changed after signing.
	sig := sign(testWebhookSecret, body)
	tampered := bytes.Replace(body, []byte("queued"), []byte("in_progress"), 1)
	r := b.do(t, http.MethodPost, "/webhooks/github", "", tampered,
		"X-GitHub-Event", "workflow_job", "X-GitHub-Delivery", guid(), "X-Hub-Signature-256", sig)
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Zero(t, b.count(t, "webhook_deliveries"))
}

func TestWebhookEndpointOffWithoutSecret(t *testing.T) {
	t.Parallel()
	b := setupEngineAPI(t, models.DialectSQLite, engineOpts{})
	body := payload(t, "webhook-workflow-job-queued-2")
	r := b.webhook(t, "workflow_job", guid(), body, "")
	require.Equal(t, http.StatusNotFound, r.status)
	code, _ := r.errorOf(t)
	require.Equal(t, "not_found", code)
	require.Contains(t, r.json(t)["error"].(map[string]any)["message"], "DESKFORGE_GITHUB_WEBHOOK_SECRET")

	demo := setupEngineAPI(t, models.DialectSQLite, engineOpts{demo: true})
	r = demo.webhook(t, "workflow_job", guid(), body, "")
	require.Equal(t, http.StatusAccepted, r.status, "demo mode without a secret accepts deliveries: %s", r.body)
}

func TestWebhookBodyLimitsAndBadInput(t *testing.T) {
	t.Parallel()
	b := setupEngineAPI(t, models.DialectSQLite, engineOpts{secret: testWebhookSecret})

	// 2 MiB (over the API's 1 MiB limit, under GitHub's 25 MB): accepted.
	var big map[string]any
	require.NoError(t, json.Unmarshal(payload(t, "webhook-workflow-job-in-progress-1"), &big))
	big["padding"] = strings.Repeat("x", 2<<20)
	data, err := json.Marshal(big)
	require.NoError(t, err)
	r := b.webhook(t, "workflow_job", guid(), data, testWebhookSecret)
	require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)

	// Over 25 MB: 413.
	huge := bytes.Repeat([]byte(" "), server.MaxWebhookBytes+1)
	r = b.webhook(t, "workflow_job", guid(), huge, testWebhookSecret)
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status)

	tests := []struct {
		name, event, delivery string
		body                  []byte
		field                 string
	}{
		{"no event header", "", guid(), payload(t, "webhook-workflow-job-queued-2"), "X-GitHub-Event"},
		{"no delivery header", "workflow_job", "", payload(t, "webhook-workflow-job-queued-2"), "X-GitHub-Delivery"},
		{"not json", "workflow_job", guid(), []byte("{nope"), "body"},
		{"job event without job", "workflow_job", guid(), []byte(`{"action":"queued"}`), "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.webhook(t, tt.event, tt.delivery, tt.body, testWebhookSecret)
			require.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
			_, field := r.errorOf(t)
			require.Equal(t, tt.field, field)
		})
	}
}

// recordingEngine accepts every webhook without a database, so that the
// fuzzer exercises the receiver's verification and parsing path only.
type recordingEngine struct{ server.BuildEngine }

func (recordingEngine) RecordWebhook(_ context.Context, d workflows.Delivery, ev *workflows.WebhookEvent) (bool, error) {
	if d.ID == "" || ev == nil || (ev.Run == nil && ev.Job == nil) {
		panic("receiver enqueued an event without delivery id, run or job")
	}
	return true, nil
}

// FuzzWebhookReceiver sends arbitrary signed payloads to the receiver: it
// must never panic nor answer 5xx, and must answer only the documented
// statuses.
func FuzzWebhookReceiver(f *testing.F) {
	for _, name := range []string{"webhook-workflow-job-in-progress-1", "webhook-workflow-job-completed-1", "webhook-workflow-run-completed-1", "webhook-ping-event-1"} {
		data, err := os.ReadFile(filepath.Join("testdata", "github-webhooks", name+".json"))
		require.NoError(f, err)
		event := "workflow_job"
		switch {
		case strings.Contains(name, "run"):
			event = "workflow_run"
		case strings.Contains(name, "ping"):
			event = "ping"
		}
		f.Add(event, data)
	}
	f.Add("workflow_run", []byte(`{"workflow_run":null}`))
	f.Add("workflow_job", []byte(`[]`))
	f.Add("workflow_job", []byte(`{"workflow_job":{"run_id":-1,"steps":[{"number":"x"}]}}`))

	handler := server.New(server.Options{Engine: recordingEngine{}, WebhookSecret: []byte(testWebhookSecret)}).Handler()

	f.Fuzz(func(t *testing.T, event string, body []byte) {
		req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/webhooks/github", bytes.NewReader(body))
		req.Header.Set("X-GitHub-Event", event)
		req.Header.Set("X-GitHub-Delivery", guid())
		req.Header.Set("X-Hub-Signature-256", sign(testWebhookSecret, body))
		rec := httptest.NewRecorder()
		contractHandler(t, handler).ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusAccepted, http.StatusBadRequest:
		default:
			t.Fatalf("event %q: status %d: %s", event, rec.Code, rec.Body)
		}
	})
}

// countingObserver records WebhookReceived calls as "event/result".
type countingObserver struct {
	mu   sync.Mutex
	seen []string
}

func (o *countingObserver) WebhookReceived(event, result string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, event+"/"+result)
}

// TestWebhookObserverCountsResults: every delivery is counted once by
// event and result, and an event name the sender made up is counted as
// "other" (the header is unauthenticated: the label's values are bounded).
func TestWebhookObserverCountsResults(t *testing.T) {
	t.Parallel()
	obs := &countingObserver{}
	handler := server.New(server.Options{Engine: recordingEngine{}, WebhookSecret: []byte(testWebhookSecret), Webhooks: obs}).Handler()
	job := payload(t, "webhook-workflow-job-queued-2")
	tests := []struct {
		event     string
		body      []byte
		signature string
		status    int
		want      string
	}{
		{"workflow_job", job, sign(testWebhookSecret, job), http.StatusAccepted, "workflow_job/accepted"},
		{"ping", payload(t, "webhook-ping-event-1"), sign(testWebhookSecret, payload(t, "webhook-ping-event-1")), http.StatusOK, "ping/pong"},
		{"release", job, sign(testWebhookSecret, job), http.StatusAccepted, "other/ignored"},
		{"workflow_job", job, sign("not the secret", job), http.StatusUnauthorized, "workflow_job/rejected"},
		{"x-made-up-" + guid(), job, "", http.StatusUnauthorized, "other/rejected"},
	}
	var want []string
	for _, tt := range tests {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/webhooks/github", bytes.NewReader(tt.body))
		req.Header.Set("X-GitHub-Event", tt.event)
		req.Header.Set("X-GitHub-Delivery", guid())
		req.Header.Set("X-Hub-Signature-256", tt.signature)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		require.Equal(t, tt.status, rec.Code, "%s: %s", tt.event, rec.Body)
		want = append(want, tt.want)
	}
	require.Equal(t, want, obs.seen)
}
