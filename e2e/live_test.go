package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/client"
	"github.com/deskforge/deskforge/workflows/ghsim"
)

// liveEvent is one event of a build's stream, with when it arrived.
type liveEvent struct {
	id, event, data string
	at              time.Time
}

// follow reads GET /builds/:id/events to its end.
func (h *harness) follow(id string) []liveEvent {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.dfURL+"/builds/"+id+"/events", nil)
	require.NoError(h.t, err)
	req.Header.Set("Authorization", "Bearer "+h.apiKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	require.Equal(h.t, http.StatusOK, resp.StatusCode)
	var out []liveEvent
	var ev liveEvent
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "" && ev.event != "":
			ev.at = time.Now()
			out = append(out, ev)
			ev = liveEvent{}
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
	require.NoError(h.t, sc.Err(), "the stream ends cleanly after the terminal status")
	return out
}

// TestWatchABuildLive follows a build from the moment it is triggered: its
// status, its steps as they run (read from the jobs endpoint between
// GitHub's job_started and job_completed webhooks), and its log, each once
// and in order.
func TestWatchABuildLive(t *testing.T) {
	t.Parallel()
	timing := ghsim.Timing{Queued: 300 * time.Millisecond, PerStep: time.Second, LogDelay: 50 * time.Millisecond, TickInterval: 10 * time.Millisecond}
	h := newHarness(t, config{webhooks: true, timing: &timing, stepPoll: 150 * time.Millisecond, staleAfter: time.Minute})
	b := h.trigger("mac", "arm64", "1.0.0")
	events := h.follow(b.ID)

	var statuses, steps []string
	var seqs []int
	var stepAt = map[string]time.Time{}
	var progressed bool
	for _, ev := range events {
		switch ev.event {
		case "status":
			var got client.Build
			require.NoError(t, json.Unmarshal([]byte(ev.data), &got))
			statuses = append(statuses, got.Status)
		case "log":
			var l struct {
				Seq     int
				Message string
			}
			require.NoError(t, json.Unmarshal([]byte(ev.data), &l))
			require.Equal(t, fmt.Sprint(l.Seq), ev.id)
			seqs = append(seqs, l.Seq)
			if strings.HasPrefix(l.Message, "Step ") {
				steps = append(steps, l.Message)
				stepAt[l.Message] = ev.at
			}
		case "progress":
			progressed = progressed || strings.Contains(ev.data, `"step":3`)
		}
	}
	require.Equal(t, []string{"queued", "building", "success"}, statuses)
	for i, n := range seqs {
		require.Equal(t, i+1, n, "log entries 1..n, none missing, none twice")
	}
	require.Equal(t, []string{
		"Step 1/6 started: Set up job", "Step 1/6 finished (1 s)",
		"Step 2/6 started: Run actions/checkout@v4", "Step 2/6 finished (1 s)",
	}, steps[:4])
	require.Len(t, steps, 12, "six steps, each started and finished once: %q", steps)
	require.True(t, progressed, "a progress event for step 3")

	// Live: the middle steps arrived while the job ran, seconds before the
	// job_completed webhook reported them all.
	require.Less(t, stepAt[steps[4]].Add(2*time.Second), stepAt[steps[11]], "%q came with the last step", steps[4])
	final := h.get(b.ID)
	require.Equal(t, "success", final.Status)

	// The whole log, read again, has each step entry once.
	count := map[string]int{}
	for _, l := range h.logs(b.ID) {
		count[l.Message]++
	}
	for _, s := range steps {
		require.Equal(t, 1, count[s], s)
	}
}

// TestStepFollowingCost measures the GitHub requests that following steps
// adds per build (BENCHMARKS.md): the demo's pace (6 steps of 3 s, read
// every 8 s) scaled down tenfold, with webhooks on. Only answers other than
// 304 count against GitHub's rate limit.
func TestStepFollowingCost(t *testing.T) {
	t.Parallel()
	const builds = 6
	timing := ghsim.Timing{Queued: 200 * time.Millisecond, PerStep: 300 * time.Millisecond, LogDelay: 20 * time.Millisecond, TickInterval: 10 * time.Millisecond}
	jobsReads := func(stepPoll time.Duration) ghsim.EndpointCounter {
		h := newHarness(t, config{webhooks: true, timing: &timing, stepPoll: stepPoll, staleAfter: time.Minute})
		ids := make([]string, builds)
		for i := range ids {
			ids[i] = h.trigger("linux", "x64", fmt.Sprintf("1.0.%d", i)).ID
		}
		for _, b := range h.waitTerminal(30*time.Second, ids...) {
			require.Equal(t, "success", b.Status)
		}
		return h.sim.Counters().Endpoints["GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs"]
	}
	without := jobsReads(time.Hour) // the follower never gets its turn
	with := jobsReads(800 * time.Millisecond)
	extra := float64(with.Counted-without.Counted) / builds
	t.Logf("jobs endpoint per build: without following %d counted; with following %.1f requests, %.1f counted (%.1f extra), %.1f answered 304",
		without.Counted/builds, float64(with.Requests)/builds, float64(with.Counted)/builds, extra, float64(with.NotModified)/builds)
	require.LessOrEqual(t, extra, 4.0, "a read every 800 ms of a 1.8 s job sees at most a few changes")
}
