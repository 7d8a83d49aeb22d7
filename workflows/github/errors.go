package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v62/github"

	"github.com/deskforge/deskforge/workflows"
)

// defaultRateLimitWait is how long to wait after a rate-limit answer that
// names no time: GitHub's advice for secondary limits is "at least a minute".
const defaultRateLimitWait = time.Minute

// translateError is the one place where go-github's errors become the
// workflows package's: 404 → ErrNotFound; 403 with remaining 0, secondary
// limits and 429 → *RateLimitError; 5xx and network failures →
// *TransientError; other 4xx → *InvalidError with GitHub's message. op names
// the operation for context ("get run 5 of o/r"). resp is go-github's
// response when it returned one, for errors that carry no response of their
// own. The caller's cancellation is passed through as is.
func translateError(ctx context.Context, op string, resp *gh.Response, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", op, ctxErr)
	}

	var primary *gh.RateLimitError
	if errors.As(err, &primary) {
		until := primary.Rate.Reset.Time
		if until.IsZero() {
			until = time.Now().Add(defaultRateLimitWait)
		}
		return fmt.Errorf("%s: %w", op, &workflows.RateLimitError{Until: until.UTC(), Message: primary.Message})
	}
	var secondary *gh.AbuseRateLimitError
	if errors.As(err, &secondary) {
		wait := defaultRateLimitWait
		if secondary.RetryAfter != nil && *secondary.RetryAfter > 0 {
			wait = *secondary.RetryAfter
		}
		return fmt.Errorf("%s: %w", op, &workflows.RateLimitError{
			Until: time.Now().Add(wait).UTC(), Secondary: true, Message: secondary.Message,
		})
	}

	var (
		status  int
		header  http.Header
		message string
	)
	var answer *gh.ErrorResponse
	switch {
	case errors.As(err, &answer) && answer.Response != nil:
		status, header, message = answer.Response.StatusCode, answer.Response.Header, errorMessage(answer)
	case resp != nil && resp.Response != nil && resp.StatusCode >= 300:
		// go-github reports some answers (job logs) as plain errors next to
		// the response.
		status, header, message = resp.StatusCode, resp.Header, err.Error()
	case resp != nil && resp.Response != nil:
		// A 2xx answer whose body could not be read or decoded.
		return fmt.Errorf("%s: %w", op, &workflows.TransientError{Status: resp.StatusCode, Err: err})
	default:
		return fmt.Errorf("%s: %w", op, &workflows.TransientError{Err: err})
	}
	if message == "" {
		message = http.StatusText(status)
	}

	switch {
	case status == http.StatusNotFound:
		return fmt.Errorf("%s: %w", op, workflows.ErrNotFound)
	case status == http.StatusTooManyRequests,
		status == http.StatusForbidden && isRateLimitAnswer(header, message):
		return fmt.Errorf("%s: %w", op, rateLimitFromHeaders(header, message))
	case status >= 500:
		return fmt.Errorf("%s: %w", op, &workflows.TransientError{Status: status, Err: errors.New(message)})
	case status >= 400:
		return fmt.Errorf("%s: %w", op, &workflows.InvalidError{Status: status, Message: message})
	default:
		return fmt.Errorf("%s: unexpected answer %d: %s", op, status, message)
	}
}

// isRateLimitAnswer tells a 403 that is a rate limit (which go-github v62
// did not recognise, e.g. on the job-logs path) from a permission error.
func isRateLimitAnswer(header http.Header, message string) bool {
	return header.Get("X-RateLimit-Remaining") == "0" ||
		header.Get("Retry-After") != "" ||
		strings.Contains(strings.ToLower(message), "rate limit")
}

// rateLimitFromHeaders reads when a rate-limited client may resume:
// retry-after (seconds) first, then x-ratelimit-reset (epoch seconds), else
// a minute from now. The limit is primary when x-ratelimit-remaining is 0
// and no retry-after is given.
func rateLimitFromHeaders(header http.Header, message string) *workflows.RateLimitError {
	now := time.Now()
	e := &workflows.RateLimitError{Secondary: true, Message: message, Until: now.Add(defaultRateLimitWait).UTC()}
	if s, err := strconv.ParseInt(strings.TrimSpace(header.Get("Retry-After")), 10, 64); err == nil && s >= 0 {
		e.Until = now.Add(time.Duration(s) * time.Second).UTC()
		return e
	}
	if reset, err := strconv.ParseInt(strings.TrimSpace(header.Get("X-RateLimit-Reset")), 10, 64); err == nil && reset > 0 {
		e.Until = time.Unix(reset, 0).UTC()
		e.Secondary = header.Get("X-RateLimit-Remaining") != "0"
	}
	return e
}

// errorMessage is GitHub's message with the details of its "errors" list.
func errorMessage(e *gh.ErrorResponse) string {
	details := make([]string, 0, len(e.Errors))
	for _, d := range e.Errors {
		switch {
		case d.Message != "":
			details = append(details, d.Message)
		case d.Code != "":
			details = append(details, strings.TrimSpace(fmt.Sprintf("%s %s %s", d.Resource, d.Field, d.Code)))
		}
	}
	message := strings.TrimSpace(e.Message)
	if len(details) > 0 {
		if message != "" {
			message += ": "
		}
		message += strings.Join(details, "; ")
	}
	return message
}
