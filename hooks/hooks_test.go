package hooks_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/hooks"
	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
)

func TestCheckAddress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr    string
		blocked string // "" = allowed
	}{
		{"127.0.0.1", "loopback"},
		{"127.1.2.3", "loopback"},
		{"::1", "loopback"},
		{"10.0.0.1", "private"},
		{"172.16.5.4", "private"},
		{"192.168.1.1", "private"},
		{"fd00::1", "private"},
		{"169.254.169.254", "link-local"}, // cloud metadata
		{"fe80::1", "link-local"},
		{"224.0.0.1", "link-local"}, // link-local multicast
		{"233.252.0.1", "multicast"},
		{"ff0e::1", "multicast"},
		{"ff02::1", "link-local"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"100.64.0.1", "reserved"},
		{"255.255.255.255", "reserved"},
		{"::ffff:127.0.0.1", "loopback"},     // IPv4-mapped
		{"::ffff:10.0.0.1", "private"},       // IPv4-mapped
		{"64:ff9b::a9fe:a9fe", "link-local"}, // NAT64 of 169.254.169.254
		{"93.184.215.14", ""},
		{"8.8.8.8", ""},
		{"2606:2800:21f:cb07:6820:80da:af6b:8b2c", ""},
		{"::ffff:93.184.215.14", ""},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			err := hooks.CheckAddress(netip.MustParseAddr(tt.addr))
			if tt.blocked == "" {
				require.NoError(t, err)
				return
			}
			var blocked *hooks.BlockedAddressError
			require.ErrorAs(t, err, &blocked)
			require.Contains(t, err.Error(), tt.blocked)
			require.Contains(t, err.Error(), "DESKFORGE_WEBHOOKS_ALLOW_PRIVATE")
		})
	}
}

// TestClientRefusesPrivateReceivers dials through the delivery client: the
// check runs on the resolved address, so names are judged by where they
// lead.
func TestClientRefusesPrivateReceivers(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(srv.Close)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	strict := hooks.NewHTTPClient(2*time.Second, false)
	for _, host := range []string{"127.0.0.1", "[::1]", "localhost", "[::ffff:127.0.0.1]", "10.0.0.1", "169.254.169.254"} {
		t.Run(host, func(t *testing.T) {
			t.Parallel()
			_, err := strict.Post("http://"+host+":"+port+"/hook", "application/json", nil)
			var blocked *hooks.BlockedAddressError
			require.ErrorAs(t, err, &blocked, "%s must be refused", host)
		})
	}
	t.Run("public", func(t *testing.T) {
		t.Parallel()
		// 192.0.2.1 (TEST-NET-1) is public for the check; nothing answers
		// there offline, so the dial gets past the check and times out.
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://192.0.2.1:9/hook", nil)
		require.NoError(t, err)
		_, err = strict.Do(req)
		require.Error(t, err)
		var blocked *hooks.BlockedAddressError
		require.False(t, errors.As(err, &blocked), "a public address is allowed: %v", err)
	})
	allowing := hooks.NewHTTPClient(2*time.Second, true)
	resp, err := allowing.Post(srv.URL, "application/json", nil)
	require.NoError(t, err, "DESKFORGE_WEBHOOKS_ALLOW_PRIVATE=true reaches a loopback receiver")
	resp.Body.Close()
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("the redirect was followed")
	}))
	t.Cleanup(target.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	resp, err := hooks.NewHTTPClient(2*time.Second, true).Post(srv.URL, "application/json", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
}

func TestSignVerifiesWithTheLibrary(t *testing.T) {
	t.Parallel()
	oldSecret, newSecret := models.NewWebhookSecret(), models.NewWebhookSecret()
	now := time.Now()
	body := []byte(`{"id":"evt_1","type":"ping"}`)
	sig, err := hooks.Sign([]string{newSecret, oldSecret}, "evt_1", now, body)
	require.NoError(t, err)
	require.Len(t, strings.Fields(sig), 2)
	header := http.Header{}
	header.Set("webhook-id", "evt_1")
	header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	header.Set("webhook-signature", sig)
	for _, secret := range []string{oldSecret, newSecret} {
		wh, err := standardwebhooks.NewWebhook(secret)
		require.NoError(t, err)
		require.NoError(t, wh.Verify(body, header))
	}
	wh, err := standardwebhooks.NewWebhook(models.NewWebhookSecret())
	require.NoError(t, err)
	require.ErrorIs(t, wh.Verify(body, header), standardwebhooks.ErrNoMatchingSignature)
	_, err = hooks.Sign([]string{"whsec_not base64!"}, "evt_1", now, body)
	require.Error(t, err)
}

// TestDeliveryToLoopbackIsRefused: without AllowPrivate a delivery to a
// loopback receiver fails its attempt with the reason, and is retried.
func TestDeliveryToLoopbackIsRefused(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := dbtest.Open(t, dialect)
			store := models.NewStore(db)
			hit := false
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hit = true }))
			t.Cleanup(srv.Close)
			project := models.Project{Name: "App", URL: "https://example.com", Platforms: "mac"}
			require.NoError(t, store.CreateProject(ctx, &project))
			w, err := store.CreateWebhook(ctx, models.NewWebhookParams{URL: srv.URL, Events: []string{"*"}})
			require.NoError(t, err)
			d, err := store.PingWebhook(ctx, w.ID)
			require.NoError(t, err)

			results := &attemptResults{}
			deliverer := hooks.New(store, hooks.Options{Observer: results})
			err = deliverer.Deliver(ctx, d.ID, 1)
			require.Error(t, err, "a failed attempt asks River for a retry")
			require.False(t, hit)
			ds, _, err := store.ListDeliveries(ctx, models.DeliveryFilter{WebhookID: w.ID, Limit: 10})
			require.NoError(t, err)
			require.Equal(t, models.DeliveryPending, ds[0].Status)
			require.Contains(t, ds[0].LastError, "loopback")
			require.NotNil(t, ds[0].NextAttemptAt)

			// The last attempt of the schedule fails the delivery for good.
			require.NoError(t, deliverer.Deliver(ctx, d.ID, len(hooks.DefaultSchedule)+1))
			ds, _, err = store.ListDeliveries(ctx, models.DeliveryFilter{WebhookID: w.ID, Limit: 10})
			require.NoError(t, err)
			require.Equal(t, models.DeliveryFailed, ds[0].Status)
			require.Equal(t, 2, ds[0].Attempts)
			require.Nil(t, ds[0].NextAttemptAt)

			// A deleted endpoint's job ends quietly.
			require.NoError(t, store.DeleteWebhook(ctx, w.ID))
			require.NoError(t, deliverer.Deliver(ctx, d.ID, 1))
			require.Equal(t, []string{"retrying", "failed"}, results.seen, "the metrics' counts of the two attempts")
		})
	}
}

// attemptResults records the results a Deliverer reports.
type attemptResults struct{ seen []string }

func (a *attemptResults) DeliveryAttempted(result string) { a.seen = append(a.seen, result) }
