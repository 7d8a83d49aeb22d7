package metrics_test

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/metrics"
	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
)

// TestDashboardQueriesExistingSeries: every query of the Grafana
// dashboard (grafana-dashboard.json) names only metric families DeskForge
// exports, so renaming a metric without the dashboard fails here.
func TestDashboardQueriesExistingSeries(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("grafana-dashboard.json")
	require.NoError(t, err)
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(data, &dash))
	require.NotEmpty(t, dash.Panels)

	exported := exportedFamilies(t)
	name := regexp.MustCompile(`deskforge_[a-z_]+`)
	used := map[string]bool{}
	for _, p := range dash.Panels {
		require.NotEmpty(t, p.Title)
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			names := name.FindAllString(tg.Expr, -1)
			require.NotEmpty(t, names, "%s: %s", p.Title, tg.Expr)
			for _, n := range names {
				family := n
				for _, suffix := range []string{"_bucket", "_count", "_sum"} {
					if base, ok := strings.CutSuffix(n, suffix); ok && exported[base] {
						family = base
					}
				}
				require.True(t, exported[family], "panel %q queries %s, which is not exported", p.Title, n)
				used[family] = true
			}
		}
	}
	for family := range exported {
		if strings.HasPrefix(family, "deskforge_") {
			require.True(t, used[family], "the dashboard shows nothing of %s", family)
		}
	}
}

// queuedJob is a River job that waits in the queue.
type queuedJob struct{}

func (queuedJob) Kind() string { return "test_queued" }

// exportedFamilies observes every metric once and returns the names of the
// families a scrape then holds.
func exportedFamilies(t *testing.T) map[string]bool {
	t.Helper()
	db := dbtest.Open(t, models.DialectSQLite)
	store := models.NewStore(db)
	project := models.Project{Name: "App", URL: "https://example.com", Platforms: "linux"}
	require.NoError(t, store.CreateProject(t.Context(), &project))
	require.NoError(t, models.CreateBuildTx(t.Context(), db.Gorm, &models.Build{ID: models.NewID("build"), ProjectID: project.ID,
		Platform: "linux", Arch: "x64", Version: "1.0.0", Status: models.StatusQueued}))
	jobs, err := river.NewClient[*sql.Tx](db.RiverDriver(), &river.Config{})
	require.NoError(t, err)
	_, err = jobs.Insert(t.Context(), queuedJob{}, nil)
	require.NoError(t, err)
	m := metrics.New(db, nil)
	now := time.Now()
	started := now.Add(-time.Minute)
	m.ObserveRequest("/builds/:id", http.MethodGet, http.StatusOK, time.Millisecond)
	b := models.Build{Platform: "linux", Arch: "x64", Status: models.StatusBuilding, CreatedAt: now.Add(-2 * time.Minute), DispatchedAt: &started}
	m.BuildTransitioned(b, models.StatusQueued, now)
	m.RunFound(b, now)
	b.Status, b.StartedAt = models.StatusSuccess, &started
	m.BuildTransitioned(b, models.StatusBuilding, now)
	m.WebhookReceived("workflow_job", "accepted")
	m.WebhookApplied("workflow_job", time.Second)
	m.DeliveryAttempted("delivered")
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(http.StatusForbidden)
	}))
	t.Cleanup(gh.Close)
	resp, err := (&http.Client{Transport: m.Transport("token")(nil)}).Get(gh.URL + "/repos/o/r/actions/runs/1")
	require.NoError(t, err)
	resp.Body.Close()
	// A secondary limit: Retry-After with requests left.
	gh.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-RateLimit-Remaining", "10")
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(http.StatusForbidden)
	})
	resp, err = (&http.Client{Transport: m.Transport("token")(nil)}).Get(gh.URL + "/repos/o/r/actions/runs/1")
	require.NoError(t, err)
	resp.Body.Close()

	families, err := m.Registry().Gather()
	require.NoError(t, err)
	out := map[string]bool{}
	for _, f := range families {
		out[f.GetName()] = true
	}
	return out
}
