package github

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	gh "github.com/google/go-github/v62/github"

	"github.com/deskforge/deskforge/workflows"
)

// Webhook header names, as GitHub sends them.
const (
	HeaderEvent        = gh.EventTypeHeader       // X-GitHub-Event
	HeaderDelivery     = gh.DeliveryIDHeader      // X-GitHub-Delivery
	HeaderSignature256 = gh.SHA256SignatureHeader // X-Hub-Signature-256
)

// ErrBadSignature means a webhook delivery is unsigned or its
// X-Hub-Signature-256 does not match the body under the secret.
var ErrBadSignature = errors.New("webhook signature missing or invalid")

// ValidateWebhook checks a delivery's X-Hub-Signature-256 header
// ("sha256=<hex HMAC-SHA256 of the raw body>") with go-github's validation.
// It returns an error wrapping ErrBadSignature when the signature is
// missing, not SHA-256, malformed or wrong. An empty secret is refused:
// anyone can compute an HMAC with an empty key.
func ValidateWebhook(signature256 string, body, secret []byte) error {
	if len(secret) == 0 {
		return errors.New("validate webhook: no secret configured")
	}
	if signature256 == "" {
		return fmt.Errorf("validate webhook: %w: no %s header", ErrBadSignature, HeaderSignature256)
	}
	if !strings.HasPrefix(signature256, "sha256=") {
		return fmt.Errorf("validate webhook: %w: not a sha256= signature", ErrBadSignature)
	}
	if err := gh.ValidateSignature(signature256, body, secret); err != nil {
		return fmt.Errorf("validate webhook: %w: %v", ErrBadSignature, err)
	}
	return nil
}

// webhookCommon is what every event payload may carry.
type webhookCommon struct {
	Action     string `json:"action"`
	Repository *struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
}

// ParseWebhook turns a delivery's JSON payload into a
// workflows.WebhookEvent. eventType is the X-GitHub-Event header.
// workflow_run sets Run and workflow_job sets Job (parsed with go-github's
// ParseWebHook); ping and every other event only set Event, Action and Repo
// (Repo is "" when the payload names no repository, e.g. an organisation
// hook's ping). Values are passed on as GitHub sent them (a workflow_run
// "completed" delivery may still say status "queued"). It fails on a
// payload that is not a JSON object or whose run or job is missing, and
// never panics.
func ParseWebhook(eventType string, payload []byte) (workflows.WebhookEvent, error) {
	if eventType == "" {
		return workflows.WebhookEvent{}, fmt.Errorf("parse webhook: no %s", HeaderEvent)
	}
	var common webhookCommon
	if err := json.Unmarshal(payload, &common); err != nil {
		return workflows.WebhookEvent{}, fmt.Errorf("parse %s webhook: %w", eventType, err)
	}
	event := workflows.WebhookEvent{Event: eventType, Action: common.Action}
	if common.Repository != nil {
		event.Repo = common.Repository.FullName
	}

	switch eventType {
	case "workflow_run", "workflow_job", "ping":
	default:
		return event, nil
	}
	parsed, err := gh.ParseWebHook(eventType, payload)
	if err != nil {
		return workflows.WebhookEvent{}, fmt.Errorf("parse %s webhook: %w", eventType, err)
	}
	switch e := parsed.(type) {
	case *gh.WorkflowRunEvent:
		if e.WorkflowRun == nil {
			return workflows.WebhookEvent{}, fmt.Errorf("parse %s webhook: no workflow_run", eventType)
		}
		run := runFromGitHub(e.WorkflowRun, event.Repo)
		if event.Repo == "" {
			event.Repo = run.Repo
		}
		event.Run = &run
	case *gh.WorkflowJobEvent:
		if e.WorkflowJob == nil {
			return workflows.WebhookEvent{}, fmt.Errorf("parse %s webhook: no workflow_job", eventType)
		}
		job := jobFromGitHub(e.WorkflowJob)
		event.Job = &job
	case *gh.PingEvent:
	}
	return event, nil
}
