package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/deskforge/deskforge/workflows"
	forge "github.com/deskforge/deskforge/workflows/github"
)

// MaxWebhookBytes is the largest webhook payload accepted: GitHub caps
// deliveries at 25 MB.
const MaxWebhookBytes = 25 << 20

// Webhook headers, as GitHub spells them (in error messages and fields).
const (
	eventHeader    = "X-GitHub-Event"
	deliveryHeader = "X-GitHub-Delivery"
	hookIDHeader   = "X-GitHub-Hook-ID"
)

// webhookResponse is the body of a webhook answer.
type webhookResponse struct {
	Delivery string `json:"delivery"`
	Event    string `json:"event"`
	// Result is "accepted" (stored, applied shortly), "duplicate" (seen
	// before: no effect), "ignored" (an event the engine does not use) or
	// "pong".
	Result string `json:"result"`
}

// receiveWebhook is POST /webhooks/github. It verifies X-Hub-Signature-256
// (401 when unsigned or wrong), parses the payload, and for workflow_run
// and workflow_job stores the delivery and enqueues its processing in one
// transaction (202); a delivery id seen before answers 200 and changes
// nothing; ping answers 200; other events 202 without effect. It calls no
// GitHub API, so it answers within milliseconds. Without a secret the
// endpoint is off (404), except in demo mode, where deliveries are accepted
// unsigned.
//
// The endpoint needs no API key, so it spends nothing on a request before
// its headers pass: a missing or malformed signature or delivery header is
// refused before the body is read. The body is then read whole (go-github's
// ValidateSignature needs it), which costs memory only within a budget
// shared by all deliveries (Options.WebhookBytesInFlight: 503 past it) and
// time only within Options.WebhookReadTimeout (408, connection closed).
func (s *Server) receiveWebhook(c *gin.Context) {
	result := s.handleWebhook(c)
	if s.webhooks == nil {
		return
	}
	if result == "" {
		result = "rejected"
		if c.Writer.Status() >= http.StatusInternalServerError {
			result = "error"
		}
	}
	event := c.GetHeader(eventHeader)
	switch event {
	case "ping", "workflow_run", "workflow_job":
	default:
		event = "other" // the header is the sender's: bound the label's values
	}
	s.webhooks.WebhookReceived(event, result)
}

// handleWebhook answers one delivery and returns its result ("accepted",
// "duplicate", "ignored", "pong"), or "" when it was refused.
func (s *Server) handleWebhook(c *gin.Context) string {
	if len(s.webhookSecret) == 0 && !s.demo {
		s.renderError(c, &apiError{http.StatusNotFound, codeNotFound,
			"the GitHub webhook endpoint is off: set DESKFORGE_GITHUB_WEBHOOK_SECRET to the secret of the repository's webhook", ""})
		return ""
	}
	signature := c.GetHeader(forge.HeaderSignature256)
	if len(s.webhookSecret) > 0 && !signatureRe.MatchString(signature) {
		s.renderError(c, &apiError{http.StatusUnauthorized, codeUnauthorized,
			"X-Hub-Signature-256 is missing or malformed: GitHub sends sha256=<64 hex digits> when the webhook has a secret", ""})
		return ""
	}
	delivery := workflows.Delivery{
		ID:     c.GetHeader(deliveryHeader),
		Event:  c.GetHeader(eventHeader),
		HookID: c.GetHeader(hookIDHeader),
	}
	if err := checkDeliveryHeaders(delivery); err != nil {
		s.renderError(c, err)
		return ""
	}
	body, release, err := s.readWebhookBody(c)
	if err != nil {
		s.renderError(c, err)
		return ""
	}
	defer release()
	if len(s.webhookSecret) > 0 {
		if err := forge.ValidateWebhook(signature, body, s.webhookSecret); err != nil {
			s.renderError(c, &apiError{http.StatusUnauthorized, codeUnauthorized,
				"X-Hub-Signature-256 does not match the body under the configured webhook secret", ""})
			return ""
		}
	}
	ev, err := s.parseDelivery(delivery, body)
	if err != nil {
		s.renderError(c, err)
		return ""
	}
	answer := webhookResponse{Delivery: delivery.ID, Event: delivery.Event}
	switch delivery.Event {
	case "ping":
		answer.Result = "pong"
		c.JSON(http.StatusOK, answer)
		return answer.Result
	case "workflow_run", "workflow_job":
	default:
		answer.Result = "ignored"
		c.JSON(http.StatusAccepted, answer)
		return answer.Result
	}
	fresh, err := s.engine.RecordWebhook(c.Request.Context(), delivery, &ev)
	if err != nil {
		s.renderError(c, err)
		return ""
	}
	if !fresh {
		answer.Result = "duplicate"
		c.JSON(http.StatusOK, answer)
		return answer.Result
	}
	answer.Result = "accepted"
	c.JSON(http.StatusAccepted, answer)
	return answer.Result
}

// signatureRe is the shape of X-Hub-Signature-256, checked before the body
// is read; go-github's ValidateSignature then checks its value.
var signatureRe = regexp.MustCompile(`^sha256=[0-9a-fA-F]{64}$`)

// webhookBusyRetry is the Retry-After of a delivery refused because too
// many webhook bytes are in flight.
const webhookBusyRetry = 5 * time.Second

// readWebhookBody reads a delivery's body within the in-flight budget and
// the webhook's read timeout. It reserves the declared Content-Length (the
// largest allowed body when none is declared) before reading, holds the
// body in one allocation of that size, and returns release, which gives the
// reservation back once the handler is done with the body.
func (s *Server) readWebhookBody(c *gin.Context) ([]byte, func(), error) {
	n := c.Request.ContentLength
	if n > MaxWebhookBytes {
		return nil, nil, &http.MaxBytesError{Limit: MaxWebhookBytes}
	}
	reserve := n
	if n < 0 {
		reserve = MaxWebhookBytes
	}
	if !s.webhookBytes.TryAcquire(reserve) {
		setRetryAfter(c, webhookBusyRetry)
		return nil, nil, &apiError{http.StatusServiceUnavailable, codeUnavailable,
			"too many webhook bytes are being received at once; redeliver in a few seconds", ""}
	}
	release := func() { s.webhookBytes.Release(reserve) }
	s.setBodyDeadline(c, s.webhookReadTimeout)
	var (
		body []byte
		err  error
	)
	if n >= 0 {
		body = make([]byte, n)
		_, err = io.ReadFull(c.Request.Body, body)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("the body ended before its Content-Length: %w", err)
		}
	} else {
		body, err = io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxWebhookBytes))
	}
	if err != nil {
		release()
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) || errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, nil, err
		}
		return nil, nil, invalid("body", "could not read the webhook body: %v", err)
	}
	return body, release, nil
}

// checkDeliveryHeaders checks a delivery's headers before its body is
// read: present, printable ASCII and within their column sizes.
func checkDeliveryHeaders(d workflows.Delivery) error {
	for _, h := range []struct {
		name, value string
		max         int
		required    bool
	}{
		{eventHeader, d.Event, 64, true},
		{deliveryHeader, d.ID, 64, true},
		{hookIDHeader, d.HookID, 32, false},
	} {
		switch {
		case h.value == "" && h.required:
			return invalid(h.name, "the %s header is required", h.name)
		case len(h.value) > h.max:
			return invalid(h.name, "the %s header must be at most %d characters", h.name, h.max)
		case !isPrintableASCII(h.value):
			return invalid(h.name, "the %s header must be printable ASCII", h.name)
		}
	}
	return nil
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// parseDelivery parses a delivery's payload; the error is a 400 for the
// API.
func (s *Server) parseDelivery(d workflows.Delivery, body []byte) (workflows.WebhookEvent, error) {
	ev, err := s.parseWebhook(d.Event, body)
	if err != nil {
		return workflows.WebhookEvent{}, invalid("body", "%s", fmt.Sprintf("the %s payload is not valid: %v", d.Event, err))
	}
	return ev, nil
}
