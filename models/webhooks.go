package models

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"gorm.io/gorm"
)

// Webhook is an outbound webhook endpoint: a URL that receives the events it
// subscribes to, signed by the Standard Webhooks specification. (GitHub's
// inbound deliveries are WebhookDelivery.)
type Webhook struct {
	ID string `gorm:"primaryKey;size:40"` // wh_<ulid>
	// ProjectID limits the endpoint to one project's events; nil = every
	// project's (admin keys only).
	ProjectID   *string `gorm:"size:40;index"`
	URL         string  `gorm:"size:2048;not null"`
	Events      string  `gorm:"type:text;not null"` // comma-separated event types or patterns (see EventMatches)
	Description string  `gorm:"size:500"`
	Enabled     bool    `gorm:"not null"`
	// DisabledReason says why DeskForge disabled the endpoint (410 Gone,
	// failing for WebhookFailureWindow); "" when enabled or disabled by a user.
	DisabledReason string `gorm:"type:text"`
	// Secret signs deliveries (whsec_<base64>). It is stored as is: signing
	// needs it.
	Secret string `gorm:"size:100;not null"`
	// PreviousSecret keeps signing beside Secret until PreviousSecretUntil
	// after a rotation.
	PreviousSecret      string `gorm:"size:100"`
	PreviousSecretUntil *time.Time
	// FailingSince is the first failed attempt since the last delivered
	// one; nil when the last attempt succeeded.
	FailingSince *time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// EventDelivery is one event to deliver to one webhook endpoint, with the
// outcome of its latest attempt.
type EventDelivery struct {
	// ID is dlv_<ulid>; (WebhookID, ID) serves the keyset list of an
	// endpoint's deliveries.
	ID             string `gorm:"primaryKey;size:40;index:idx_event_deliveries_webhook,priority:2"`
	WebhookID      string `gorm:"size:40;not null;index:idx_event_deliveries_webhook,priority:1"`
	EventID        string `gorm:"size:40;not null"`
	EventType      string `gorm:"size:64;not null"`
	Status         string `gorm:"size:16;not null"`
	Attempts       int    `gorm:"not null;default:0"`
	LastStatusCode *int
	LastError      string `gorm:"type:text"`
	// LastResponse is the start of the last response body (at most
	// MaxStoredResponse bytes).
	LastResponse  string `gorm:"type:text"`
	LastAttemptAt *time.Time
	NextAttemptAt *time.Time
	DeliveredAt   *time.Time
	CreatedAt     time.Time
}

// WebhookQueue is the River queue of delivery jobs: a queue of their own,
// so that slow receivers (up to 10 s an attempt) never hold the workers
// the build engine needs.
const WebhookQueue = "webhooks"

// MaxDeliveryAttempts bounds the River attempts of a delivery job; the
// delivery worker gives up earlier, when its retry schedule ends.
const MaxDeliveryAttempts = 25

// DeliverWebhookArgs is the River job that sends one delivery (worker:
// package hooks). It is inserted in the transaction that records the event.
type DeliverWebhookArgs struct {
	DeliveryID string `json:"deliveryId"`
}

// Kind implements river.JobArgs.
func (DeliverWebhookArgs) Kind() string { return "deliver_webhook" }

// EventMatches reports whether an endpoint subscribed to patterns (each an
// event type, "<group>.*" such as "build.*", or "*") receives typ.
func EventMatches(patterns []string, typ string) bool {
	for _, p := range patterns {
		if p == "*" || p == typ {
			return true
		}
		if group, ok := strings.CutSuffix(p, ".*"); ok && strings.HasPrefix(typ, group+".") {
			return true
		}
	}
	return false
}

// EventList returns the endpoint's subscriptions.
func (w Webhook) EventList() []string {
	if w.Events == "" {
		return nil
	}
	return strings.Split(w.Events, ",")
}

// fanOutTx inserts a delivery and its job for every enabled endpoint
// subscribed to ev (endpoints of ev's project and those of every project).
func (o *Outbox) fanOutTx(ctx context.Context, tx *gorm.DB, ev Event) error {
	if ev.ProjectID == "" {
		return nil
	}
	var hooks []Webhook
	if err := tx.Select("id, events").Where("enabled = ? AND (project_id IS NULL OR project_id = ?)", true, ev.ProjectID).
		Find(&hooks).Error; err != nil {
		return fmt.Errorf("find subscribed webhooks: %w", err)
	}
	hooks = slices.DeleteFunc(hooks, func(w Webhook) bool { return !EventMatches(w.EventList(), ev.Type) })
	if len(hooks) == 0 {
		return nil
	}
	deliveries := make([]EventDelivery, len(hooks))
	for i, w := range hooks {
		deliveries[i] = newDelivery(w.ID, ev, ev.CreatedAt)
	}
	return o.insertDeliveriesTx(ctx, tx, deliveries)
}

func newDelivery(webhookID string, ev Event, now time.Time) EventDelivery {
	next := now.UTC()
	return EventDelivery{
		ID: NewID("dlv"), WebhookID: webhookID, EventID: ev.ID, EventType: ev.Type,
		Status: DeliveryPending, NextAttemptAt: &next, CreatedAt: now.UTC(),
	}
}

// insertDeliveriesTx stores deliveries and inserts one River job for each.
func (o *Outbox) insertDeliveriesTx(ctx context.Context, tx *gorm.DB, deliveries []EventDelivery) error {
	if err := tx.WithContext(ctx).Create(&deliveries).Error; err != nil {
		return fmt.Errorf("store webhook deliveries: %w", err)
	}
	return o.insertDeliveryJobsTx(ctx, tx, deliveries)
}

func (o *Outbox) insertDeliveryJobsTx(ctx context.Context, tx *gorm.DB, deliveries []EventDelivery) error {
	params := make([]river.InsertManyParams, len(deliveries))
	for i, d := range deliveries {
		params[i] = river.InsertManyParams{
			Args:       DeliverWebhookArgs{DeliveryID: d.ID},
			InsertOpts: &river.InsertOpts{MaxAttempts: MaxDeliveryAttempts, Queue: WebhookQueue},
		}
	}
	if err := o.db.jobs.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("insert webhook delivery jobs: %w", err)
	}
	return nil
}
