package github

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/workflows"
)

// secondaryLimitBody is GitHub's answer to a secondary rate limit.
const secondaryLimitBody = `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",` +
	`"documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`

// TestSecondaryLimitWithoutRetryAfter: GitHub's docs say that without
// retry-after, and with x-ratelimit-remaining not 0, a client waits at
// least a minute, longer if the limit keeps answering. go-github v62 would
// wait until x-ratelimit-reset (here an hour) and refuse every call of the
// client meanwhile. The client waits the minute (doubling per repeat), and
// an unrelated call is refused locally no longer than that.
func TestSecondaryLimitWithoutRetryAfter(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusForbidden, http.StatusTooManyRequests} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			b := setup(t, Options{SecondaryLimitWait: time.Second, MaxSecondaryLimitWait: 3 * time.Second})
			var limited atomic.Int32
			limited.Store(2)
			b.mux.HandleFunc("/repos/o/r/actions/runs/1", func(w http.ResponseWriter, r *http.Request) {
				if limited.Add(-1) >= 0 {
					w.Header().Set("X-RateLimit-Remaining", "4000")
					w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
					w.WriteHeader(status)
					fmt.Fprint(w, secondaryLimitBody)
					return
				}
				fmt.Fprint(w, `{"id":1,"status":"queued"}`)
			})
			b.mux.HandleFunc("/repos/o/r/actions/runs/2", func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, `{"id":2,"status":"queued"}`)
			})
			ctx := context.Background()

			start := time.Now()
			_, err := b.client.GetRun(ctx, "o/r", 1)
			var rl *workflows.RateLimitError
			require.ErrorAs(t, err, &rl)
			require.True(t, rl.Secondary)
			require.WithinDuration(t, start.Add(time.Second), rl.Until, 1500*time.Millisecond, "a minimum wait, not until x-ratelimit-reset")

			if status == http.StatusForbidden {
				// go-github holds unrelated work back (the limit is the
				// token's), now no longer than GitHub asked. (It does not
				// recognise 429s, so these reach GitHub.)
				_, err = b.client.GetRun(ctx, "o/r", 2)
				var held *workflows.RateLimitError
				require.ErrorAs(t, err, &held)
				require.LessOrEqual(t, time.Until(held.Until), 1100*time.Millisecond)
			}
			time.Sleep(time.Until(rl.Until) + 50*time.Millisecond)

			// The limit answers again: the wait doubles.
			_, err = b.client.GetRun(ctx, "o/r", 1)
			require.ErrorAs(t, err, &rl)
			require.Greater(t, time.Until(rl.Until), 1200*time.Millisecond, "second strike: longer wait")
			require.LessOrEqual(t, time.Until(rl.Until), 2100*time.Millisecond)
			time.Sleep(time.Until(rl.Until) + 50*time.Millisecond)
			_, err = b.client.GetRun(ctx, "o/r", 2)
			require.NoError(t, err)
			run, err := b.client.GetRun(ctx, "o/r", 1)
			require.NoError(t, err)
			require.Equal(t, int64(1), run.ID)
		})
	}
}

// TestRetryAfterAndPermissionErrorsUnchanged: a Retry-After is used as
// given, and a 403 that is not a limit stays a refusal.
func TestRetryAfterAndPermissionErrorsUnchanged(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.mux.HandleFunc("/repos/o/r/actions/runs/1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, secondaryLimitBody)
	})
	b.mux.HandleFunc("/repos/o/r/actions/runs/2", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-RateLimit-Remaining", "4000")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"message":"Resource not accessible by integration"}`)
	})
	_, err := b.client.GetRun(context.Background(), "o/r", 2)
	var invalid *workflows.InvalidError
	require.ErrorAs(t, err, &invalid)
	require.Equal(t, http.StatusForbidden, invalid.Status)

	_, err = b.client.GetRun(context.Background(), "o/r", 1)
	var rl *workflows.RateLimitError
	require.ErrorAs(t, err, &rl)
	require.WithinDuration(t, time.Now().Add(7*time.Second), rl.Until, 1500*time.Millisecond)
}

// TestHourlyWriteBudget: no hour holds more writes than WritesPerHour; the
// write past the budget is refused locally with the time to come back.
func TestHourlyWriteBudget(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{WritesPerMinute: 600000, WriteBurst: 1000, WritesPerHour: 20, MaxPacingWait: time.Millisecond})
	var calls atomic.Int32
	b.mux.HandleFunc("/repos/o/r/actions/runs/1/cancel", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusAccepted)
	})
	ctx := context.Background()
	for range 2 { // a tenth of the budget at once
		require.NoError(t, b.client.CancelRun(ctx, "o/r", 1))
	}
	err := b.client.CancelRun(ctx, "o/r", 1)
	var rl *workflows.RateLimitError
	require.ErrorAs(t, err, &rl)
	require.True(t, rl.Local)
	require.WithinDuration(t, time.Now().Add(time.Hour/18), rl.Until, 5*time.Second, "the rest of the budget is spread over the hour")
	require.Equal(t, int32(2), calls.Load(), "GitHub was not called")
}

// TestOpenAssetStreamedOrRedirected: GitHub's OpenAPI description says a
// release asset download may answer 200 with the bytes or 302 to a signed
// URL; both give the bytes, with the Range forwarded.
func TestOpenAssetStreamedOrRedirected(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.mux.HandleFunc("/repos/o/r/releases/assets/1", func(w http.ResponseWriter, r *http.Request) {
		testAuth(t, r)
		require.Equal(t, "application/octet-stream", r.Header.Get("Accept"))
		http.ServeContent(w, r, "a.dmg", time.Time{}, stringsReader("streamed bytes"))
	})
	b.mux.HandleFunc("/repos/o/r/releases/assets/2", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, b.server.URL+"/signed/2?sig=x", http.StatusFound)
	})
	b.mux.HandleFunc("/repos/o/r/releases/assets/3", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"message":"Not Found"}`)
	})
	ctx := context.Background()

	_, err := b.client.AssetDownloadURL(ctx, "o/r", 1)
	require.ErrorIs(t, err, workflows.ErrAssetStreamed)
	resp, err := b.client.OpenAsset(ctx, "o/r", 1, http.Header{})
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "streamed bytes", string(body))

	resp, err = b.client.OpenAsset(ctx, "o/r", 1, http.Header{"Range": {"bytes=0-7"}})
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	require.Equal(t, "streamed", string(body))

	_, err = b.client.OpenAsset(ctx, "o/r", 3, http.Header{})
	require.ErrorIs(t, err, workflows.ErrNotFound)
}

// TestCheckAccess: the start-up check fails on bad credentials and on an
// invisible builder repository.
func TestCheckAccess(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.mux.HandleFunc("/rate_limit", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"resources":{"core":{"limit":5000,"remaining":4999,"reset":1700000000}}}`)
	})
	b.mux.HandleFunc("/repos/acme/builder", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"id":1,"full_name":"acme/builder","private":true}`)
	})
	ctx := context.Background()
	require.NoError(t, b.client.CheckAccess(ctx, "acme/builder"))
	require.ErrorIs(t, b.client.CheckAccess(ctx, "acme/missing"), workflows.ErrNotFound)

	bad := setup(t, Options{})
	bad.mux.HandleFunc("/rate_limit", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"message":"Bad credentials"}`)
	})
	err := bad.client.CheckAccess(ctx, "")
	var invalid *workflows.InvalidError
	require.True(t, errors.As(err, &invalid), "%v", err)
	require.Equal(t, http.StatusUnauthorized, invalid.Status)
}

func stringsReader(s string) io.ReadSeeker { return strings.NewReader(s) }
