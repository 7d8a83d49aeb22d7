package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/workflows"
)

// Error codes of the envelope, besides those carried by *models.StateError.
const (
	codeInvalidRequest   = "invalid_request"
	codeUnauthorized     = "unauthorized"
	codeForbidden        = "forbidden"
	codeNotFound         = "not_found"
	codeMethodNotAllowed = "method_not_allowed"
	codeConflict         = "conflict"
	codeTooLarge         = "payload_too_large"
	codeRateLimited      = "rate_limited"
	codeGitHubRateLimit  = "github_rate_limited"
	codeGitHubFailed     = "github_unavailable"
	codeGitHubRefused    = "github_refused"
	codeGitHubNotFound   = "github_not_found"
	codeSuperseded       = "artifact_superseded"
	codeUnavailable      = "unavailable"
	codeInternal         = "internal"
)

// apiError is an error the HTTP layer answers as is.
type apiError struct {
	Status  int
	Code    string
	Message string
	Field   string
}

func (e *apiError) Error() string { return e.Message }

// errorBody is the envelope of every non-2xx answer.
type errorBody struct {
	Error     errorDetail `json:"error"`
	RequestID string      `json:"requestId"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// renderError is the one translator from errors to HTTP answers:
//
//   - *models.FieldError / models.ErrInvalid → 400 invalid_request (with field)
//   - models.ErrNotFound → 404 not_found
//   - *models.StateError → 409 with its code; models.ErrConflict → 409 conflict
//   - *workflows.SupersededError → 410 artifact_superseded, naming the build
//     whose installer replaced this one's
//   - *models.RateLimitedError → 429 rate_limited with Retry-After
//   - os.ErrDeadlineExceeded (a body read past its deadline) → 408 request_timeout
//   - *http.MaxBytesError → 413 payload_too_large
//   - *workflows.RateLimitError → 503 github_rate_limited with Retry-After
//   - *workflows.TransientError → 502 github_unavailable
//   - *workflows.InvalidError → 502 github_refused, with GitHub's message
//   - workflows.ErrNotFound → 502 github_not_found
//   - anything else → 500 internal, logged with the request id.
//
// It aborts the request. If the response has already started (a stream),
// it logs the error and aborts the connection instead.
func (s *Server) renderError(c *gin.Context, err error) {
	e := s.classify(c, err)
	if c.Writer.Written() {
		s.logFor(c).ErrorContext(c.Request.Context(), "error after the response started", "err", err)
		panic(http.ErrAbortHandler)
	}
	c.AbortWithStatusJSON(e.Status, errorBody{
		Error:     errorDetail{Code: e.Code, Message: e.Message, Field: e.Field},
		RequestID: requestIDOf(c),
	})
}

func (s *Server) classify(c *gin.Context, err error) *apiError {
	var (
		ae       *apiError
		fe       *models.FieldError
		se       *models.StateError
		rle      *models.RateLimitedError
		mbe      *http.MaxBytesError
		ghLimit  *workflows.RateLimitError
		ghTrans  *workflows.TransientError
		ghRefuse *workflows.InvalidError
		sup      *workflows.SupersededError
	)
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &sup):
		return &apiError{http.StatusGone, codeSuperseded, sup.Error(), ""}
	case errors.As(err, &fe):
		return &apiError{http.StatusBadRequest, codeInvalidRequest, fe.Message, fe.Field}
	case errors.Is(err, models.ErrInvalid):
		return &apiError{http.StatusBadRequest, codeInvalidRequest, err.Error(), ""}
	case errors.Is(err, models.ErrNotFound):
		return &apiError{http.StatusNotFound, codeNotFound,
			fmt.Sprintf("%s does not exist or is not visible to this API key", clip(c.Request.URL.Path)), ""}
	case errors.As(err, &se):
		return &apiError{http.StatusConflict, se.Code, se.Message, ""}
	case errors.Is(err, models.ErrConflict):
		return &apiError{http.StatusConflict, codeConflict, err.Error(), ""}
	case errors.As(err, &rle):
		setRetryAfter(c, rle.RetryAfter)
		return &apiError{http.StatusTooManyRequests, codeRateLimited, rle.Message, ""}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &apiError{http.StatusRequestTimeout, codeRequestTimeout,
			"the request body did not arrive in time; send it at once, at a steady pace", ""}
	case errors.As(err, &mbe):
		return &apiError{http.StatusRequestEntityTooLarge, codeTooLarge,
			fmt.Sprintf("request body larger than %d bytes", mbe.Limit), ""}
	case errors.As(err, &ghLimit):
		setRetryAfter(c, time.Until(ghLimit.Until))
		return &apiError{http.StatusServiceUnavailable, codeGitHubRateLimit, ghLimit.Error(), ""}
	case errors.As(err, &ghTrans):
		return &apiError{http.StatusBadGateway, codeGitHubFailed, ghTrans.Error(), ""}
	case errors.As(err, &ghRefuse):
		return &apiError{http.StatusBadGateway, codeGitHubRefused, ghRefuse.Error(), ""}
	case errors.Is(err, workflows.ErrNotFound):
		return &apiError{http.StatusBadGateway, codeGitHubNotFound, "GitHub no longer has what this request needs: " + err.Error(), ""}
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		s.logFor(c).WarnContext(c.Request.Context(), "request cancelled or timed out", "err", err)
		return &apiError{http.StatusServiceUnavailable, codeUnavailable, "the request was cancelled or timed out; try again", ""}
	}
	s.logFor(c).ErrorContext(c.Request.Context(), "internal error", "err", err)
	return &apiError{http.StatusInternalServerError, codeInternal,
		"internal server error; quote request id " + requestIDOf(c) + " when reporting it", ""}
}

func setRetryAfter(c *gin.Context, d time.Duration) {
	secs := int(math.Ceil(d.Seconds()))
	if secs < 1 {
		secs = 1
	}
	c.Header("Retry-After", strconv.Itoa(secs))
}

// invalid returns a *models.FieldError for the HTTP layer's own checks.
func invalid(field, format string, args ...any) error {
	return models.Invalid(field, format, args...)
}

func (s *Server) noRoute(c *gin.Context) {
	s.renderError(c, &apiError{http.StatusNotFound, codeNotFound,
		fmt.Sprintf("no endpoint %s %s", c.Request.Method, clip(c.Request.URL.Path)), ""})
}

func (s *Server) noMethod(c *gin.Context) {
	s.renderError(c, &apiError{http.StatusMethodNotAllowed, codeMethodNotAllowed,
		fmt.Sprintf("%s is not allowed on %s", c.Request.Method, clip(c.Request.URL.Path)), ""})
}
