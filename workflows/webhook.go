package workflows

import (
	"context"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/deskforge/deskforge/models"
)

// Delivery identifies one GitHub webhook delivery (its headers).
type Delivery struct {
	ID     string // X-GitHub-Delivery (the same on a redelivery)
	Event  string // X-GitHub-Event
	HookID string // X-GitHub-Hook-ID
}

// RecordWebhook stores a verified delivery and, for an event the engine
// applies (workflow_run and workflow_job with their run or job), enqueues
// its processing — both in one transaction of its own, so an accepted
// delivery is never lost and a delivery that cannot be stored fails alone.
// ev is nil for events that are only recorded. It reports false, having
// changed nothing, when the delivery id was seen before. No GitHub call
// happens here: the receiver answers in milliseconds.
//
// The raw payload is not stored: the applied event travels, parsed, in the
// River job's arguments, and the delivery row is the dedupe record.
func (e *Engine) RecordWebhook(ctx context.Context, d Delivery, ev *WebhookEvent) (bool, error) {
	if d.ID == "" {
		return false, fmt.Errorf("record webhook: no delivery id: %w", models.ErrInvalid)
	}
	now := e.clock.Now().UTC()
	row := models.WebhookDelivery{
		DeliveryID: d.ID,
		ID:         models.NewID("wh"),
		Event:      d.Event,
		HookID:     d.HookID,
		ReceivedAt: now,
	}
	var apply *ApplyEventArgs
	if ev != nil {
		row.Action = ev.Action
		if (ev.Event == "workflow_run" && ev.Run != nil) || (ev.Event == "workflow_job" && ev.Job != nil) {
			apply = &ApplyEventArgs{DeliveryID: d.ID, Event: *ev, ForgeHost: e.opts.ForgeHost}
		}
	}
	if apply == nil {
		row.ProcessedAt = &now
	}
	fresh := false
	err := e.store.Tx(ctx, func(tx *gorm.DB) error {
		res := tx.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
		if res.Error != nil {
			return fmt.Errorf("insert delivery row: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return nil // a redelivery: seen before
		}
		fresh = true
		if apply == nil {
			return nil
		}
		return e.insertTx(ctx, tx, *apply)
	})
	if err != nil {
		return false, fmt.Errorf("record webhook delivery %s: %w", d.ID, err)
	}
	return fresh, nil
}
