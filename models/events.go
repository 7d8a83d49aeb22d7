package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"gorm.io/gorm"
)

// Event types. Events come only from status transitions and project changes
// recorded in the store, never from GitHub deliveries directly, so a
// duplicated or reordered GitHub webhook cannot duplicate an event.
const (
	EventBuildQueued      = "build.queued"
	EventBuildStarted     = "build.started"
	EventBuildSucceeded   = "build.succeeded"
	EventBuildFailed      = "build.failed"
	EventBuildCancelled   = "build.cancelled"
	EventReleaseQueued    = "release.queued"
	EventReleaseBuilding  = "release.building"
	EventReleaseSucceeded = "release.succeeded"
	EventReleaseFailed    = "release.failed"
	EventReleaseCancelled = "release.cancelled"
	EventReleasePublished = "release.published"
	EventProjectCreated   = "project.created"
	EventProjectUpdated   = "project.updated"
	EventProjectDeleted   = "project.deleted"
	// EventPing is sent to one webhook endpoint by POST /webhooks/:id/ping;
	// it belongs to no project and no stream.
	EventPing = "ping"
)

// EventTypes lists the event types a webhook endpoint can subscribe to.
var EventTypes = []string{
	EventBuildQueued, EventBuildStarted, EventBuildSucceeded, EventBuildFailed, EventBuildCancelled,
	EventReleaseQueued, EventReleaseBuilding, EventReleaseSucceeded, EventReleaseFailed, EventReleaseCancelled,
	EventReleasePublished,
	EventProjectCreated, EventProjectUpdated, EventProjectDeleted,
}

// Kinds of resources events are about; the kind is also the key of the
// resource in the payload's data ({"build": {…}}).
const (
	ResourceBuild   = "build"
	ResourceProject = "project"
	ResourceRelease = "release"
	ResourceWebhook = "webhook"
)

// buildEventTypes maps a build status to the event of entering it.
var buildEventTypes = map[string]string{
	StatusQueued:    EventBuildQueued,
	StatusBuilding:  EventBuildStarted,
	StatusSuccess:   EventBuildSucceeded,
	StatusFailed:    EventBuildFailed,
	StatusCancelled: EventBuildCancelled,
}

// Event is one row of the transactional outbox: a change of a build or a
// project, written in the transaction that makes the change, so an event
// exists exactly when its change committed.
type Event struct {
	// ID is evt_<ulid>: it sorts by creation time (see ListEvents for what
	// that means to a reader resuming by id).
	ID           string `gorm:"primaryKey;size:40;index:idx_events_project,priority:2;index:idx_events_resource,priority:3"`
	Type         string `gorm:"size:64;not null"`
	ResourceKind string `gorm:"size:16;not null;index:idx_events_resource,priority:1"`
	ResourceID   string `gorm:"size:40;not null;index:idx_events_resource,priority:2"`
	// ProjectID is the project of the resource ("" for a ping).
	ProjectID string `gorm:"size:40;not null;index:idx_events_project,priority:1"`
	// Data is the resource's JSON as the API shows it at the time of the
	// change (GET /builds/:id's body for a build).
	Data      string    `gorm:"type:text;not null"`
	CreatedAt time.Time `gorm:"not null"`
}

// eventTimeFormat is RFC 3339 UTC to the millisecond: the API's timestamps
// are to the second, too coarse to order a build's quick transitions.
const eventTimeFormat = "2006-01-02T15:04:05.000Z"

// Payload is the JSON delivered for e (to webhook endpoints and event
// streams): {"id": "evt_…", "type": "build.succeeded", "createdAt": "…",
// "data": {"build": {…}}}. It is the same bytes every time it is called.
func (e Event) Payload() []byte {
	data := e.Data
	if data == "" {
		data = "null"
	}
	body, _ := json.Marshal(struct {
		ID        string                     `json:"id"`
		Type      string                     `json:"type"`
		CreatedAt string                     `json:"createdAt"`
		Data      map[string]json.RawMessage `json:"data"`
	}{e.ID, e.Type, e.CreatedAt.UTC().Format(eventTimeFormat), map[string]json.RawMessage{e.ResourceKind: json.RawMessage(data)}})
	return body
}

// Renderer renders resources as the API shows them, for events' data. The
// HTTP layer provides it (server.EventRenderer), so that an event's data is
// exactly the body the API answers; models cannot import the HTTP layer.
type Renderer interface {
	// RenderBuild returns GET /builds/:id's body for b.
	RenderBuild(b Build) any
	// RenderProject returns GET /projects/:id's body for p.
	RenderProject(p Project) any
}

// rowRenderer is the Renderer of a database whose outbox was given none:
// data is the row as stored. Only tools and tests without the HTTP layer see
// it; `deskforge serve` and the command line install the API's renderer.
type rowRenderer struct{}

func (rowRenderer) RenderBuild(b Build) any     { return b }
func (rowRenderer) RenderProject(p Project) any { return p }

// outboxPluginName registers the outbox on the database's GORM handle, so
// that helpers given only a transaction (RecordTransitionTx) find it.
const outboxPluginName = "deskforge:outbox"

// Outbox writes events inside the transactions of the changes they report,
// fans them out to webhook endpoints (one delivery row and one River job per
// subscribed endpoint, in the same transaction) and wakes readers: on
// PostgreSQL by NOTIFY on EventsChannel, sent at commit (it reaches every
// replica); on SQLite in-process. Every DB has one (DB.Outbox). It is safe
// for concurrent use.
type Outbox struct {
	db *DB

	rendererMu sync.RWMutex
	renderer   Renderer

	notifier *notifier
}

// EventsChannel is the PostgreSQL NOTIFY channel of committed events; the
// payload is "<event id> <project id> <resource kind> <resource id>".
const EventsChannel = "deskforge_events"

// Name implements gorm.Plugin.
func (o *Outbox) Name() string { return outboxPluginName }

// Initialize implements gorm.Plugin.
func (o *Outbox) Initialize(*gorm.DB) error { return nil }

// SetRenderer installs the renderer of events' data (the API's JSON). Call
// it at start, before writing.
func (o *Outbox) SetRenderer(r Renderer) {
	o.rendererMu.Lock()
	o.renderer = r
	o.rendererMu.Unlock()
}

func (o *Outbox) render() Renderer {
	o.rendererMu.RLock()
	defer o.rendererMu.RUnlock()
	if o.renderer == nil {
		return rowRenderer{}
	}
	return o.renderer
}

// outboxOf returns the outbox of the database tx belongs to.
func outboxOf(tx *gorm.DB) (*Outbox, error) {
	o, ok := tx.Config.Plugins[outboxPluginName].(*Outbox)
	if !ok {
		return nil, errors.New("events: the transaction's database has no outbox (open it with models.Open)")
	}
	return o, nil
}

// NewEvent describes an event for RecordEventTx.
type NewEvent struct {
	Type         string
	ResourceKind string
	ResourceID   string
	ProjectID    string
	// Data is the resource as the API shows it; it is encoded as JSON.
	Data any
	// At is when the change happened (default: now).
	At time.Time
}

// RecordEventTx stores an event inside tx, inserts a delivery and its River
// job for every enabled webhook endpoint subscribed to it, and wakes the
// readers of its stream once tx commits. If tx rolls back, none of it
// happened.
func RecordEventTx(ctx context.Context, tx *gorm.DB, ne NewEvent) (Event, error) {
	o, err := outboxOf(tx)
	if err != nil {
		return Event{}, err
	}
	data, err := json.Marshal(ne.Data)
	if err != nil {
		return Event{}, fmt.Errorf("record event %s of %s: encode data: %w", ne.Type, ne.ResourceID, err)
	}
	at := ne.At
	if at.IsZero() {
		at = time.Now()
	}
	ev := Event{
		ID:           NewID("evt"),
		Type:         ne.Type,
		ResourceKind: ne.ResourceKind,
		ResourceID:   ne.ResourceID,
		ProjectID:    ne.ProjectID,
		Data:         string(data),
		CreatedAt:    at.UTC(),
	}
	tx = tx.WithContext(ctx)
	if err := tx.Create(&ev).Error; err != nil {
		return Event{}, fmt.Errorf("record event %s of %s: %w", ev.Type, ev.ResourceID, err)
	}
	if err := o.fanOutTx(ctx, tx, ev); err != nil {
		return Event{}, fmt.Errorf("record event %s of %s: %w", ev.Type, ev.ResourceID, err)
	}
	if err := o.notifyTx(ctx, tx, ev); err != nil {
		return Event{}, fmt.Errorf("record event %s of %s: %w", ev.Type, ev.ResourceID, err)
	}
	return ev, nil
}

// recordBuildEventTx records the event of build id entering status: its
// data is the build as the API shows it, read back inside tx so that every
// column set by the transition is in it.
func recordBuildEventTx(ctx context.Context, tx *gorm.DB, id, status string) error {
	typ, ok := buildEventTypes[status]
	if !ok {
		return fmt.Errorf("record event of build %s: unknown status %q", id, status)
	}
	o, err := outboxOf(tx)
	if err != nil {
		return err
	}
	var b Build
	if err := tx.WithContext(ctx).Where("id = ?", id).Take(&b).Error; err != nil {
		return translate(err, "record event of build "+id)
	}
	_, err = RecordEventTx(ctx, tx, NewEvent{
		Type: typ, ResourceKind: ResourceBuild, ResourceID: b.ID, ProjectID: b.ProjectID,
		Data: o.render().RenderBuild(b),
	})
	return err
}

// recordProjectEventTx records a project.* event with p as data.
func recordProjectEventTx(ctx context.Context, tx *gorm.DB, typ string, p Project) error {
	o, err := outboxOf(tx)
	if err != nil {
		return err
	}
	_, err = RecordEventTx(ctx, tx, NewEvent{
		Type: typ, ResourceKind: ResourceProject, ResourceID: p.ID, ProjectID: p.ID,
		Data: o.render().RenderProject(p),
	})
	return err
}

// EventFilter selects the events of one stream: a build's (BuildID), a
// project's (ProjectID), or every project's (both empty; pings excluded).
type EventFilter struct {
	ProjectID string
	BuildID   string
}

func (f EventFilter) matches(projectID, kind, resourceID string) bool {
	switch {
	case f.BuildID != "":
		return kind == ResourceBuild && resourceID == f.BuildID
	case f.ProjectID != "":
		return projectID == f.ProjectID
	}
	return projectID != ""
}

// ListEvents returns up to limit events of f's stream with an id greater
// than after ("" = from the start), oldest first: a reader resumes by
// passing the id of the last event it handled (SSE's Last-Event-ID).
//
// Ids are assigned inside their transactions, before commit. A build's
// events are written under the build's row lock, so they commit in id
// order; on SQLite every write is serialised, so all events do. On
// PostgreSQL two transactions about different resources can commit out of
// id order: a project-wide reader that must not miss an event re-reads a
// few seconds back (EventCursorAt) and skips the ids it has seen.
func (s *Store) ListEvents(ctx context.Context, f EventFilter, after string, limit int) ([]Event, error) {
	if limit < 1 {
		return nil, fmt.Errorf("list events: limit %d: %w", limit, ErrInvalid)
	}
	q := s.Gorm(ctx).Model(&Event{})
	switch {
	case f.BuildID != "":
		q = q.Where("resource_kind = ? AND resource_id = ?", ResourceBuild, f.BuildID)
	case f.ProjectID != "":
		q = q.Where("project_id = ?", f.ProjectID)
	default:
		q = q.Where("project_id <> ''")
	}
	if after != "" {
		q = q.Where("id > ?", after)
	}
	var events []Event
	if err := q.Order("id").Limit(limit).Find(&events).Error; err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return events, nil
}

// GetEvent reads one event; ErrNotFound when it does not exist.
func (s *Store) GetEvent(ctx context.Context, id string) (Event, error) {
	var e Event
	err := s.Gorm(ctx).Where("id = ?", id).Take(&e).Error
	return e, translate(err, "get event "+id)
}

// EventCursorAt returns a cursor for ListEvents that starts at the first
// event created at or after t.
func EventCursorAt(t time.Time) string {
	return IDAt("evt", t)
}

// attachOutbox gives db its outbox, registered on its GORM handle.
func attachOutbox(db *DB) (*DB, error) {
	db.outbox = &Outbox{db: db, notifier: newNotifier(db.pgPool)}
	if err := db.Gorm.Use(db.outbox); err != nil {
		db.Close()
		return nil, fmt.Errorf("register the events outbox: %w", err)
	}
	return db, nil
}

// Outbox returns the database's events outbox.
func (db *DB) Outbox() *Outbox { return db.outbox }
