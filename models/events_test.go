package models_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
)

// eventsBundle is a fresh database with a project and a renderer that
// marks its output, so tests see that data comes from it.
type eventsBundle struct {
	ctx     context.Context
	db      *models.DB
	store   *models.Store
	project models.Project
}

type testRenderer struct{}

func (testRenderer) RenderBuild(b models.Build) any {
	return map[string]any{"id": b.ID, "status": b.Status, "startedAt": b.StartedAt, "rendered": true}
}

func (testRenderer) RenderProject(p models.Project) any {
	return map[string]any{"id": p.ID, "name": p.Name, "rendered": true}
}

func setupEvents(t *testing.T, dialect string) *eventsBundle {
	t.Helper()
	db := dbtest.Open(t, dialect)
	db.Outbox().SetRenderer(testRenderer{})
	b := &eventsBundle{ctx: context.Background(), db: db, store: models.NewStore(db)}
	b.project = models.Project{Name: "App", URL: "https://example.com", Platforms: "mac"}
	require.NoError(t, b.store.CreateProject(b.ctx, &b.project))
	return b
}

// createBuild inserts a queued build the way the engine does.
func (b *eventsBundle) createBuild(t *testing.T) models.Build {
	t.Helper()
	now := time.Now().UTC()
	build := models.Build{ID: models.NewID("build"), ProjectID: b.project.ID, Version: "1.0.0", Platform: "mac",
		Arch: "x64", Status: models.StatusQueued, CreatedAt: now, UpdatedAt: now}
	require.NoError(t, b.store.Tx(b.ctx, func(tx *gorm.DB) error {
		if err := models.CreateBuildTx(b.ctx, tx, &build); err != nil {
			return err
		}
		return models.RecordTransitionTx(b.ctx, tx, build.ID, "", models.StatusQueued, "", now, models.LevelInfo, "Build queued")
	}))
	return build
}

func (b *eventsBundle) transition(t *testing.T, build *models.Build, to string, fields map[string]any) bool {
	t.Helper()
	var changed bool
	require.NoError(t, b.store.Tx(b.ctx, func(tx *gorm.DB) error {
		var err error
		changed, err = models.TransitionBuildTx(b.ctx, tx, build, models.Transition{
			To: to, At: time.Now(), Level: models.LevelInfo, Message: "to " + to, Fields: fields,
		}, time.Now())
		return err
	}))
	return changed
}

func (b *eventsBundle) count(t *testing.T, table string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, b.db.Gorm.Raw("SELECT count(*) FROM "+table).Scan(&n).Error)
	return n
}

func eventTypes(events []models.Event) []string {
	types := make([]string, len(events))
	for i, e := range events {
		types[i] = e.Type
	}
	return types
}

func TestBuildTransitionsWriteOneEventEach(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			b := setupEvents(t, dialect)
			build := b.createBuild(t)
			started := time.Now().UTC().Truncate(time.Second)
			require.True(t, b.transition(t, &build, models.StatusBuilding, map[string]any{"started_at": started}))
			// A duplicate or late change writes nothing.
			stale := build
			stale.Status = models.StatusQueued
			require.False(t, b.transition(t, &stale, models.StatusBuilding, nil))
			require.True(t, b.transition(t, &build, models.StatusSuccess, nil))
			require.False(t, b.transition(t, &build, models.StatusFailed, nil))

			events, err := b.store.ListEvents(b.ctx, models.EventFilter{BuildID: build.ID}, "", 10)
			require.NoError(t, err)
			require.Equal(t, []string{models.EventBuildQueued, models.EventBuildStarted, models.EventBuildSucceeded}, eventTypes(events))
			for _, e := range events {
				require.Equal(t, models.ResourceBuild, e.ResourceKind)
				require.Equal(t, build.ID, e.ResourceID)
				require.Equal(t, b.project.ID, e.ProjectID)
				require.Regexp(t, `^evt_[0-9a-z]{26}$`, e.ID)
			}
			// The data is the renderer's, from the row as the transition left it
			// (started_at was set by the transition's UPDATE, not in memory).
			var data map[string]any
			require.NoError(t, json.Unmarshal([]byte(events[1].Data), &data))
			require.Equal(t, true, data["rendered"])
			require.Equal(t, models.StatusBuilding, data["status"])
			require.NotNil(t, data["startedAt"])

			// The payload wraps the data under the resource's kind.
			var payload struct {
				ID, Type, CreatedAt string
				Data                map[string]map[string]any
			}
			require.NoError(t, json.Unmarshal(events[2].Payload(), &payload))
			require.Equal(t, events[2].ID, payload.ID)
			require.Equal(t, models.EventBuildSucceeded, payload.Type)
			require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`, payload.CreatedAt)
			require.Equal(t, models.StatusSuccess, payload.Data["build"]["status"])

			// Resuming after an id returns what follows it.
			rest, err := b.store.ListEvents(b.ctx, models.EventFilter{BuildID: build.ID}, events[0].ID, 10)
			require.NoError(t, err)
			require.Equal(t, events[1:], rest)
		})
	}
}

func TestRolledBackChangeLeavesNoEventAndNoJob(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			b := setupEvents(t, dialect)
			build := b.createBuild(t)
			require.NoError(t, b.db.Gorm.Create(&models.Webhook{ID: models.NewID("wh"), URL: "https://hooks.example/x",
				Events: "*", Enabled: true, Secret: "whsec_c2VjcmV0"}).Error)
			eventsBefore, jobsBefore := b.count(t, "events"), b.count(t, "river_job")

			boom := errors.New("boom")
			err := b.store.Tx(b.ctx, func(tx *gorm.DB) error {
				changed, err := models.TransitionBuildTx(b.ctx, tx, &build, models.Transition{
					To: models.StatusBuilding, At: time.Now(), Level: models.LevelInfo, Message: "started"}, time.Now())
				require.NoError(t, err)
				require.True(t, changed)
				return boom
			})
			require.ErrorIs(t, err, boom)
			require.Equal(t, eventsBefore, b.count(t, "events"))
			require.Equal(t, jobsBefore, b.count(t, "river_job"))
			require.Zero(t, b.count(t, "event_deliveries"))

			// The same change committed: one event, one delivery, one job.
			build.Status = models.StatusQueued
			require.True(t, b.transition(t, &build, models.StatusBuilding, nil))
			require.Equal(t, eventsBefore+1, b.count(t, "events"))
			require.Equal(t, jobsBefore+1, b.count(t, "river_job"))
			require.EqualValues(t, 1, b.count(t, "event_deliveries"))
		})
	}
}

func TestProjectChangesWriteEvents(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			b := setupEvents(t, dialect)
			_, err := b.store.UpdateProject(b.ctx, b.project.ID, func(p *models.Project) error { p.Name = "Renamed"; return nil })
			require.NoError(t, err)
			// A failed update (invalid) writes nothing.
			_, err = b.store.UpdateProject(b.ctx, b.project.ID, func(p *models.Project) error { p.Name = ""; return nil })
			require.ErrorIs(t, err, models.ErrInvalid)
			require.NoError(t, b.store.DeleteProject(b.ctx, b.project.ID))

			events, err := b.store.ListEvents(b.ctx, models.EventFilter{ProjectID: b.project.ID}, "", 10)
			require.NoError(t, err)
			require.Equal(t, []string{models.EventProjectCreated, models.EventProjectUpdated, models.EventProjectDeleted}, eventTypes(events))
			var data map[string]any
			require.NoError(t, json.Unmarshal([]byte(events[2].Data), &data))
			require.Equal(t, "Renamed", data["name"])
		})
	}
}

func TestListEventsFiltersStreams(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, models.DialectSQLite)
	other := models.Project{Name: "Other", URL: "https://other.example", Platforms: "mac"}
	require.NoError(t, b.store.CreateProject(b.ctx, &other))
	build1, build2 := b.createBuild(t), b.createBuild(t)

	all, err := b.store.ListEvents(b.ctx, models.EventFilter{}, "", 100)
	require.NoError(t, err)
	require.Len(t, all, 4)
	for i := 1; i < len(all); i++ {
		require.Less(t, all[i-1].ID, all[i].ID)
	}
	project, err := b.store.ListEvents(b.ctx, models.EventFilter{ProjectID: b.project.ID}, "", 100)
	require.NoError(t, err)
	require.Len(t, project, 3)
	one, err := b.store.ListEvents(b.ctx, models.EventFilter{BuildID: build2.ID}, "", 100)
	require.NoError(t, err)
	require.Len(t, one, 1)
	require.Equal(t, build2.ID, one[0].ResourceID)
	page, err := b.store.ListEvents(b.ctx, models.EventFilter{ProjectID: b.project.ID}, "", 2)
	require.NoError(t, err)
	require.Len(t, page, 2)
	_ = build1

	cursor := models.EventCursorAt(all[3].CreatedAt)
	fromT, err := b.store.ListEvents(b.ctx, models.EventFilter{}, cursor, 100)
	require.NoError(t, err)
	require.Contains(t, fromT, all[3])
	_, err = b.store.ListEvents(b.ctx, models.EventFilter{}, "", 0)
	require.ErrorIs(t, err, models.ErrInvalid)
}

func TestSubscribeWakesOnCommittedEvents(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			b := setupEvents(t, dialect)
			other := models.Project{Name: "Other", URL: "https://other.example", Platforms: "mac"}
			require.NoError(t, b.store.CreateProject(b.ctx, &other))
			mine, stopMine := b.db.Outbox().Subscribe(models.EventFilter{ProjectID: b.project.ID})
			defer stopMine()
			theirs, stopTheirs := b.db.Outbox().Subscribe(models.EventFilter{ProjectID: other.ID})
			defer stopTheirs()
			// On PostgreSQL the listener wakes everyone once it is listening.
			drainWakeups(mine, theirs)

			build := b.createBuild(t)
			waitWakeup(t, mine)
			events, err := b.store.ListEvents(b.ctx, models.EventFilter{ProjectID: b.project.ID}, "", 10)
			require.NoError(t, err)
			require.Equal(t, build.ID, events[len(events)-1].ResourceID)
			select {
			case <-theirs:
				t.Fatal("a subscriber of another project was woken")
			case <-time.After(200 * time.Millisecond):
			}

			// A rolled-back change is never visible, whatever wakes.
			_ = b.store.Tx(b.ctx, func(tx *gorm.DB) error {
				_, err := models.TransitionBuildTx(b.ctx, tx, &build, models.Transition{To: models.StatusBuilding, At: time.Now()}, time.Now())
				require.NoError(t, err)
				return errors.New("rollback")
			})
			after, err := b.store.ListEvents(b.ctx, models.EventFilter{ProjectID: b.project.ID}, events[len(events)-1].ID, 10)
			require.NoError(t, err)
			require.Empty(t, after)
		})
	}
}

// TestWakeupComesAfterTheCommit: a subscriber is woken once the change is
// committed, never while its transaction is open, so the reads it then
// makes (the API's, on connections of their own on SQLite) see the change.
// A rolled-back change wakes nobody on SQLite.
func TestWakeupComesAfterTheCommit(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			b := setupEvents(t, dialect)
			build := b.createBuild(t)
			wake, stop := b.db.Outbox().Subscribe(models.EventFilter{BuildID: build.ID})
			defer stop()
			drainWakeups(wake)

			err := b.store.Tx(b.ctx, func(tx *gorm.DB) error {
				if _, err := models.TransitionBuildTx(b.ctx, tx, &build, models.Transition{To: models.StatusBuilding, At: time.Now()}, time.Now()); err != nil {
					return err
				}
				select {
				case <-wake:
					return errors.New("woken before the commit")
				case <-time.After(100 * time.Millisecond):
				}
				return nil
			})
			require.NoError(t, err)
			waitWakeup(t, wake)
			got, err := b.store.GetBuildSummary(b.ctx, build.ID)
			require.NoError(t, err)
			require.Equal(t, models.StatusBuilding, got.Status, "the woken reader sees the change")

			if dialect == models.DialectSQLite {
				_ = b.store.Tx(b.ctx, func(tx *gorm.DB) error {
					_, err := models.TransitionBuildTx(b.ctx, tx, &got, models.Transition{To: models.StatusSuccess, At: time.Now()}, time.Now())
					require.NoError(t, err)
					return errors.New("rollback")
				})
				select {
				case <-wake:
					t.Fatal("a rolled-back change woke a subscriber")
				case <-time.After(200 * time.Millisecond):
				}
			}
		})
	}
}

// drainWakeups waits for the PostgreSQL listener's first wake-up (a short
// wait on SQLite, which has none) and empties the channels.
func drainWakeups(chs ...<-chan struct{}) {
	deadline := time.After(2 * time.Second)
	for _, ch := range chs {
		select {
		case <-ch:
		case <-deadline:
			return
		}
	}
}

func waitWakeup(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("no wake-up after a committed event")
	}
}
