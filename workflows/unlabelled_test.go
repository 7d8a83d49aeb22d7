package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
)

// unlabelledForge is the fake forge answering, as Gitea's does, that its
// release assets carry no label.
type unlabelledForge struct{ *fakeForge }

func (unlabelledForge) LabelsAssets() bool { return false }

func TestFinalizeAcceptsUnlabelledAssetsOnAForgeWithoutLabels(t *testing.T) {
	t.Parallel()
	for _, labels := range []bool{true, false} {
		tb := setup(t, models.DialectSQLite)
		if !labels {
			tb.engine.forge = unlabelledForge{tb.forge}
		}
		b, runID := tb.dispatched(t)
		// Gitea's job as the engine sees it: steps renumbered from 1, a
		// duplicate completed delivery, an asset without label, state or digest.
		_, job := tb.forge.setRun(runID, func(r *Run, j *Job) {
			now := tb.clock.Now()
			j.Status, j.Conclusion, j.RunnerName, j.StartedAt, j.CompletedAt = "completed", "success", "host-vm", now, now.Add(time.Second)
			j.Steps = []Step{step(1, "Show inputs", "completed", "success", now), step(2, "Build installer", "completed", "success", now)}
			tb.forge.logs[j.ID] = "2026-11-30T19:47:41.2774343Z deskforge build " + b.ID + "\n"
			tb.forge.assets["acme/app|v1.2.3|app-1.2.3-mac-arm64.dmg"] = Asset{ID: 3, Name: "app-1.2.3-mac-arm64.dmg", Size: 18,
				BrowserDownloadURL: "http://gitea.test/acme/app/releases/download/v1.2.3/app-1.2.3-mac-arm64.dmg"}
		})
		for _, delivery := range []string{"d1", "d2"} {
			require.NoError(t, tb.engine.applyEvent(tb.ctx, ApplyEventArgs{DeliveryID: delivery, Event: WebhookEvent{Event: "workflow_job", Repo: "acme/app", Job: &job}}, tb.clock.Now()))
		}
		finals := tb.inserter.take(FinalizeBuildArgs{}.Kind())
		require.Len(t, finals, 1, "a duplicate completed delivery finalizes once")
		require.NoError(t, tb.engine.finalizeBuild(tb.ctx, finals[0].(FinalizeBuildArgs)))
		got := tb.build(t, b.ID)
		if labels {
			require.Equal(t, models.StatusFailed, got.Status, "GitHub: an unlabelled asset is not the build's")
			require.Contains(t, got.FailureReason, "does not carry this build's label")
			continue
		}
		require.Equal(t, models.StatusSuccess, got.Status, got.FailureReason)
		require.Equal(t, int64(3), *got.ArtifactAssetID)
		require.Equal(t, "http://gitea.test/acme/app/releases/download/v1.2.3/app-1.2.3-mac-arm64.dmg", got.ArtifactDownloadURL)
		msgs := messages(tb.logs(t, b.ID))
		require.Contains(t, msgs, "info: Step 1/2 started: Show inputs")
		require.Contains(t, msgs, "info: deskforge build "+b.ID)
	}
}
