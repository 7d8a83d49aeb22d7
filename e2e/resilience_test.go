package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/workflows/ghsim"
)

// TestRestartBetweenCommitAndDispatch stops DeskForge while builds are
// committed but not dispatched, and while dispatches are in flight (slow
// GitHub, answers lost when the process stops), then starts it again: every
// build gets exactly one run and succeeds.
func TestRestartBetweenCommitAndDispatch(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, config{dialect: dialect, webhooks: true, faults: ghsim.Faults{Latency: 40 * time.Millisecond, Ambiguous: 0.2, Seed: 11}})

			// 1. Committed, not dispatched: River is down.
			require.NoError(t, h.node.river.Stop(h.ctx))
			var ids []string
			for i := 0; i < 5; i++ {
				ids = append(ids, h.trigger("linux", "x64", fmt.Sprintf("4.0.%d", i)).ID)
			}
			h.stop()
			h.start()

			// 2. Stopped while dispatches are in flight.
			for i := 0; i < 10; i++ {
				ids = append(ids, h.trigger("mac", "arm64", fmt.Sprintf("4.1.%d", i)).ID)
			}
			time.Sleep(60 * time.Millisecond)
			h.stop()
			h.start()

			final := h.waitTerminal(180*time.Second, ids...)
			for id, b := range final {
				require.Equal(t, "success", b.Status, id)
				checkMonotonic(t, h.transitions(id))
			}
			runs := h.runsByBuild()
			require.Len(t, runs, len(ids))
			for id, n := range runs {
				require.Equal(t, 1, n, "runs of build %s", id)
			}
		})
	}
}

// TestMixedRunUnderAllFaults runs 200 builds with every fault at once:
// webhooks dropped, duplicated and reordered, API 5xx and ambiguous writes,
// the secondary rate limit tripped, GHES (no run details: runs found by
// title), stuck runs, failures, successes without asset, and cancellations.
// Every build ends in the state its scenario dictates, with one run each.
// It runs on PostgreSQL when DESKFORGE_TEST_DATABASE_URL is set, else SQLite.
// GHES mode is on under -race too: the simulator encodes run listings
// (the requests GHES mode multiplies) outside its lock.
func TestMixedRunUnderAllFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("200 builds: skipped in -short mode")
	}
	t.Parallel()
	const secondary = 300
	// PostgreSQL when available (CI): the pure-Go SQLite is slow under -race.
	dialects := dbtest.Dialects()
	h := newHarness(t, config{
		dialect:        dialects[len(dialects)-1],
		webhooks:       true,
		secondaryLimit: secondary,
		maxQueue:       4 * time.Second,
		// GHES runs are found by listing, under 5xx faults, for 200
		// builds at once: under -race that can take longer than the
		// default 20 s, which would fail a build as having no run.
		noRun:          2 * time.Minute,
		workers:        20,
		staleAfter:     time.Second,
		reconcileEvery: 250 * time.Millisecond,
		faults: ghsim.Faults{
			Drop: 0.3, Duplicate: 0.2, Reorder: 0.5, API5xx: 0.1, Ambiguous: 0.05, GHES: true, Seed: 42,
		},
		scenario: append([]ghsim.Rule{
			{Prerelease: "stall", Outcome: ghsim.OutcomeHangInProgress},
			{Prerelease: "wait", Outcome: ghsim.OutcomeHangQueued},
		}, ghsim.DefaultRules()...),
	})
	// Trip the secondary limit: a full window of writes that ends about 5 s
	// from now, so that the first dispatches are refused (Retry-After) and
	// wait for the reset.
	faults := h.cfg.faults
	h.sim.SetFaults(ghsim.Faults{})
	h.fillWriteWindow(secondary)
	h.sim.SetFaults(faults)
	h.simClock.jump(55 * time.Second)

	type plan struct {
		version, platform, arch string
		want                    string // final status
		reason                  string // part of the failure reason
		cancel                  string // "", "now" (right after creation), "building"
	}
	var plans []plan
	platforms := [][2]string{{"mac", "arm64"}, {"mac", "x64"}, {"windows", "x64"}, {"windows", "arm64"}, {"linux", "x64"}, {"linux", "arm64"}}
	for i := 0; i < 200; i++ {
		pa := platforms[i%len(platforms)]
		p := plan{platform: pa[0], arch: pa[1], want: "success"}
		switch k := i % 20; {
		case k < 12:
			p.version = fmt.Sprintf("5.%d.0", i)
		case k < 14:
			p.version, p.want, p.reason = fmt.Sprintf("5.%d.0-fail", i), "failed", `step "Build installer" failed`
		case k < 16:
			p.version, p.want, p.reason = fmt.Sprintf("5.%d.0-noasset", i), "failed", "workflow succeeded but uploaded no artifact named"
		case k < 17:
			p.version, p.want, p.reason = fmt.Sprintf("5.%d.0-hang", i), "failed", "stayed queued"
		case k < 18:
			p.version, p.want, p.cancel = fmt.Sprintf("5.%d.0-stall", i), "cancelled", "building"
		default:
			p.version, p.want, p.cancel = fmt.Sprintf("5.%d.0-wait", i), "cancelled", "now"
		}
		plans = append(plans, p)
	}

	ids := make([]string, len(plans))
	byID := map[string]plan{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	sem := make(chan struct{}, 8)
	for i, p := range plans {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			b := h.trigger(p.platform, p.arch, p.version)
			if p.cancel == "now" {
				status, body := h.api(http.MethodPost, "/builds/"+b.ID+"/cancel", nil, nil)
				require.Equal(t, http.StatusAccepted, status, "%s", body)
			}
			mu.Lock()
			ids[i] = b.ID
			byID[b.ID] = p
			mu.Unlock()
		}()
	}
	wg.Wait()
	for id, p := range byID {
		if p.cancel == "building" {
			h.waitStatus(id, "building", 360*time.Second)
			status, body := h.api(http.MethodPost, "/builds/"+id+"/cancel", nil, nil)
			require.Equal(t, http.StatusAccepted, status, "%s", body)
		}
	}

	final := h.waitTerminal(480*time.Second, ids...)
	counts := map[string]int{}
	for id, b := range final {
		p := byID[id]
		require.Equal(t, p.want, b.Status, "build %s version %s", id, p.version)
		counts[b.Status]++
		row, err := h.store.GetBuild(h.ctx, id)
		require.NoError(t, err)
		if p.reason != "" {
			require.Contains(t, row.FailureReason, p.reason, "build %s version %s", id, p.version)
		}
		checkMonotonic(t, h.transitions(id))
		if b.Status == "success" {
			require.NotNil(t, b.ArtifactURL)
			require.NotEmpty(t, row.ArtifactSHA256)
		}
	}
	runs := h.runsByBuild()
	for id, n := range runs {
		require.Equal(t, 1, n, "zero duplicate runs: build %s has %d", id, n)
	}
	cancelledNow := 0
	for _, p := range plans {
		if p.cancel == "now" {
			cancelledNow++
		}
	}
	require.GreaterOrEqual(t, len(runs), len(plans)-cancelledNow)

	c := h.sim.Counters()
	limited, errs5xx := 0, 0
	for name, ec := range c.Endpoints {
		if strings.Contains(name, " /repos/") {
			limited += ec.RateLimited
			errs5xx += ec.ServerErrors
		}
	}
	dropped, dups := 0, 0
	for _, d := range h.sim.Deliveries() {
		if d.Dropped {
			dropped++
		}
		if d.Duplicate {
			dups++
		}
	}
	t.Logf("200 builds: %v; %d API requests (%d rate-limited, %d answered 5xx); %d webhook deliveries dropped, %d duplicated",
		counts, apiCalls(c), limited, errs5xx, dropped, dups)
	require.Positive(t, limited, "the rate limit tripped")
	require.Positive(t, errs5xx)
	require.Positive(t, dropped)
	require.Positive(t, dups)
}
