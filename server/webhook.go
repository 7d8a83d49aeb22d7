package server

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"sync"

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

// webhookBodies recycles request body buffers: the body is only read while
// the handler runs (the parsed event copies what it keeps), so a buffer
// goes back to the pool when the handler returns.
var webhookBodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledWebhookBody is the largest buffer kept for reuse; a rare huge
// delivery's buffer is left to the garbage collector.
const maxPooledWebhookBody = 256 << 10

func putWebhookBody(b *bytes.Buffer) {
	if b.Cap() > maxPooledWebhookBody {
		return
	}
	b.Reset()
	webhookBodies.Put(b)
}

// receiveWebhook is POST /webhooks/github. It verifies X-Hub-Signature-256
// (401 when unsigned or wrong), parses the payload, and for workflow_run
// and workflow_job stores the delivery and enqueues its processing in one
// transaction (202); a delivery id seen before answers 200 and changes
// nothing; ping answers 200; other events 202 without effect. It calls no
// GitHub API, so it answers within milliseconds. Without a secret the
// endpoint is off (404), except in demo mode, where deliveries are accepted
// unsigned.
func (s *Server) receiveWebhook(c *gin.Context) {
	if len(s.webhookSecret) == 0 && !s.demo {
		s.renderError(c, &apiError{http.StatusNotFound, codeNotFound,
			"the GitHub webhook endpoint is off: set DESKFORGE_GITHUB_WEBHOOK_SECRET to the secret of the repository's webhook", ""})
		return
	}
	if c.Request.ContentLength > MaxWebhookBytes {
		s.renderError(c, &http.MaxBytesError{Limit: MaxWebhookBytes})
		return
	}
	buf := webhookBodies.Get().(*bytes.Buffer)
	defer putWebhookBody(buf)
	if n := c.Request.ContentLength; n > 0 && n <= maxPooledWebhookBody {
		// Room for the body and the final read that sees EOF: one
		// allocation at most, none when a pooled buffer is big enough.
		// A larger declared length is not trusted with memory up front
		// (the signature is not checked yet): that body grows as it
		// arrives.
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(c.Writer, c.Request.Body, MaxWebhookBytes))
	body := buf.Bytes()
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.renderError(c, err)
			return
		}
		s.renderError(c, &apiError{http.StatusBadRequest, codeInvalidRequest, "could not read the webhook body: " + err.Error(), ""})
		return
	}
	if len(s.webhookSecret) > 0 {
		if err := forge.ValidateWebhook(c.GetHeader(forge.HeaderSignature256), body, s.webhookSecret); err != nil {
			s.renderError(c, &apiError{http.StatusUnauthorized, codeUnauthorized,
				"X-Hub-Signature-256 is missing or does not match the body under the configured webhook secret", ""})
			return
		}
	}
	delivery := workflows.Delivery{
		ID:     c.GetHeader(deliveryHeader),
		Event:  c.GetHeader(eventHeader),
		HookID: c.GetHeader(hookIDHeader),
	}
	ev, err := parseDelivery(delivery, body)
	if err != nil {
		s.renderError(c, err)
		return
	}
	answer := webhookResponse{Delivery: delivery.ID, Event: delivery.Event}
	switch delivery.Event {
	case "ping":
		answer.Result = "pong"
		c.JSON(http.StatusOK, answer)
		return
	case "workflow_run", "workflow_job":
	default:
		answer.Result = "ignored"
		c.JSON(http.StatusAccepted, answer)
		return
	}
	fresh, err := s.engine.RecordWebhook(c.Request.Context(), delivery, &ev)
	if err != nil {
		s.renderError(c, err)
		return
	}
	if !fresh {
		answer.Result = "duplicate"
		c.JSON(http.StatusOK, answer)
		return
	}
	answer.Result = "accepted"
	c.JSON(http.StatusAccepted, answer)
}

// parseDelivery checks a delivery's headers and parses its payload; the
// error is a 400 for the API.
func parseDelivery(d workflows.Delivery, body []byte) (workflows.WebhookEvent, error) {
	switch {
	case d.Event == "":
		return workflows.WebhookEvent{}, invalid(eventHeader, "the %s header is required", eventHeader)
	case d.ID == "":
		return workflows.WebhookEvent{}, invalid(deliveryHeader, "the %s header is required", deliveryHeader)
	case len(d.ID) > 64:
		return workflows.WebhookEvent{}, invalid(deliveryHeader, "the %s header must be at most 64 characters", deliveryHeader)
	}
	ev, err := forge.ParseWebhook(d.Event, body)
	if err != nil {
		return workflows.WebhookEvent{}, invalid("body", "%s", fmt.Sprintf("the %s payload is not valid: %v", d.Event, err))
	}
	return ev, nil
}
