package ghsim

import (
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-github/v62/github"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/templates"
)

func TestSignatureMatchesGitHubTestVector(t *testing.T) {
	t.Parallel()
	// From GitHub's documentation on validating webhook deliveries.
	require.Equal(t, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
		signature(sha256.New, "sha256=", []byte("It's a Secret to Everybody"), []byte("Hello, World!")))
}

// fixtureKeys loads the real payloads whose file names start with prefix.
func fixtures(t *testing.T, prefix string) []map[string]any {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "github-webhooks", prefix+"*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, paths, prefix)
	var out []map[string]any
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m), p)
		out = append(out, m)
	}
	return out
}

// missingKeys lists the keys (as paths) that real carries and ours lacks,
// recursing into objects and into the first element of arrays of objects.
// A null on our side is accepted where GitHub sends an object for some
// repositories only (license, description...).
func missingKeys(path string, real, ours any) []string {
	var missing []string
	switch r := real.(type) {
	case map[string]any:
		o, isMap := ours.(map[string]any)
		if !isMap {
			return nil
		}
		for k, rv := range r {
			ov, has := o[k]
			if !has {
				missing = append(missing, path+"."+k)
				continue
			}
			missing = append(missing, missingKeys(path+"."+k, rv, ov)...)
		}
	case []any:
		o, isList := ours.([]any)
		if !isList || len(r) == 0 || len(o) == 0 {
			return nil
		}
		for _, rv := range r {
			missing = append(missing, missingKeys(path+"[]", rv, o[0])...)
		}
	}
	return missing
}

// conditionalKeys are top-level keys GitHub sends only in some setups:
// deployment for jobs that reference an environment (the templates do not).
var conditionalKeys = map[string]bool{".deployment": true}

func TestWebhooksCarryGitHubKeysAndValidate(t *testing.T) {
	t.Parallel()
	e := setup(t, func(o *Options) { o.Scenario = []Rule{{Platform: "windows", Outcome: OutcomeFailure}} })
	ok := e.dispatch(t, contractInputs("build_01hx0hooks", "mac", "arm64", "1.0.0"))
	failed := e.dispatch(t, contractInputs("build_01hx0hookf", "windows", "x64", "1.0.0"))
	e.finish()
	require.Empty(t, e.hooks.errors())

	got := e.hooks.received()
	byKind := map[string][]receivedHook{}
	for _, h := range got {
		byKind[h.event+"/"+h.action] = append(byKind[h.event+"/"+h.action], h)
	}
	fixtureFor := map[string]string{
		"ping/":                    "webhook-ping-event-", // 1-3 are repository hooks; 4 (an org hook) has no repository
		"workflow_run/requested":   "webhook-workflow-run-requested-",
		"workflow_run/in_progress": "webhook-workflow-run-",
		"workflow_run/completed":   "webhook-workflow-run-completed-",
		"workflow_job/queued":      "webhook-workflow-job-queued-",
		"workflow_job/in_progress": "webhook-workflow-job-in-progress-",
		"workflow_job/completed":   "webhook-workflow-job-completed-",
	}
	for kind, prefix := range fixtureFor {
		hooks := byKind[kind]
		require.NotEmpty(t, hooks, "no %s delivery", kind)
		for _, real := range fixtures(t, prefix) {
			if kind == "ping/" && real["repository"] == nil {
				continue
			}
			for _, h := range hooks {
				var ours map[string]any
				require.NoError(t, json.Unmarshal(h.body, &ours))
				var missing []string
				for _, m := range missingKeys("", real, ours) {
					if !conditionalKeys[m] {
						missing = append(missing, m)
					}
				}
				require.Empty(t, missing, "%s lacks keys of the real payload", kind)
			}
		}
	}

	// Headers as GitHub sends them.
	guid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for _, h := range got {
		require.Regexp(t, guid, h.guid)
		require.NotEmpty(t, h.header.Get("X-GitHub-Hook-ID"))
		require.True(t, strings.HasPrefix(h.header.Get("User-Agent"), "GitHub-Hookshot/"))
		require.True(t, strings.HasPrefix(h.header.Get("X-Hub-Signature-256"), "sha256="))
		require.Equal(t, "application/json", h.header.Get("Content-Type"))
	}

	// Parsed with go-github, the fields the engine reads hold the run's values.
	runs := map[int64]*github.WorkflowRun{}
	for _, h := range byKind["workflow_run/completed"] {
		ev, isRun := h.parsed.(*github.WorkflowRunEvent)
		require.True(t, isRun, "%T", h.parsed)
		runs[ev.WorkflowRun.GetID()] = ev.WorkflowRun
	}
	require.Equal(t, "success", runs[ok.WorkflowRunID].GetConclusion())
	require.Equal(t, "failure", runs[failed.WorkflowRunID].GetConclusion())
	require.Equal(t, templates.DisplayTitle("build_01hx0hooks", "mac", "arm64", "1.0.0"), runs[ok.WorkflowRunID].GetDisplayTitle())
	require.Equal(t, 1, runs[ok.WorkflowRunID].GetRunAttempt())
	require.False(t, runs[ok.WorkflowRunID].GetUpdatedAt().IsZero())
	for _, h := range byKind["workflow_job/completed"] {
		ev, isJob := h.parsed.(*github.WorkflowJobEvent)
		require.True(t, isJob, "%T", h.parsed)
		j := ev.WorkflowJob
		require.Contains(t, []int64{ok.WorkflowRunID, failed.WorkflowRunID}, j.GetRunID())
		require.Len(t, j.Labels, 1)
		require.Regexp(t, `^GitHub Actions \d+$`, j.GetRunnerName())
		require.Len(t, j.Steps, 6)
		require.False(t, j.GetStartedAt().IsZero())
		require.False(t, j.GetCompletedAt().IsZero())
		require.Equal(t, testRepo, ev.Repo.GetFullName())
		require.NotZero(t, ev.Installation.GetID())
	}
	ping, isPing := byKind["ping/"][0].parsed.(*github.PingEvent)
	require.True(t, isPing)
	require.NotEmpty(t, ping.GetZen())
	require.Equal(t, ping.GetHookID(), ping.Hook.GetID())

	// Per run, the events arrive in GitHub's order when no fault reorders them.
	var order []string
	for _, h := range got {
		if h.event == "ping" {
			continue
		}
		var p struct {
			WorkflowRun *struct{ ID int64 } `json:"workflow_run"`
			WorkflowJob *struct {
				RunID int64 `json:"run_id"`
			} `json:"workflow_job"`
		}
		require.NoError(t, json.Unmarshal(h.body, &p))
		if (p.WorkflowRun != nil && p.WorkflowRun.ID == ok.WorkflowRunID) || (p.WorkflowJob != nil && p.WorkflowJob.RunID == ok.WorkflowRunID) {
			order = append(order, h.event+"/"+h.action)
		}
	}
	require.Equal(t, []string{
		"workflow_run/requested", "workflow_job/queued", "workflow_job/in_progress",
		"workflow_run/in_progress", "workflow_job/completed", "workflow_run/completed",
	}, order)

	// The delivery log records each attempt with the receiver's answer.
	log := e.sim.Deliveries()
	require.Len(t, log, len(got))
	for i, d := range log {
		require.Equal(t, got[i].guid, d.GUID)
		require.Equal(t, 204, d.StatusCode)
		require.Equal(t, int64(i+1), d.ID)
	}
}

func TestRedeliverKeepsTheDeliveryID(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.dispatch(t, contractInputs("build_01hx0redeliver", "linux", "x64", "1.0.0"))
	e.sim.Tick()
	log := e.sim.Deliveries()
	require.Len(t, log, 3) // ping, requested, queued
	first := log[1]
	require.NoError(t, e.sim.Redeliver(first.GUID))
	require.Equal(t, 1, e.sim.PendingDeliveries())
	e.sim.Tick()
	got := e.hooks.received()
	last := got[len(got)-1]
	require.Equal(t, first.GUID, last.guid)
	require.Equal(t, first.Payload, last.body)
	log = e.sim.Deliveries()
	require.True(t, log[len(log)-1].Redelivery)
	require.Error(t, e.sim.Redeliver("00000000-0000-4000-8000-000000000000"))
}

func TestFailedDeliveriesAreNotRetried(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.hooks.mu.Lock()
	e.hooks.status = 500
	e.hooks.mu.Unlock()
	e.dispatch(t, contractInputs("build_01hx0noretry", "linux", "x64", "1.0.0"))
	e.finish()
	e.advance(24 * 60 * 60 * 1e9)
	seen := map[string]int{}
	for _, d := range e.sim.Deliveries()[1:] {
		require.Equal(t, 500, d.StatusCode)
		seen[d.GUID]++
	}
	for guid, n := range seen {
		require.Equal(t, 1, n, "delivery %s was retried", guid)
	}
	require.Len(t, seen, 6)
}

func TestDeliveryToAnUnreachableTargetIsLogged(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.sim.SetWebhook("http://127.0.0.1:1/unreachable", testSecret)
	e.sim.Tick()
	log := e.sim.Deliveries()
	last := log[len(log)-1]
	require.Equal(t, "ping", last.Event)
	require.Zero(t, last.StatusCode)
	require.NotEmpty(t, last.Error)
}
