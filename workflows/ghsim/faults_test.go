package ghsim

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/stretchr/testify/require"
)

func TestParseFaults(t *testing.T) {
	t.Parallel()
	f, err := ParseFaults("drop=0.3, duplicate=0.2,reorder=0.5,api5xx=0.1,latency=50ms,seed=7")
	require.NoError(t, err)
	require.Equal(t, Faults{Seed: 7, Drop: 0.3, Duplicate: 0.2, Reorder: 0.5, API5xx: 0.1, Latency: 50 * time.Millisecond}, f)

	all := "drop=0.1,duplicate=0.2,reorder=0.3,delay=2s,api5xx=0.4,ambiguous=0.5,latency=10ms,primary=100,secondary=5,ratelimit429=true,ghes=true,stuck=0.6,noasset=0.7,fail=0.8,seed=-3"
	f, err = ParseFaults(all)
	require.NoError(t, err)
	require.Equal(t, all, f.String())
	again, err := ParseFaults(f.String())
	require.NoError(t, err)
	require.Equal(t, f, again)

	bare, err := ParseFaults("ghes,429")
	require.NoError(t, err)
	require.True(t, bare.GHES)
	require.True(t, bare.RateLimit429)

	empty, err := ParseFaults("")
	require.NoError(t, err)
	require.Equal(t, Faults{}, empty)

	for _, bad := range []string{"drop=2", "drop=x", "latency=fast", "unknown=1", "primary=0", "ghes=maybe", "delay=-1s"} {
		_, err := ParseFaults(bad)
		require.Error(t, err, bad)
	}
}

// runBuilds dispatches n builds on a fresh simulator with faults f, lets
// them finish and returns the delivery log and what the receiver got.
func runBuilds(t *testing.T, f Faults, n int) (*env, []Delivery, []receivedHook) {
	t.Helper()
	e := setup(t, func(o *Options) { o.Faults = f })
	for i := range n {
		e.dispatch(t, contractInputs(fmt.Sprintf("build_01hx0fault%02d", i), "linux", "x64", "1.0.0"))
	}
	e.finish()
	e.advance(e.sim.opts.Faults.ReorderDelay)
	return e, e.sim.Deliveries(), e.hooks.received()
}

func TestWebhookFaultsAreDeterministic(t *testing.T) {
	t.Parallel()
	f := Faults{Seed: 7, Drop: 0.3, Duplicate: 0.2, Reorder: 0.5, ReorderDelay: 50 * time.Millisecond}
	_, log1, got1 := runBuilds(t, f, 4)
	_, log2, got2 := runBuilds(t, f, 4)
	// GUIDs are unique to each simulator (as GitHub's are unique): the
	// runs are compared by each GUID's first position in the sequence, so
	// a duplicate still shows as the same delivery.
	ordinal := func(seen map[string]int, guid string) int {
		if _, ok := seen[guid]; !ok {
			seen[guid] = len(seen)
		}
		return seen[guid]
	}
	strip := func(ds []Delivery) []string {
		var out []string
		seen := map[string]int{}
		for _, d := range ds {
			out = append(out, fmt.Sprintf("%d %s/%s dropped=%t dup=%t delayed=%t", ordinal(seen, d.GUID), d.Event, d.Action, d.Dropped, d.Duplicate, d.Delayed))
		}
		return out
	}
	require.Equal(t, strip(log1), strip(log2), "same seed, same deliveries")
	order := func(ds []Delivery, got []receivedHook) []int {
		seen := map[string]int{}
		for _, d := range ds {
			ordinal(seen, d.GUID)
		}
		var out []int
		for _, h := range got {
			out = append(out, ordinal(seen, h.guid))
		}
		return out
	}
	require.Equal(t, order(log1, got1), order(log2, got2), "same seed, same arrival order")

	f.Seed = 8
	_, log3, _ := runBuilds(t, f, 4)
	require.NotEqual(t, strip(log1), strip(log3), "another seed, other faults")

	var dropped, duplicated, delayed int
	for _, d := range log1 {
		switch {
		case d.Dropped:
			dropped++
		case d.Duplicate:
			duplicated++
		}
		if d.Delayed && !d.Duplicate {
			delayed++
		}
	}
	require.Positive(t, dropped)
	require.Positive(t, duplicated)
	require.Positive(t, delayed)
	require.Len(t, got1, len(log1)-dropped, "every entry not dropped reached the receiver")
}

func TestDropFault(t *testing.T) {
	t.Parallel()
	e, log, got := runBuilds(t, Faults{Seed: 1, Drop: 1}, 1)
	require.Empty(t, got)
	require.Len(t, log, 7) // ping + 6 run/job events
	for _, d := range log {
		require.True(t, d.Dropped)
		require.Zero(t, d.StatusCode)
	}
	// A dropped delivery can be redelivered, as from GitHub's UI.
	require.NoError(t, e.sim.Redeliver(log[len(log)-1].GUID))
	e.sim.Tick()
	got = e.hooks.received()
	require.Len(t, got, 1)
	require.Equal(t, "workflow_run", got[0].event)
	require.Equal(t, "completed", got[0].action)
}

func TestDuplicateFault(t *testing.T) {
	t.Parallel()
	_, log, got := runBuilds(t, Faults{Seed: 1, Duplicate: 1}, 1)
	require.Len(t, got, 14)
	require.Len(t, log, 14)
	for i := 0; i < len(got); i += 2 {
		require.Equal(t, got[i].guid, got[i+1].guid, "a duplicate carries the same X-GitHub-Delivery")
		require.Equal(t, got[i].body, got[i+1].body)
		require.True(t, log[i+1].Duplicate)
	}
}

func TestReorderFault(t *testing.T) {
	t.Parallel()
	// Every delivery held 1 s: nothing arrives before, everything after.
	e := setup(t, func(o *Options) { o.Faults = Faults{Seed: 1, Reorder: 1, ReorderDelay: time.Second} })
	e.dispatch(t, contractInputs("build_01hx0reorder", "linux", "x64", "1.0.0"))
	e.finish()
	require.Empty(t, e.hooks.received())
	require.Equal(t, 7, e.sim.PendingDeliveries())
	e.advance(time.Second)
	require.Len(t, e.hooks.received(), 7)
	require.Zero(t, e.sim.PendingDeliveries())

	// Half of them held: later events overtake earlier ones.
	_, log, got := runBuilds(t, Faults{Seed: 3, Reorder: 0.5, ReorderDelay: 30 * time.Millisecond}, 2)
	require.Len(t, got, len(log))
	inversions := 0
	for i := 1; i < len(log); i++ {
		if log[i].QueuedAt.Before(log[i-1].QueuedAt) {
			inversions++
		}
	}
	require.Positive(t, inversions, "some delivery arrived after a later event")
	for _, d := range log {
		if d.Delayed {
			require.GreaterOrEqual(t, d.DeliveredAt.Sub(d.QueuedAt), 30*time.Millisecond, "held for ReorderDelay")
		}
	}
}

func TestAPI5xxFault(t *testing.T) {
	t.Parallel()
	statuses := func() []int {
		e := setup(t, func(o *Options) { o.Faults = Faults{Seed: 11, API5xx: 0.3} })
		var out []int
		for range 40 {
			_, resp, _ := e.gh.Repositories.Get(e.ctx, testOwner, testName)
			out = append(out, resp.StatusCode)
		}
		c := e.sim.Counters().Endpoints["GET /repos/{owner}/{repo}"]
		n5xx := 0
		for _, s := range out {
			if s >= 500 {
				n5xx++
			}
		}
		require.Equal(t, n5xx, c.ServerErrors)
		require.Equal(t, 40-n5xx, c.Counted, "injected 5xx answers do not count against the rate limit")
		return out
	}
	first, second := statuses(), statuses()
	require.Equal(t, first, second, "same seed, same answers")
	seen := map[int]int{}
	for _, s := range first {
		seen[s]++
	}
	require.Positive(t, seen[500])
	require.Positive(t, seen[502])
	require.InDelta(t, 12, seen[500]+seen[502], 7)
}

func TestAmbiguousFaultActsThenAnswers502(t *testing.T) {
	t.Parallel()
	e := setup(t, func(o *Options) { o.Faults = Faults{Seed: 1, Ambiguous: 1} })
	_, err := e.dispatchRaw(map[string]any{"ref": "main", "inputs": contractInputs("build_01hx0ambiguous", "linux", "x64", "1.0.0"), "return_run_details": true}, nil)
	var ghErr *github.ErrorResponse
	require.ErrorAs(t, err, &ghErr)
	require.Equal(t, http.StatusBadGateway, ghErr.Response.StatusCode)
	require.Len(t, e.sim.Runs(testRepo), 1, "the dispatch took effect")
	_, _, err = e.gh.Repositories.Get(e.ctx, testOwner, testName)
	require.NoError(t, err, "reads are never ambiguous")
}

func TestLatencyFault(t *testing.T) {
	t.Parallel()
	e := setup(t, func(o *Options) { o.Faults = Faults{Latency: 30 * time.Millisecond} })
	start := time.Now()
	_, _, err := e.gh.Repositories.Get(e.ctx, testOwner, testName)
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)
}

func TestRunFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		faults     Faults
		status     string
		conclusion string
		assets     int
	}{
		{"stuck", Faults{Seed: 2, Stuck: 1}, "queued", "", 0},
		{"noasset", Faults{Seed: 2, NoAsset: 1}, "completed", "success", 0},
		{"fail", Faults{Seed: 2, Fail: 1}, "completed", "failure", 0},
		{"none", Faults{Seed: 2}, "completed", "success", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, func(o *Options) { o.Faults = tc.faults })
			d := e.dispatch(t, contractInputs("build_01hx0runfault", "mac", "x64", "1.0.0"))
			e.advance(time.Hour)
			run, _, err := e.gh.Actions.GetWorkflowRunByID(e.ctx, testOwner, testName, d.WorkflowRunID)
			require.NoError(t, err)
			require.Equal(t, tc.status, run.GetStatus())
			require.Equal(t, tc.conclusion, run.GetConclusion())
			n := 0
			for _, r := range e.sim.Releases(testRepo) {
				n += len(r.Assets)
			}
			require.Equal(t, tc.assets, n)
		})
	}

	// A share picks the same runs for the same seed.
	pick := func(seed int64) []string {
		e := setup(t, func(o *Options) { o.Faults = Faults{Seed: seed, Stuck: 0.3, Fail: 0.3} })
		e.sim.SetWebhook("", "") // only the runs matter here
		for i := range 16 {
			e.dispatch(t, contractInputs(fmt.Sprintf("build_01hx0share%02d", i), "linux", "x64", "1.0.0"))
		}
		e.advance(time.Hour)
		var out []string
		for _, r := range e.sim.Runs(testRepo) {
			out = append(out, r.Status+"/"+r.Conclusion)
		}
		return out
	}
	a, b := pick(5), pick(5)
	require.Equal(t, a, b)
	counts := map[string]int{}
	for _, s := range a {
		counts[s]++
	}
	require.Positive(t, counts["queued/"])
	require.Positive(t, counts["completed/failure"])
	require.Positive(t, counts["completed/success"])
	require.NotEqual(t, a, pick(6))
}

func TestRateLimitAndGHESFaultKnobs(t *testing.T) {
	t.Parallel()
	f, err := ParseFaults("primary=3,secondary=1,ratelimit429,ghes")
	require.NoError(t, err)
	e := setup(t, func(o *Options) { o.Faults = f })
	in := contractInputs("build_01hx0knobs", "linux", "x64", "1.0.0")
	resp, err := e.dispatchRaw(map[string]any{"ref": "main", "inputs": in, "return_run_details": true}, nil)
	require.Error(t, err)
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, "ghes")
	resp, err = e.freshClient(testToken).Actions.CreateWorkflowDispatchEventByFileName(e.ctx, testOwner, testName, "deskforge.yml", github.CreateWorkflowDispatchEventRequest{Ref: "main", Inputs: in})
	require.Error(t, err)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "secondary=1 in 429 mode")
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	for range 2 { // the refused GHES dispatch counted; the rate-limited one did not
		_, _, err = e.freshClient(testToken).Repositories.Get(e.ctx, testOwner, testName)
		require.NoError(t, err)
	}
	_, resp, err = e.freshClient(testToken).Repositories.Get(e.ctx, testOwner, testName)
	require.Error(t, err)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "primary=3 in 429 mode")
	require.Equal(t, "0", resp.Header.Get("X-Ratelimit-Remaining"))

	// SetFaults changes the knobs at run time.
	e.sim.SetFaults(Faults{})
	e.clock.Advance(time.Hour)
	_, _, err = e.freshClient(testToken).Repositories.Get(e.ctx, testOwner, testName)
	require.NoError(t, err)
}

// TestDeliveryGUIDsUniquePerSimulator: two simulators with one seed (two
// demos on one database) never send the same X-GitHub-Delivery.
func TestDeliveryGUIDsUniquePerSimulator(t *testing.T) {
	t.Parallel()
	a, b := New(Options{Faults: Faults{Seed: 1}}), New(Options{Faults: Faults{Seed: 1}})
	for seq := range uint64(3) {
		require.Equal(t, a.guid(seq), a.guid(seq), "a delivery and its duplicate share a GUID")
		require.NotEqual(t, a.guid(seq), b.guid(seq))
	}
}
