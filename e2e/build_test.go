package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/client"
	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/templates"
	"github.com/deskforge/deskforge/workflows"
	"github.com/deskforge/deskforge/workflows/ghsim"
)

var timestampRe = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

// requireAPITime checks a timestamp as the API renders them: UTC, to the
// second.
func requireAPITime(t *testing.T, ts time.Time) {
	t.Helper()
	require.Equal(t, time.UTC, ts.Location())
	require.Equal(t, ts.Truncate(time.Second), ts)
}

// apiCalls sums the simulator's REST API requests (not signed downloads).
func apiCalls(c ghsim.Counters) int {
	n := 0
	for name, ec := range c.Endpoints {
		if strings.Contains(name, " /repos/") {
			n += ec.Requests
		}
	}
	return n
}

func TestSuccessPath(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		for _, mode := range []string{workflows.DownloadRedirect, workflows.DownloadProxy} {
			t.Run(dialect+"/"+mode, func(t *testing.T) {
				t.Parallel()
				h := newHarness(t, config{dialect: dialect, webhooks: true, downloadMode: mode, privateRepo: mode == workflows.DownloadProxy})
				created := h.trigger("mac", "arm64", "1.2.0")
				require.Equal(t, "queued", created.Status)
				b := h.waitTerminal(90*time.Second, created.ID)[created.ID]

				require.Equal(t, "success", b.Status)
				require.Equal(t, h.project.ID, b.ProjectID)
				require.Equal(t, "1.2.0", b.Version)
				require.Equal(t, "mac", b.Platform)
				require.Equal(t, "arm64", b.Arch)
				for _, ts := range []*time.Time{&b.CreatedAt, b.StartedAt, b.CompletedAt} {
					require.NotNil(t, ts)
					requireAPITime(t, *ts)
				}
				started, completed := *b.StartedAt, *b.CompletedAt
				require.False(t, completed.Before(started))
				require.NotNil(t, b.Duration)
				require.Equal(t, int64(completed.Sub(started)/time.Second), *b.Duration)

				name := templates.ProjectAssetName(h.project.ID, "My App", "1.2.0", "mac", "arm64")
				// A signed link (no API key needed) whose last segment is the name.
				require.Regexp(t, `^http://deskforge\.test/signed/\d+/[A-Za-z0-9_-]{43}/builds/`+b.ID+`/artifacts/`+regexp.QuoteMeta(url.PathEscape(name))+`$`, *b.ArtifactURL)
				want := ghsim.AssetBytes(name)
				require.Equal(t, int64(len(want)), *b.ArtifactSize)
				row, err := h.store.GetBuild(h.ctx, b.ID)
				require.NoError(t, err)
				require.Equal(t, sha256Hex(want), row.ArtifactSHA256)
				require.Equal(t, mode == workflows.DownloadProxy, row.RepoPrivate)

				got := h.download(b.ID)
				require.Equal(t, want, got, "curl -L -o file yields the exact bytes")
				require.Equal(t, row.ArtifactSHA256, sha256Hex(got))

				logs := h.logs(b.ID)
				require.GreaterOrEqual(t, len(logs), 10)
				require.Equal(t, "Build queued", logs[0].Message)
				// The run's first webhook may be applied before the dispatch
				// call returns, so only the order of these two is fixed.
				dispatchedAt, startedAt := -1, -1
				for i, l := range logs {
					switch {
					case dispatchedAt < 0 && regexp.MustCompile(`^Dispatched to workflow run \d+ \(http.*/actions/runs/\d+\)$`).MatchString(l.Message):
						dispatchedAt = i
					case startedAt < 0 && strings.HasPrefix(l.Message, "Job started on "):
						startedAt = i
						require.Contains(t, l.Message, "macos-15")
					}
				}
				require.Positive(t, dispatchedAt, "a Dispatched entry")
				require.Greater(t, startedAt, dispatchedAt, "Job started after Dispatched")
				require.Contains(t, messagesOf(logs), "Step 1/6 started: Set up job")
				last := logs[len(logs)-1]
				require.Equal(t, client.LogEntry{Timestamp: *b.CompletedAt, Level: "success", Message: "Build completed successfully"}, last)
				for _, l := range logs {
					requireAPITime(t, l.Timestamp)
					require.NotContains(t, l.Message, "\x1b")
				}
				require.Equal(t, []string{">queued", "queued>building", "building>success"}, h.transitions(b.ID))
				require.Equal(t, map[string]int{b.ID: 1}, h.runsByBuild())
			})
		}
	}
}

func messagesOf(logs []client.LogEntry) []string {
	var out []string
	for _, l := range logs {
		out = append(out, l.Message)
	}
	return out
}

func TestFailurePath(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config{webhooks: true})
	created := h.trigger("linux", "x64", "1.0.1-fail")
	b := h.waitTerminal(90*time.Second, created.ID)[created.ID]
	require.Equal(t, "failed", b.Status)
	require.NotNil(t, b.CompletedAt)
	require.Nil(t, b.ArtifactURL)

	logs := h.logs(b.ID)
	var errs []string
	for _, l := range logs {
		if l.Level == "error" {
			errs = append(errs, l.Message)
		}
	}
	require.GreaterOrEqual(t, len(errs), 3, "step failure, the job log's errors, the final entry: %v", errs)
	require.Contains(t, errs, "Process completed with exit code 1.")
	last := logs[len(logs)-1]
	require.Equal(t, "error", last.Level)
	require.True(t, strings.HasPrefix(last.Message, "Build failed: step "), last.Message)

	status, body := h.api(http.MethodGet, "/builds/"+b.ID+"/download", nil, nil)
	require.Equal(t, http.StatusConflict, status)
	require.Contains(t, string(body), `"not_ready"`)
}

func TestCancel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config{webhooks: true, scenario: []ghsim.Rule{
		{Prerelease: "queued", Outcome: ghsim.OutcomeHangQueued},
		{Prerelease: "building", Outcome: ghsim.OutcomeHangInProgress},
	}})
	queued := h.trigger("mac", "x64", "1.0.0-queued")
	building := h.trigger("windows", "x64", "1.0.0-building")
	h.waitStatus(building.ID, "building", 60*time.Second)
	require.Eventually(t, func() bool {
		b, err := h.store.GetBuild(h.ctx, queued.ID)
		return err == nil && b.RunID != nil
	}, 20*time.Second, 20*time.Millisecond)

	for _, id := range []string{queued.ID, building.ID} {
		var b client.Build
		status, body := h.api(http.MethodPost, "/builds/"+id+"/cancel", nil, &b)
		require.Equal(t, http.StatusAccepted, status, "%s", body)
		require.False(t, isTerminal(b.Status), "cancelled only once GitHub confirms")
	}
	final := h.waitTerminal(90*time.Second, queued.ID, building.ID)
	for id, b := range final {
		require.Equal(t, "cancelled", b.Status, id)
		status, _ := h.api(http.MethodPost, "/builds/"+id+"/cancel", nil, nil)
		require.Equal(t, http.StatusConflict, status)
	}
	require.Equal(t, []string{">queued", "queued>cancelled"}, h.transitions(queued.ID))
	require.Equal(t, []string{">queued", "queued>building", "building>cancelled"}, h.transitions(building.ID))

	// Retry a cancelled build: a new one, same platform/arch/version, retryOf set.
	var retry client.Build
	status, body := h.api(http.MethodPost, "/builds/"+building.ID+"/retry", nil, &retry)
	require.Equal(t, http.StatusCreated, status, "%s", body)
	require.Equal(t, building.ID, *retry.RetryOf)
	require.Equal(t, []string{"windows", "x64", "1.0.0-building"}, []string{retry.Platform, retry.Arch, retry.Version})
}

func TestCancelBeforeDispatch(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config{webhooks: true})
	// River stopped, API up: the build is committed but not dispatched.
	require.NoError(t, h.node.river.Stop(h.ctx))
	created := h.trigger("linux", "arm64", "1.0.0")
	var b client.Build
	status, body := h.api(http.MethodPost, "/builds/"+created.ID+"/cancel", nil, &b)
	require.Equal(t, http.StatusAccepted, status, "%s", body)
	require.Equal(t, "cancelled", b.Status)
	require.NotNil(t, b.CompletedAt)
	h.stop()
	h.start()
	h.waitJobs(workflows.DispatchBuildArgs{}.Kind(), 1)
	require.Empty(t, h.runsByBuild(), "a cancelled build is never dispatched")
	require.Equal(t, "cancelled", h.get(created.ID).Status)
	require.Equal(t, []string{">queued", "queued>cancelled"}, h.transitions(created.ID))
}

// TestFaults runs builds under each simulator fault and checks that every
// build ends as its scenario dictates, with one run each.
func TestFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cfg        config
		versions   []string // one build per version
		wantStatus map[string]string
		wantReason map[string]string
	}{
		{name: "30% webhooks dropped", cfg: config{webhooks: true, faults: ghsim.Faults{Drop: 0.3, Seed: 3}},
			versions: []string{"1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4", "1.0.5-fail"}},
		{name: "20% duplicated and reordered", cfg: config{webhooks: true, faults: ghsim.Faults{Duplicate: 0.2, Reorder: 0.5, Seed: 4}},
			versions: []string{"1.1.0", "1.1.1", "1.1.2", "1.1.3", "1.1.4", "1.1.5-fail"}},
		{name: "webhooks off", cfg: config{webhooks: false},
			versions: []string{"1.2.0", "1.2.1", "1.2.2-fail"}},
		{name: "10% API 5xx", cfg: config{webhooks: true, faults: ghsim.Faults{API5xx: 0.1, Seed: 5}},
			versions: []string{"1.3.0", "1.3.1", "1.3.2", "1.3.3", "1.3.4-fail"}},
		{name: "ambiguous writes", cfg: config{webhooks: true, faults: ghsim.Faults{Ambiguous: 0.3, Seed: 6}},
			versions: []string{"1.4.0", "1.4.1", "1.4.2", "1.4.3"}},
		{name: "GHES", cfg: config{webhooks: true, faults: ghsim.Faults{GHES: true}},
			versions: []string{"1.5.0", "1.5.1", "1.5.2-fail"}},
		{name: "GHES without webhooks", cfg: config{faults: ghsim.Faults{GHES: true}},
			versions: []string{"1.6.0", "1.6.1"}},
		{name: "GHES under webhook and API faults", cfg: config{webhooks: true, faults: ghsim.Faults{
			GHES: true, Drop: 0.3, Duplicate: 0.2, Reorder: 0.5, API5xx: 0.1, Seed: 9}},
			versions: []string{"1.9.0", "1.9.1", "1.9.2", "1.9.3", "1.9.4-fail", "1.9.5-noasset"}},
		{name: "stuck queued", cfg: config{webhooks: true, maxQueue: 2 * time.Second},
			versions: []string{"1.7.0-hang", "1.7.1"}},
		{name: "success without asset", cfg: config{webhooks: true},
			versions: []string{"1.8.0-noasset"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tt.cfg)
			ids := map[string]string{}
			for _, v := range tt.versions {
				ids[h.trigger("linux", "x64", v).ID] = v
			}
			var all []string
			for id := range ids {
				all = append(all, id)
			}
			final := h.waitTerminal(180*time.Second, all...)
			for id, v := range ids {
				b := final[id]
				want, reason := expectedOutcome(h.project.ID, v)
				require.Equal(t, want, b.Status, "version %s", v)
				row, err := h.store.GetBuild(h.ctx, id)
				require.NoError(t, err)
				if reason != "" {
					require.Contains(t, row.FailureReason, reason, "version %s", v)
				}
				checkMonotonic(t, h.transitions(id))
				if want == "success" {
					require.Equal(t, "Build completed successfully", lastLog(h, id).Message)
				}
			}
			for id, n := range h.runsByBuild() {
				require.Equal(t, 1, n, "runs of build %s", id)
			}
		})
	}
}

// expectedOutcome is what a version's scenario dictates.
func expectedOutcome(projectID, version string) (status, reason string) {
	switch {
	case strings.Contains(version, "-fail"):
		return "failed", `step "Build installer" failed`
	case strings.Contains(version, "-noasset"):
		return "failed", "workflow succeeded but uploaded no artifact named " + templates.ProjectAssetName(projectID, "My App", version, "linux", "x64")
	case strings.Contains(version, "-hang"):
		return "failed", "stayed queued"
	}
	return "success", ""
}

// checkMonotonic requires one transition per status, in order.
func checkMonotonic(t *testing.T, ts []string) {
	t.Helper()
	require.NotEmpty(t, ts)
	require.Equal(t, ">queued", ts[0])
	prev := models.StatusQueued
	for _, tr := range ts[1:] {
		from, to, _ := strings.Cut(tr, ">")
		require.Equal(t, prev, from, "transitions %v", ts)
		require.Greater(t, models.StatusRank(to), models.StatusRank(from), "transitions %v", ts)
		prev = to
	}
}

func lastLog(h *harness, id string) client.LogEntry {
	logs := h.logs(id)
	return logs[len(logs)-1]
}

func TestRateLimitPausesUntilReset(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config{webhooks: true, secondaryLimit: 10})
	// Ten writes fill the window, which is nearly over once the clock
	// moves: the builds' dispatches are refused with a short Retry-After
	// until it ends (10 s left, room for a slow start under -race), then
	// accepted.
	h.fillWriteWindow(10)
	h.simClock.jump(50 * time.Second)
	var next []string
	for i := 0; i < 6; i++ {
		next = append(next, h.trigger("linux", "x64", fmt.Sprintf("2.1.%d", i)).ID)
	}
	final := h.waitTerminal(180*time.Second, next...)
	for id, b := range final {
		require.Equal(t, "success", b.Status, id)
	}
	limited := 0
	for name, c := range h.sim.Counters().Endpoints {
		if strings.HasPrefix(name, "POST ") {
			limited += c.RateLimited
		}
	}
	require.Positive(t, limited, "the secondary rate limit tripped")
	for id, n := range h.runsByBuild() {
		require.Equal(t, 1, n, "runs of build %s", id)
	}
	require.Len(t, h.runsByBuild(), 6, "nothing lost")
}

// TestAPIRequestsPerBuild measures the GitHub API requests one successful
// build costs, with webhooks and with polling only.
func TestAPIRequestsPerBuild(t *testing.T) {
	t.Parallel()
	for _, webhooks := range []bool{true, false} {
		t.Run(fmt.Sprintf("webhooks=%v", webhooks), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, config{webhooks: webhooks})
			// Warm the repository-visibility cache, then measure.
			h.waitTerminal(90*time.Second, h.trigger("linux", "x64", "3.0.0").ID)
			h.sim.ResetCounters()
			const n = 5
			var ids []string
			for i := 0; i < n; i++ {
				ids = append(ids, h.trigger("linux", "x64", fmt.Sprintf("3.1.%d", i)).ID)
			}
			for _, b := range h.waitTerminal(180*time.Second, ids...) {
				require.Equal(t, "success", b.Status)
			}
			c := h.sim.Counters()
			perBuild := float64(apiCalls(c)) / n
			counted := 0
			for name, ec := range c.Endpoints {
				if strings.Contains(name, " /repos/") {
					counted += ec.Counted
				}
			}
			t.Logf("webhooks=%v: %.1f GitHub API requests per successful build (%.1f counted against the rate limit)", webhooks, perBuild, float64(counted)/n)
			for name, ec := range c.Endpoints {
				if ec.Requests > 0 {
					t.Logf("  %-70s %4d requests %4d counted %4d not modified", name, ec.Requests, ec.Counted, ec.NotModified)
				}
			}
			if webhooks {
				require.LessOrEqual(t, perBuild, 5.0)
			}
		})
	}
}
