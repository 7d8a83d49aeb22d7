package github

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of the secondary rate-limit waits (Options.SecondaryLimitWait and
// Options.MaxSecondaryLimitWait).
const (
	DefaultSecondaryLimitWait    = time.Minute
	DefaultMaxSecondaryLimitWait = 16 * time.Minute
)

// maxErrorBody bounds how much of a 403/429 answer is read to tell a
// secondary rate limit from a permission error (GitHub's error bodies are a
// few hundred bytes).
const maxErrorBody = 64 << 10

// secondaryLimits is the transport under go-github that makes a secondary
// rate limit cost exactly the wait GitHub asks for.
//
// GitHub's documentation: after a secondary rate limit, wait retry-after
// seconds when the header is present; without it, and with
// x-ratelimit-remaining not 0, wait at least one minute, and longer
// (exponentially) if the limit keeps answering. go-github v62 instead
// (parseSecondaryRate) waits until x-ratelimit-reset, up to an hour, and
// meanwhile refuses every call of the whole client locally
// (checkSecondaryRateLimitBeforeDo): one such answer froze all of a
// process's GitHub calls. This transport writes the wait GitHub asks for
// into a Retry-After header of such answers before go-github reads them:
// the minimum wait, doubled per consecutive secondary limit (any 2xx answer
// resets the count), capped at max. go-github then blocks the client for
// that long and no longer (the limit holds for the token, so no call of the
// client could succeed sooner), and translateError reports the same time.
type secondaryLimits struct {
	next     http.RoundTripper
	min, max time.Duration

	mu      sync.Mutex
	strikes int
}

// RoundTrip implements http.RoundTripper.
func (t *secondaryLimits) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	switch {
	case resp.StatusCode < 300:
		t.mu.Lock()
		t.strikes = 0
		t.mu.Unlock()
		return resp, nil
	case resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests,
		resp.Header.Get("Retry-After") != "",
		resp.Header.Get("X-RateLimit-Remaining") == "0": // primary: wait until reset
		return resp, nil
	}
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if readErr != nil || (resp.StatusCode == http.StatusForbidden && !mentionsSecondaryLimit(body)) {
		return resp, nil // a permission error, not a limit
	}
	wait := t.nextWait()
	resp.Header = resp.Header.Clone()
	resp.Header.Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
	return resp, nil
}

// nextWait counts one more consecutive secondary limit and returns its wait.
func (t *secondaryLimits) nextWait() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.strikes++
	wait := max(t.min, time.Second)
	for i := 1; i < t.strikes && wait < t.max; i++ {
		wait *= 2
	}
	return min(wait, max(t.max, t.min))
}

// mentionsSecondaryLimit recognises GitHub's secondary-limit bodies: the
// message ("You have exceeded a secondary rate limit…") or the
// documentation URL (…#about-secondary-rate-limits, older …#abuse-rate-limits).
func mentionsSecondaryLimit(body []byte) bool {
	s := strings.ToLower(string(body))
	return strings.Contains(s, "secondary rate limit") || strings.Contains(s, "secondary-rate-limits") ||
		strings.Contains(s, "abuse-rate-limits") || strings.Contains(s, "abuse detection")
}
