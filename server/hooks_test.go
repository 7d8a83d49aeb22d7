package server_test

import (
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/hooks"
	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
)

// received is one request a test receiver got.
type received struct {
	header http.Header
	body   []byte
	at     time.Time
}

// receiver is an httptest webhook receiver; answer decides each answer
// from the number of earlier requests with the same webhook-id.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(w http.ResponseWriter, seen int)
}

func newReceiver(t *testing.T, answer func(w http.ResponseWriter, seen int)) *receiver {
	t.Helper()
	rc := &receiver{answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		seen := 0
		for _, g := range rc.got {
			if g.header.Get("webhook-id") == r.Header.Get("webhook-id") {
				seen++
			}
		}
		rc.got = append(rc.got, received{header: r.Header.Clone(), body: body, at: time.Now()})
		rc.mu.Unlock()
		rc.answer(w, seen)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// verify checks every request with the Standard Webhooks library and
// secret, and returns the decoded payloads.
func (rc *receiver) verify(t *testing.T, secret string) []map[string]any {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	var payloads []map[string]any
	for _, r := range rc.requests() {
		require.NoError(t, wh.Verify(r.body, r.header), "signature of %s", r.body)
		require.Equal(t, "application/json", r.header.Get("Content-Type"))
		var p map[string]any
		require.NoError(t, json.Unmarshal(r.body, &p))
		require.Equal(t, r.header.Get("webhook-id"), p["id"])
		payloads = append(payloads, p)
	}
	return payloads
}

func ok(w http.ResponseWriter, _ int) { w.WriteHeader(http.StatusOK) }

// startDeliveries runs River workers delivering webhooks (as serve does)
// until the test ends; private addresses are allowed for the receivers.
func startDeliveries(t *testing.T, b *apiBundle, opts hooks.Options) {
	t.Helper()
	opts.AllowPrivate = true
	if opts.Schedule == nil {
		opts.Schedule = []time.Duration{50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond}
	}
	opts.Timeout = max(opts.Timeout, 5*time.Second)
	workers := river.NewWorkers()
	hooks.New(b.store, opts).RegisterWorkers(workers)
	client, err := river.NewClient[*sql.Tx](b.db.RiverDriver(), &river.Config{
		Queues:        map[string]river.QueueConfig{models.WebhookQueue: {MaxWorkers: 4}},
		Workers:       workers,
		FetchCooldown: 20 * time.Millisecond, FetchPollInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	require.NoError(t, client.Start(b.ctx))
	t.Cleanup(func() { _ = client.Stop(b.ctx) })
}

// createHook subscribes url through the API and returns its id and secret.
func (b *apiBundle) createHook(t *testing.T, key string, body map[string]any) (string, string) {
	t.Helper()
	r := b.do(t, http.MethodPost, "/webhooks", key, body)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	v := r.json(t)
	require.Regexp(t, `^whsec_`, v["secret"])
	return v["id"].(string), v["secret"].(string)
}

// deliveries lists a webhook's deliveries through the API.
func (b *apiBundle) deliveries(t *testing.T, hookID string) []map[string]any {
	t.Helper()
	r := b.do(t, http.MethodGet, "/webhooks/"+hookID+"/deliveries", b.adminKey, nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var v struct{ Deliveries []map[string]any }
	require.NoError(t, json.Unmarshal(r.body, &v))
	return v.Deliveries
}

// waitDeliveries waits until every delivery of hookID has status want.
func (b *apiBundle) waitDeliveries(t *testing.T, hookID string, n int, want string) []map[string]any {
	t.Helper()
	var ds []map[string]any
	require.Eventually(t, func() bool {
		ds = b.deliveries(t, hookID)
		if len(ds) != n {
			return false
		}
		for _, d := range ds {
			if d["status"] != want {
				return false
			}
		}
		return true
	}, 60*time.Second, 50*time.Millisecond, "deliveries of %s: %v", hookID, ds)
	return ds
}

func TestOutboundWebhookSignedAndRetriedUntilDelivered(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		// 500 on the first attempt of each message, then 200.
		rc := newReceiver(t, func(w http.ResponseWriter, seen int) {
			if seen == 0 {
				http.Error(w, "try later", http.StatusInternalServerError)
				return
			}
			w.Write([]byte("thanks"))
		})
		hookID, secret := b.createHook(t, b.adminKey, map[string]any{"url": rc.srv.URL, "events": []string{"build.*"}, "projectId": b.projectA.ID})
		// The build and its event commit while no worker runs (as if the
		// server stopped right after the commit): delivered once workers run.
		buildID := b.createBuild(t, b.projectA.ID, b.adminKey, map[string]any{"platform": "mac"})
		ds := b.deliveries(t, hookID)
		require.Len(t, ds, 1)
		require.Equal(t, "pending", ds[0]["status"])
		startDeliveries(t, b, hooks.Options{})

		ds = b.waitDeliveries(t, hookID, 1, "delivered")
		require.EqualValues(t, 2, ds[0]["attempts"])
		require.EqualValues(t, 200, ds[0]["lastStatusCode"])
		require.Equal(t, "thanks", ds[0]["lastResponse"])
		require.Equal(t, "build.queued", ds[0]["eventType"])

		payloads := rc.verify(t, secret)
		require.Len(t, payloads, 2)
		reqs := rc.requests()
		require.Equal(t, reqs[0].header.Get("webhook-id"), reqs[1].header.Get("webhook-id"), "same webhook-id on every attempt")
		require.Equal(t, ds[0]["eventId"], reqs[0].header.Get("webhook-id"))
		require.Equal(t, reqs[0].body, reqs[1].body, "same body on every attempt")

		// data.build is exactly GET /builds/:id's body.
		var payload struct {
			Type string
			Data struct{ Build json.RawMessage }
		}
		require.NoError(t, json.Unmarshal(reqs[0].body, &payload))
		require.Equal(t, "build.queued", payload.Type)
		got := b.do(t, http.MethodGet, "/builds/"+buildID, b.adminKey, nil)
		require.JSONEq(t, string(got.body), string(payload.Data.Build))
	})
}

func TestOutboundWebhookTimeoutIsRetried(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, models.DialectSQLite)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rc := newReceiver(t, func(w http.ResponseWriter, seen int) {
		if seen == 0 {
			select { // longer than the attempt's timeout
			case <-release:
			case <-time.After(10 * time.Second):
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
	hookID, secret := b.createHook(t, b.adminKey, map[string]any{"url": rc.srv.URL, "events": []string{"*"}})
	startDeliveries(t, b, hooks.Options{Timeout: 5 * time.Second})
	b.createBuild(t, b.projectA.ID, b.adminKey, map[string]any{"platform": "mac"})
	ds := b.waitDeliveries(t, hookID, 1, "delivered")
	require.EqualValues(t, 2, ds[0]["attempts"])
	require.EqualValues(t, 204, ds[0]["lastStatusCode"])
	require.Len(t, rc.verify(t, secret), 2)
}

func TestOutboundWebhookGoneDisablesEndpoint(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		rc := newReceiver(t, func(w http.ResponseWriter, _ int) { http.Error(w, "no such hook", http.StatusGone) })
		hookID, _ := b.createHook(t, b.adminKey, map[string]any{"url": rc.srv.URL, "events": []string{"build.queued"}})
		startDeliveries(t, b, hooks.Options{})
		b.createBuild(t, b.projectA.ID, b.adminKey, map[string]any{"platform": "mac"})
		ds := b.waitDeliveries(t, hookID, 1, "failed")
		require.EqualValues(t, 1, ds[0]["attempts"], "410 is not retried")
		require.EqualValues(t, 410, ds[0]["lastStatusCode"])
		hook := b.do(t, http.MethodGet, "/webhooks/"+hookID, b.adminKey, nil).json(t)
		require.Equal(t, false, hook["enabled"])
		require.Contains(t, hook["disabledReason"], "410 Gone")

		// A disabled endpoint gets nothing new, and refuses ping/redeliver.
		b.createBuild(t, b.projectA.ID, b.adminKey, map[string]any{"platform": "linux"})
		require.Len(t, b.deliveries(t, hookID), 1)
		r := b.do(t, http.MethodPost, "/webhooks/"+hookID+"/ping", b.adminKey, nil)
		require.Equal(t, http.StatusConflict, r.status, "%s", r.body)
		code, _ := r.errorOf(t)
		require.Equal(t, "webhook_disabled", code)
		require.Len(t, rc.requests(), 1)

		// Enabling it again clears the reason.
		hook = b.do(t, http.MethodPatch, "/webhooks/"+hookID, b.adminKey, map[string]any{"enabled": true}).json(t)
		require.Equal(t, true, hook["enabled"])
		require.Nil(t, hook["disabledReason"])
	})
}

func TestOutboundWebhookFailingForTheWindowIsDisabled(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, models.DialectSQLite)
	rc := newReceiver(t, func(w http.ResponseWriter, _ int) { http.Error(w, "down", http.StatusBadGateway) })
	hookID, _ := b.createHook(t, b.adminKey, map[string]any{"url": rc.srv.URL, "events": []string{"build.queued"}})
	// The window (3 days in production) shrunk to 150 ms, the schedule to
	// ten 50 ms retries: the endpoint is disabled before they run out.
	startDeliveries(t, b, hooks.Options{FailureWindow: 150 * time.Millisecond,
		Schedule: []time.Duration{50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond,
			50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond}})
	b.createBuild(t, b.projectA.ID, b.adminKey, map[string]any{"platform": "mac"})
	ds := b.waitDeliveries(t, hookID, 1, "failed")
	require.Less(t, ds[0]["attempts"].(float64), float64(11))
	hook := b.do(t, http.MethodGet, "/webhooks/"+hookID, b.adminKey, nil).json(t)
	require.Equal(t, false, hook["enabled"])
	require.Contains(t, hook["disabledReason"], "every delivery attempt failed since")
	require.NotNil(t, hook["failingSince"])
}

func TestOutboundWebhookPingAndRedeliver(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		rc := newReceiver(t, ok)
		hookID, secret := b.createHook(t, b.keyA, map[string]any{"url": rc.srv.URL, "events": []string{"project.*", "build.succeeded"}})
		startDeliveries(t, b, hooks.Options{})

		r := b.do(t, http.MethodPost, "/webhooks/"+hookID+"/ping", b.keyA, nil)
		require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)
		ds := b.waitDeliveries(t, hookID, 1, "delivered")
		require.Equal(t, "ping", ds[0]["eventType"])

		r = b.do(t, http.MethodPost, "/webhooks/"+hookID+"/deliveries/"+ds[0]["id"].(string)+"/redeliver", b.keyA, nil)
		require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)
		require.Eventually(t, func() bool { return len(rc.requests()) == 2 }, 60*time.Second, 50*time.Millisecond)
		ds = b.waitDeliveries(t, hookID, 1, "delivered")
		require.EqualValues(t, 2, ds[0]["attempts"])
		payloads := rc.verify(t, secret)
		require.Equal(t, payloads[0]["id"], payloads[1]["id"], "a redelivery keeps the webhook-id")
		require.Equal(t, "ping", payloads[0]["type"])
		require.Equal(t, hookID, payloads[0]["data"].(map[string]any)["webhook"].(map[string]any)["id"])

		// Unknown deliveries answer 404.
		r = b.do(t, http.MethodPost, "/webhooks/"+hookID+"/deliveries/dlv_01j00000000000000000000000/redeliver", b.keyA, nil)
		require.Equal(t, http.StatusNotFound, r.status, "%s", r.body)
	})
}

func TestOutboundWebhookSecretRotationOverlap(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		rc := newReceiver(t, ok)
		hookID, oldSecret := b.createHook(t, b.adminKey, map[string]any{"url": rc.srv.URL, "events": []string{"*"}})
		r := b.do(t, http.MethodPost, "/webhooks/"+hookID+"/rotate-secret", b.adminKey, nil)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		rotated := r.json(t)
		newSecret := rotated["secret"].(string)
		require.NotEqual(t, oldSecret, newSecret)
		require.NotNil(t, rotated["previousSecretExpiresAt"])
		require.Nil(t, b.do(t, http.MethodGet, "/webhooks/"+hookID, b.adminKey, nil).json(t)["secret"], "the secret is shown once")
		startDeliveries(t, b, hooks.Options{})

		// During the overlap: both signatures, each verifies alone.
		require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, "/webhooks/"+hookID+"/ping", b.adminKey, nil).status)
		require.Eventually(t, func() bool { return len(rc.requests()) == 1 }, 60*time.Second, 50*time.Millisecond)
		first := rc.requests()[0]
		require.Len(t, strings.Fields(first.header.Get("webhook-signature")), 2)
		rc.verify(t, oldSecret)
		rc.verify(t, newSecret)

		// After it: only the new one.
		require.NoError(t, b.db.Gorm.Model(&models.Webhook{}).Where("id = ?", hookID).
			Update("previous_secret_until", time.Now().Add(-time.Second)).Error)
		require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, "/webhooks/"+hookID+"/ping", b.adminKey, nil).status)
		require.Eventually(t, func() bool { return len(rc.requests()) == 2 }, 60*time.Second, 50*time.Millisecond)
		second := rc.requests()[1]
		require.Len(t, strings.Fields(second.header.Get("webhook-signature")), 1)
		wh, err := standardwebhooks.NewWebhook(newSecret)
		require.NoError(t, err)
		require.NoError(t, wh.Verify(second.body, second.header))
		old, err := standardwebhooks.NewWebhook(oldSecret)
		require.NoError(t, err)
		require.ErrorIs(t, old.Verify(second.body, second.header), standardwebhooks.ErrNoMatchingSignature)
		require.Nil(t, b.do(t, http.MethodGet, "/webhooks/"+hookID, b.adminKey, nil).json(t)["previousSecretExpiresAt"])
	})
}

func TestOutboundWebhookScopeAndValidation(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		url := "https://hooks.example.com/deskforge"
		// A project key's endpoint belongs to its project.
		mine := b.do(t, http.MethodPost, "/webhooks", b.keyA, map[string]any{"url": url, "events": []string{"*"}})
		require.Equal(t, http.StatusCreated, mine.status, "%s", mine.body)
		require.Equal(t, b.projectA.ID, mine.json(t)["projectId"])
		mineID := mine.json(t)["id"].(string)
		global, _ := b.createHook(t, b.adminKey, map[string]any{"url": url, "events": []string{"*"}, "description": "all projects"})

		// Another project's, or every project's: 404 for a project key.
		r := b.do(t, http.MethodPost, "/webhooks", b.keyB, map[string]any{"url": url, "events": []string{"*"}, "projectId": b.projectA.ID})
		require.Equal(t, http.StatusNotFound, r.status, "%s", r.body)
		for _, id := range []string{mineID, global} {
			for _, ep := range []struct{ method, path string }{
				{http.MethodGet, "/webhooks/" + id},
				{http.MethodPatch, "/webhooks/" + id},
				{http.MethodDelete, "/webhooks/" + id},
				{http.MethodPost, "/webhooks/" + id + "/ping"},
				{http.MethodPost, "/webhooks/" + id + "/rotate-secret"},
				{http.MethodGet, "/webhooks/" + id + "/deliveries"},
			} {
				var body any
				if ep.method == http.MethodPatch {
					body = map[string]any{"enabled": false}
				}
				r := b.do(t, ep.method, ep.path, b.keyB, body)
				require.Equal(t, http.StatusNotFound, r.status, "%s %s: %s", ep.method, ep.path, r.body)
			}
		}
		list := b.do(t, http.MethodGet, "/webhooks", b.keyB, nil).json(t)
		require.EqualValues(t, 0, list["total"])
		list = b.do(t, http.MethodGet, "/webhooks", b.keyA, nil).json(t)
		require.EqualValues(t, 1, list["total"])
		list = b.do(t, http.MethodGet, "/webhooks?limit=1", b.adminKey, nil).json(t)
		require.EqualValues(t, 2, list["total"])
		require.Len(t, list["webhooks"], 1)
		next := b.do(t, http.MethodGet, "/webhooks?limit=1&cursor="+list["nextCursor"].(string), b.adminKey, nil).json(t)
		require.Len(t, next["webhooks"], 1)
		require.Nil(t, next["nextCursor"])

		// Bad input: 400 naming the field.
		for _, tt := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"url": url, "events": []string{"build.exploded"}}, "events"},
			{map[string]any{"url": url, "events": []string{}}, "events"},
			{map[string]any{"url": "ftp://hooks.example.com", "events": []string{"*"}}, "url"},
			{map[string]any{"url": "https://user:pw@hooks.example.com", "events": []string{"*"}}, "url"},
			{map[string]any{"url": url, "events": []string{"*"}, "secret": "mine"}, "secret"},
			{map[string]any{"url": url, "events": []string{"*"}, "projectId": "proj_01j00000000000000000000000"}, "projectId"},
		} {
			r := b.do(t, http.MethodPost, "/webhooks", b.adminKey, tt.body)
			require.Equal(t, http.StatusBadRequest, r.status, "%v: %s", tt.body, r.body)
			_, field := r.errorOf(t)
			require.Equal(t, tt.field, field, "%s", r.body)
		}
		r = b.do(t, http.MethodPatch, "/webhooks/"+mineID, b.keyA, map[string]any{"events": []string{"nope"}})
		require.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)

		// Deleting removes it.
		require.Equal(t, http.StatusNoContent, b.do(t, http.MethodDelete, "/webhooks/"+mineID, b.keyA, nil).status)
		require.Equal(t, http.StatusNotFound, b.do(t, http.MethodGet, "/webhooks/"+mineID, b.adminKey, nil).status)
	})
}

func TestOutboundWebhookRoutesLeaveGitHubIntakeAlone(t *testing.T) {
	t.Parallel()
	b := setupEngineAPI(t, models.DialectSQLite, engineOpts{secret: testWebhookSecret})
	r := b.webhook(t, "ping", guid(), payload(t, "webhook-ping-event-1"), testWebhookSecret)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.Equal(t, "pong", r.json(t)["result"])
	require.Equal(t, http.StatusNotFound, b.do(t, http.MethodGet, "/webhooks/github", b.adminKey, nil).status)
}

func TestOutboundWebhookProjectEvents(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			b := setupAPI(t, dialect)
			rc := newReceiver(t, ok)
			hookID, secret := b.createHook(t, b.adminKey, map[string]any{"url": rc.srv.URL, "events": []string{"project.*"}})
			startDeliveries(t, b, hooks.Options{})
			r := b.do(t, http.MethodPatch, "/projects/"+b.projectA.ID, b.adminKey, map[string]any{"author": "Ada"})
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			b.waitDeliveries(t, hookID, 1, "delivered")
			payloads := rc.verify(t, secret)
			require.Equal(t, "project.updated", payloads[0]["type"])
			project, err := json.Marshal(payloads[0]["data"].(map[string]any)["project"])
			require.NoError(t, err)
			require.JSONEq(t, string(r.body), string(project))
		})
	}
}
