package models

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Outbound webhook rules.
const (
	// WebhookSecretPrefix starts every signing secret (Standard Webhooks).
	WebhookSecretPrefix = "whsec_"
	// WebhookSecretOverlap is how long a rotated-out secret keeps signing
	// beside the new one.
	WebhookSecretOverlap = 24 * time.Hour
	// WebhookFailureWindow: an endpoint whose every attempt failed for
	// this long is disabled.
	WebhookFailureWindow = 72 * time.Hour
	// MaxStoredResponse is how much of a response body a delivery keeps.
	MaxStoredResponse = 64 << 10
)

// NewWebhookSecret returns a random signing secret: whsec_ and the base64
// of 32 random bytes.
func NewWebhookSecret() string {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return WebhookSecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// eventPatterns are the subscriptions an endpoint may name besides the
// event types: every event, or every event of a group.
var eventPatterns = []string{"*", "build.*", "project.*"}

// JoinEvents validates subscriptions (each one of EventTypes or
// eventPatterns, at least one) and returns them comma-separated, without
// duplicates, as stored in Webhook.Events.
func JoinEvents(events []string) (string, error) {
	allowed := append(slices.Clone(EventTypes), eventPatterns...)
	if len(events) == 0 {
		return "", Invalid("events", "events must list at least one of %s", strings.Join(allowed, ", "))
	}
	var out []string
	for _, e := range events {
		if !slices.Contains(allowed, e) {
			return "", Invalid("events", "events must be taken from %s; %q is not", strings.Join(allowed, ", "), e)
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return strings.Join(out, ","), nil
}

// CheckWebhookURL checks that raw is an absolute http or https URL. Where it
// may point (no private addresses) is checked when connecting.
func CheckWebhookURL(raw string) error {
	if len(raw) > 2048 {
		return Invalid("url", "url must be at most 2048 characters")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return Invalid("url", "url must be an absolute http or https URL, e.g. https://hooks.example.com/deskforge")
	}
	if u.User != nil {
		return Invalid("url", "url must not contain credentials; authenticate deliveries by their signature")
	}
	return nil
}

func checkDescription(d string) error { return checkText("description", d, 500) }

// NewWebhookParams describes a webhook endpoint to create.
type NewWebhookParams struct {
	URL         string
	Events      []string
	ProjectID   string // "" = every project's events
	Description string
}

// CreateWebhook validates p and stores an enabled endpoint with a new
// secret. An unknown project is a *FieldError on projectId.
func (s *Store) CreateWebhook(ctx context.Context, p NewWebhookParams) (Webhook, error) {
	if err := CheckWebhookURL(p.URL); err != nil {
		return Webhook{}, err
	}
	events, err := JoinEvents(p.Events)
	if err != nil {
		return Webhook{}, err
	}
	if err := checkDescription(p.Description); err != nil {
		return Webhook{}, err
	}
	now := time.Now().UTC()
	w := Webhook{ID: NewID("wh"), URL: p.URL, Events: events, Description: p.Description, Enabled: true,
		Secret: NewWebhookSecret(), CreatedAt: now, UpdatedAt: now}
	if p.ProjectID != "" {
		ok, err := s.ProjectExists(ctx, p.ProjectID)
		if err != nil {
			return Webhook{}, err
		}
		if !ok {
			return Webhook{}, Invalid("projectId", "project %s does not exist", p.ProjectID)
		}
		w.ProjectID = &p.ProjectID
	}
	return w, translate(s.Gorm(ctx).Create(&w).Error, "create webhook")
}

// GetWebhook reads one endpoint; ErrNotFound when it does not exist.
func (s *Store) GetWebhook(ctx context.Context, id string) (Webhook, error) {
	var w Webhook
	err := s.Gorm(ctx).Where("id = ?", id).Take(&w).Error
	return w, translate(err, "get webhook "+id)
}

// WebhookFilter selects endpoints for ListWebhooks.
type WebhookFilter struct {
	// ProjectID restricts the list to one project's endpoints (a project
	// key's view); "" = all.
	ProjectID string
	Limit     int
	// Cursor is the id of the last endpoint of the previous page.
	Cursor string
}

// ListWebhooks returns a page of endpoints, newest first, the cursor of the
// next page ("" on the last) and the total f selects.
func (s *Store) ListWebhooks(ctx context.Context, f WebhookFilter) ([]Webhook, string, int64, error) {
	if f.Limit < 1 {
		return nil, "", 0, fmt.Errorf("list webhooks: limit %d: %w", f.Limit, ErrInvalid)
	}
	q := s.Gorm(ctx).Model(&Webhook{})
	if f.ProjectID != "" {
		q = q.Where("project_id = ?", f.ProjectID)
	}
	var total int64
	if err := q.Count(&total).Error; err != nil {
		return nil, "", 0, fmt.Errorf("count webhooks: %w", err)
	}
	if f.Cursor != "" {
		q = q.Where("id < ?", f.Cursor)
	}
	var ws []Webhook
	if err := q.Order("id DESC").Limit(f.Limit + 1).Find(&ws).Error; err != nil {
		return nil, "", 0, fmt.Errorf("list webhooks: %w", err)
	}
	next := ""
	if len(ws) > f.Limit {
		ws = ws[:f.Limit]
		next = ws[len(ws)-1].ID
	}
	return ws, next, total, nil
}

// WebhookChange is a partial update of an endpoint; nil fields are kept.
type WebhookChange struct {
	URL         *string
	Events      *[]string
	Description *string
	// Enabled true re-enables an endpoint DeskForge disabled, clearing its
	// reason and failure streak.
	Enabled *bool
}

// UpdateWebhook applies ch to endpoint id.
func (s *Store) UpdateWebhook(ctx context.Context, id string, ch WebhookChange) (Webhook, error) {
	fields := map[string]any{}
	if ch.URL != nil {
		if err := CheckWebhookURL(*ch.URL); err != nil {
			return Webhook{}, err
		}
		fields["url"] = *ch.URL
	}
	if ch.Events != nil {
		events, err := JoinEvents(*ch.Events)
		if err != nil {
			return Webhook{}, err
		}
		fields["events"] = events
	}
	if ch.Description != nil {
		if err := checkDescription(*ch.Description); err != nil {
			return Webhook{}, err
		}
		fields["description"] = *ch.Description
	}
	if ch.Enabled != nil {
		fields["enabled"] = *ch.Enabled
		fields["disabled_reason"] = ""
		if *ch.Enabled {
			fields["failing_since"] = nil
		}
	}
	return s.updateWebhook(ctx, id, fields)
}

func (s *Store) updateWebhook(ctx context.Context, id string, fields map[string]any) (Webhook, error) {
	fields["updated_at"] = time.Now().UTC()
	res := s.Gorm(ctx).Model(&Webhook{}).Where("id = ?", id).Updates(fields)
	if res.Error != nil {
		return Webhook{}, fmt.Errorf("update webhook %s: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return Webhook{}, fmt.Errorf("update webhook %s: %w", id, ErrNotFound)
	}
	return s.GetWebhook(ctx, id)
}

// RotateWebhookSecret gives endpoint id a new secret; the old one keeps
// signing beside it (both signatures in webhook-signature) for
// WebhookSecretOverlap after now.
func (s *Store) RotateWebhookSecret(ctx context.Context, id string, now time.Time) (Webhook, error) {
	w, err := s.GetWebhook(ctx, id)
	if err != nil {
		return Webhook{}, err
	}
	until := now.Add(WebhookSecretOverlap).UTC()
	return s.updateWebhook(ctx, id, map[string]any{
		"secret": NewWebhookSecret(), "previous_secret": w.Secret, "previous_secret_until": until,
	})
}

// Secrets returns the secrets that sign a delivery sent at now: the current
// one, and the previous one during its overlap.
func (w Webhook) Secrets(now time.Time) []string {
	secrets := []string{w.Secret}
	if w.PreviousSecret != "" && w.PreviousSecretUntil != nil && now.Before(*w.PreviousSecretUntil) {
		secrets = append(secrets, w.PreviousSecret)
	}
	return secrets
}

// DeleteWebhook deletes an endpoint and its deliveries; their pending jobs
// then end without sending.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	return s.Tx(ctx, func(tx *gorm.DB) error {
		res := tx.Where("id = ?", id).Delete(&Webhook{})
		if res.Error != nil {
			return fmt.Errorf("delete webhook %s: %w", id, res.Error)
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("delete webhook %s: %w", id, ErrNotFound)
		}
		if err := tx.Where("webhook_id = ?", id).Delete(&EventDelivery{}).Error; err != nil {
			return fmt.Errorf("delete webhook %s: its deliveries: %w", id, err)
		}
		return nil
	})
}

// PingWebhook records a ping event (type EventPing, data: the endpoint's
// id) and delivers it to endpoint id only. A disabled endpoint is a
// *StateError "webhook_disabled".
func (s *Store) PingWebhook(ctx context.Context, id string) (EventDelivery, error) {
	var d EventDelivery
	err := s.Tx(ctx, func(tx *gorm.DB) error {
		w, err := enabledWebhookTx(tx, id)
		if err != nil {
			return err
		}
		ev, err := RecordEventTx(ctx, tx, NewEvent{Type: EventPing, ResourceKind: ResourceWebhook, ResourceID: w.ID,
			Data: map[string]string{"id": w.ID}})
		if err != nil {
			return err
		}
		d = newDelivery(w.ID, ev, ev.CreatedAt)
		return s.db.outbox.insertDeliveriesTx(ctx, tx, []EventDelivery{d})
	})
	return d, err
}

func enabledWebhookTx(tx *gorm.DB, id string) (Webhook, error) {
	var w Webhook
	if err := tx.Where("id = ?", id).Take(&w).Error; err != nil {
		return w, translate(err, "webhook "+id)
	}
	if !w.Enabled {
		return w, Conflict("webhook_disabled", "webhook %s is disabled; enable it first (PATCH {\"enabled\": true})", id)
	}
	return w, nil
}

// DeliveryFilter selects a page of an endpoint's deliveries, newest first.
type DeliveryFilter struct {
	WebhookID string
	Limit     int
	Cursor    string // id of the last delivery of the previous page
}

// ListDeliveries returns a page of an endpoint's deliveries by keyset, and
// the cursor of the next page ("" on the last).
func (s *Store) ListDeliveries(ctx context.Context, f DeliveryFilter) ([]EventDelivery, string, error) {
	if f.Limit < 1 {
		return nil, "", fmt.Errorf("list deliveries: limit %d: %w", f.Limit, ErrInvalid)
	}
	q := s.Gorm(ctx).Where("webhook_id = ?", f.WebhookID)
	if f.Cursor != "" {
		q = q.Where("id < ?", f.Cursor)
	}
	var ds []EventDelivery
	if err := q.Order("id DESC").Limit(f.Limit + 1).Find(&ds).Error; err != nil {
		return nil, "", fmt.Errorf("list deliveries of %s: %w", f.WebhookID, err)
	}
	next := ""
	if len(ds) > f.Limit {
		ds = ds[:f.Limit]
		next = ds[len(ds)-1].ID
	}
	return ds, next, nil
}

// Redeliver sends delivery deliveryID of endpoint webhookID again (same
// event, same webhook-id), with a fresh retry schedule. A disabled endpoint
// is a *StateError "webhook_disabled".
func (s *Store) Redeliver(ctx context.Context, webhookID, deliveryID string) (EventDelivery, error) {
	var d EventDelivery
	err := s.Tx(ctx, func(tx *gorm.DB) error {
		if _, err := enabledWebhookTx(tx, webhookID); err != nil {
			return err
		}
		if err := tx.Where("id = ? AND webhook_id = ?", deliveryID, webhookID).Take(&d).Error; err != nil {
			return translate(err, "delivery "+deliveryID)
		}
		now := time.Now().UTC()
		d.Status, d.NextAttemptAt = DeliveryPending, &now
		if err := tx.Model(&EventDelivery{}).Where("id = ?", d.ID).
			Updates(map[string]any{"status": d.Status, "next_attempt_at": now}).Error; err != nil {
			return fmt.Errorf("redeliver %s: %w", deliveryID, err)
		}
		return s.db.outbox.insertDeliveryJobsTx(ctx, tx, []EventDelivery{d})
	})
	return d, err
}

// LoadDelivery reads a delivery with its endpoint and event, for sending it.
// ErrNotFound when any of them is gone (the endpoint was deleted).
func (s *Store) LoadDelivery(ctx context.Context, id string) (EventDelivery, Webhook, Event, error) {
	var (
		d  EventDelivery
		w  Webhook
		ev Event
	)
	if err := s.Gorm(ctx).Where("id = ?", id).Take(&d).Error; err != nil {
		return d, w, ev, translate(err, "load delivery "+id)
	}
	if err := s.Gorm(ctx).Where("id = ?", d.WebhookID).Take(&w).Error; err != nil {
		return d, w, ev, translate(err, "load webhook of delivery "+id)
	}
	if err := s.Gorm(ctx).Where("id = ?", d.EventID).Take(&ev).Error; err != nil {
		return d, w, ev, translate(err, "load event of delivery "+id)
	}
	return d, w, ev, nil
}

// DeliveryAttempt is the outcome of one attempt to send a delivery.
type DeliveryAttempt struct {
	DeliveryID string
	WebhookID  string
	At         time.Time
	StatusCode int    // 0 when no response arrived
	Error      string // "" when delivered
	Response   string // start of the response body
	Delivered  bool   // a 2xx answer
	// Gone: the endpoint answered 410; it is disabled.
	Gone bool
	// NextAttemptAt is when the next attempt runs; nil when there is none
	// (the delivery failed for good).
	NextAttemptAt *time.Time
}

// RecordDeliveryAttempt stores the outcome of an attempt on the delivery and
// its endpoint: a delivered attempt ends the endpoint's failure streak; a
// failed one starts it, and disables the endpoint after 410 Gone or once
// the streak lasts failureWindow (WebhookFailureWindow). It reports whether
// the endpoint was disabled.
func (s *Store) RecordDeliveryAttempt(ctx context.Context, a DeliveryAttempt, failureWindow time.Duration) (bool, error) {
	at := a.At.UTC()
	status := DeliveryPending
	switch {
	case a.Delivered:
		status = DeliveryDelivered
	case a.Gone || a.NextAttemptAt == nil:
		status = DeliveryFailed
	}
	fields := map[string]any{
		"status": status, "attempts": gorm.Expr("attempts + 1"), "last_error": a.Error,
		"last_response": storableText(a.Response), "last_attempt_at": at, "next_attempt_at": nil,
		"last_status_code": nil,
	}
	if a.StatusCode != 0 {
		fields["last_status_code"] = a.StatusCode
	}
	if a.Delivered {
		fields["delivered_at"] = at
	}
	disabled := false
	err := s.Tx(ctx, func(tx *gorm.DB) error {
		var w Webhook
		if err := tx.Where("id = ?", a.WebhookID).Take(&w).Error; err != nil {
			return translate(err, "record delivery of webhook "+a.WebhookID)
		}
		hook := map[string]any{}
		switch {
		case a.Delivered:
			if w.FailingSince != nil {
				hook["failing_since"] = nil
			}
		case !w.Enabled:
			// Not sent, or sent before the endpoint was disabled: nothing to add.
		case a.Gone:
			hook["enabled"], hook["disabled_reason"] = false, fmt.Sprintf("disabled at %s: the endpoint answered 410 Gone", at.Format(time.RFC3339))
			disabled = true
		default:
			since := at
			if w.FailingSince != nil {
				since = *w.FailingSince
			} else {
				hook["failing_since"] = at
			}
			if w.Enabled && at.Sub(since) >= failureWindow {
				hook["enabled"], hook["disabled_reason"] = false,
					fmt.Sprintf("disabled at %s: every delivery attempt failed since %s", at.Format(time.RFC3339), since.Format(time.RFC3339))
				disabled = true
			}
		}
		if disabled {
			fields["status"] = DeliveryFailed // no retry to a disabled endpoint
		} else if a.NextAttemptAt != nil && status == DeliveryPending {
			fields["next_attempt_at"] = a.NextAttemptAt.UTC()
		}
		if err := tx.Model(&EventDelivery{}).Where("id = ?", a.DeliveryID).Updates(fields).Error; err != nil {
			return fmt.Errorf("record delivery %s: %w", a.DeliveryID, err)
		}
		if len(hook) == 0 {
			return nil
		}
		if err := tx.Model(&Webhook{}).Where("id = ?", w.ID).Updates(hook).Error; err != nil {
			return fmt.Errorf("record delivery of webhook %s: %w", w.ID, err)
		}
		return nil
	})
	return disabled, err
}

// storableText makes a response body storable in a text column: valid
// UTF-8 without NUL bytes (PostgreSQL refuses both), at most
// MaxStoredResponse bytes.
func storableText(s string) string {
	if len(s) > MaxStoredResponse {
		s = s[:MaxStoredResponse]
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}
