package github

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

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

// webhookRun is the part of a workflow_run payload's "workflow_run" that
// the engine uses. Field types are go-github's (timestamps as
// gh.Timestamp: RFC 3339 strings or Unix seconds, null for none), so a
// payload go-github rejects for these fields is rejected here too.
type webhookRun struct {
	ID           int64         `json:"id"`
	DisplayTitle string        `json:"display_title"`
	Event        string        `json:"event"`
	Status       string        `json:"status"`
	Conclusion   string        `json:"conclusion"`
	RunAttempt   int           `json:"run_attempt"`
	HTMLURL      string        `json:"html_url"`
	CreatedAt    *gh.Timestamp `json:"created_at"`
	UpdatedAt    *gh.Timestamp `json:"updated_at"`
	Repository   *struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
}

// webhookStep is one entry of a workflow_job payload's steps.
type webhookStep struct {
	Number      int64         `json:"number"`
	Name        string        `json:"name"`
	Status      string        `json:"status"`
	Conclusion  string        `json:"conclusion"`
	StartedAt   *gh.Timestamp `json:"started_at"`
	CompletedAt *gh.Timestamp `json:"completed_at"`
}

// webhookJob is the part of a workflow_job payload's "workflow_job" that
// the engine uses.
type webhookJob struct {
	ID          int64          `json:"id"`
	RunID       int64          `json:"run_id"`
	Name        string         `json:"name"`
	Status      string         `json:"status"`
	Conclusion  string         `json:"conclusion"`
	RunnerName  string         `json:"runner_name"`
	Labels      []string       `json:"labels"`
	StartedAt   *gh.Timestamp  `json:"started_at"`
	CompletedAt *gh.Timestamp  `json:"completed_at"`
	Steps       []*webhookStep `json:"steps"`
}

// timeOf is t in UTC; the zero time when t is nil (absent or null).
func timeOf(t *gh.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time.UTC()
}

// noNUL replaces NUL characters (JSON "\u0000") with U+FFFD: the parsed
// event is stored as a River job's arguments, and PostgreSQL's jsonb
// refuses NUL (SQLSTATE 22P05). encoding/json already replaces invalid
// UTF-8 the same way.
func noNUL(s string) string {
	if strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// ParseWebhook turns a delivery's JSON payload into a
// workflows.WebhookEvent. eventType is the X-GitHub-Event header.
// workflow_run sets Run and workflow_job sets Job; ping and every other
// event only set Event, Action and Repo (Repo is "" when the payload names
// no repository, e.g. an organisation hook's ping). Values are passed on as
// GitHub sent them (a workflow_run "completed" delivery may still say
// status "queued"), except that NUL characters become U+FFFD (noNUL). It
// fails on a payload that is not a JSON object or whose run or job is
// missing, and never panics.
//
// The payload is decoded once, with encoding/json, into small local structs
// holding only the fields the engine uses (with go-github's field types and
// timestamp format), not through go-github's ParseWebHook: that decoded
// every delivery a second time, in full, into go-github's event structs,
// and was the receiver's largest CPU cost. The result is the same for every
// real payload in testdata/webhooks (TestParseWebhookFixtures); a payload
// whose unused fields have the wrong JSON types is no longer refused.
func ParseWebhook(eventType string, payload []byte) (workflows.WebhookEvent, error) {
	if eventType == "" {
		return workflows.WebhookEvent{}, fmt.Errorf("parse webhook: no %s", HeaderEvent)
	}
	var (
		common *webhookCommon
		target any
		run    struct {
			webhookCommon
			WorkflowRun *webhookRun `json:"workflow_run"`
		}
		job struct {
			webhookCommon
			WorkflowJob *webhookJob `json:"workflow_job"`
		}
		other webhookCommon
	)
	switch eventType {
	case "workflow_run":
		common, target = &run.webhookCommon, &run
	case "workflow_job":
		common, target = &job.webhookCommon, &job
	default:
		common, target = &other, &other
	}
	if err := json.Unmarshal(payload, target); err != nil {
		return workflows.WebhookEvent{}, fmt.Errorf("parse %s webhook: %w", eventType, err)
	}
	event := workflows.WebhookEvent{Event: eventType, Action: noNUL(common.Action)}
	if common.Repository != nil {
		event.Repo = noNUL(common.Repository.FullName)
	}

	switch eventType {
	case "workflow_run":
		r := run.WorkflowRun
		if r == nil {
			return workflows.WebhookEvent{}, fmt.Errorf("parse %s webhook: no workflow_run", eventType)
		}
		parsed := workflows.Run{
			ID:           r.ID,
			Repo:         event.Repo,
			DisplayTitle: noNUL(r.DisplayTitle),
			Event:        noNUL(r.Event),
			Status:       noNUL(r.Status),
			Conclusion:   noNUL(r.Conclusion),
			RunAttempt:   r.RunAttempt,
			HTMLURL:      noNUL(r.HTMLURL),
			CreatedAt:    timeOf(r.CreatedAt),
			UpdatedAt:    timeOf(r.UpdatedAt),
		}
		// The run's own repository wins over the payload's.
		if r.Repository != nil && r.Repository.FullName != "" {
			parsed.Repo = noNUL(r.Repository.FullName)
		}
		if event.Repo == "" {
			event.Repo = parsed.Repo
		}
		event.Run = &parsed
	case "workflow_job":
		j := job.WorkflowJob
		if j == nil {
			return workflows.WebhookEvent{}, fmt.Errorf("parse %s webhook: no workflow_job", eventType)
		}
		parsed := workflows.Job{
			ID:          j.ID,
			RunID:       j.RunID,
			Name:        noNUL(j.Name),
			Status:      noNUL(j.Status),
			Conclusion:  noNUL(j.Conclusion),
			RunnerName:  noNUL(j.RunnerName),
			StartedAt:   timeOf(j.StartedAt),
			CompletedAt: timeOf(j.CompletedAt),
		}
		if len(j.Labels) > 0 {
			parsed.Labels = make([]string, len(j.Labels))
			for i, l := range j.Labels {
				parsed.Labels[i] = noNUL(l)
			}
		}
		for _, s := range j.Steps {
			if s == nil {
				continue
			}
			if parsed.Steps == nil {
				parsed.Steps = make([]workflows.Step, 0, len(j.Steps))
			}
			parsed.Steps = append(parsed.Steps, workflows.Step{
				Number:      int(s.Number),
				Name:        noNUL(s.Name),
				Status:      noNUL(s.Status),
				Conclusion:  noNUL(s.Conclusion),
				StartedAt:   timeOf(s.StartedAt),
				CompletedAt: timeOf(s.CompletedAt),
			})
		}
		event.Job = &parsed
	}
	return event, nil
}
