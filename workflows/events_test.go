package workflows

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
)

// TestDuplicateAndReorderedWebhooksNeverDuplicateEvents: a build going
// queued → building → success through GitHub webhooks that arrive twice and
// out of order emits exactly three events, and a subscribed endpoint gets
// exactly three deliveries: events come from status transitions, not from
// deliveries.
func TestDuplicateAndReorderedWebhooksNeverDuplicateEvents(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, dialect)
			hook, err := tb.store.CreateWebhook(tb.ctx, models.NewWebhookParams{URL: "https://hooks.example/x", Events: []string{"build.*"}})
			require.NoError(t, err)
			b, runID := tb.dispatched(t)
			start := tb.clock.Now()
			_, inProgress := tb.forge.setRun(runID, func(r *Run, j *Job) {
				r.Status, j.Status, j.RunnerName, j.StartedAt = "in_progress", "in_progress", "GitHub Actions 7", start
			})
			_, completed := tb.forge.setRun(runID, func(r *Run, j *Job) {
				j.Status, j.Conclusion, j.CompletedAt = "completed", "success", start.Add(time.Minute)
				r.Status, r.Conclusion = "completed", "success"
				tb.forge.logs[j.ID] = sampleLog
			})
			tb.forge.assets["acme/app|v1.2.3|app-1.2.3-mac-arm64.dmg"] = Asset{ID: 77, Name: "app-1.2.3-mac-arm64.dmg", Size: 1234,
				SHA256: strings.Repeat("ab", 32), BrowserDownloadURL: "https://github.com/acme/app/releases/download/v1.2.3/app.dmg"}
			queuedLate := completed
			queuedLate.Status, queuedLate.Conclusion = "queued", ""

			// Completed first, then duplicates and late ones, each a distinct
			// GitHub delivery.
			for i, job := range []Job{completed, inProgress, completed, queuedLate, inProgress} {
				job := job
				require.NoError(t, tb.engine.applyEvent(tb.ctx, ApplyEventArgs{DeliveryID: "d" + string(rune('a'+i)),
					Event: WebhookEvent{Event: "workflow_job", Action: job.Status, Repo: "acme/app", Job: &job}}, tb.clock.Now()))
			}
			require.NoError(t, tb.runFinalize(t))
			require.NoError(t, tb.runFinalize(t))
			require.Equal(t, models.StatusSuccess, tb.build(t, b.ID).Status)

			events, err := tb.store.ListEvents(tb.ctx, models.EventFilter{BuildID: b.ID}, "", 100)
			require.NoError(t, err)
			var types []string
			for _, e := range events {
				types = append(types, e.Type)
			}
			require.Equal(t, []string{models.EventBuildQueued, models.EventBuildStarted, models.EventBuildSucceeded}, types)
			ds, _, err := tb.store.ListDeliveries(tb.ctx, models.DeliveryFilter{WebhookID: hook.ID, Limit: 100})
			require.NoError(t, err)
			require.Len(t, ds, 3)
			var jobs int64
			require.NoError(t, tb.db.Gorm.Raw("SELECT count(*) FROM river_job WHERE kind = ?", models.DeliverWebhookArgs{}.Kind()).Scan(&jobs).Error)
			require.EqualValues(t, 3, jobs)
		})
	}
}
