package github

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gh "github.com/google/go-github/v62/github"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/workflows"
)

func TestValidateWebhook(t *testing.T) {
	t.Parallel()
	// Test vector from GitHub's documentation.
	secret := []byte("It's a Secret to Everybody")
	body := []byte("Hello, World!")
	const good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

	tests := []struct {
		name      string
		signature string
		body      []byte
		secret    []byte
		badSig    bool // error wraps ErrBadSignature
		wantErr   bool
	}{
		{name: "valid", signature: good, body: body, secret: secret},
		{name: "unsigned", signature: "", body: body, secret: secret, badSig: true, wantErr: true},
		{name: "wrong secret", signature: good, body: body, secret: []byte("other"), badSig: true, wantErr: true},
		{name: "tampered body", signature: good, body: []byte("Hello, World?"), secret: secret, badSig: true, wantErr: true},
		{name: "sha1 is refused", signature: "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59", body: body, secret: secret, badSig: true, wantErr: true},
		{name: "not hex", signature: "sha256=zz", body: body, secret: secret, badSig: true, wantErr: true},
		{name: "no prefix", signature: strings.TrimPrefix(good, "sha256="), body: body, secret: secret, badSig: true, wantErr: true},
		{name: "no secret configured", signature: good, body: body, secret: nil, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateWebhook(tt.signature, tt.body, tt.secret)
			if !tt.wantErr {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			if tt.badSig {
				require.ErrorIs(t, err, ErrBadSignature)
			} else {
				require.NotErrorIs(t, err, ErrBadSignature)
			}
		})
	}
}

func TestValidateWebhookOnRealPayload(t *testing.T) {
	t.Parallel()
	payload := readFixture(t, "webhook-workflow-job-completed-1.json")
	secret := []byte("s3cret")
	mac := hmac.New(sha256.New, secret)
	mac.Write(payload)
	require.NoError(t, ValidateWebhook("sha256="+hex.EncodeToString(mac.Sum(nil)), payload, secret))
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "webhooks", name))
	require.NoError(t, err)
	return b
}

// fixtureEventType derives X-GitHub-Event from a fixture's file name.
func fixtureEventType(name string) string {
	for _, event := range []string{"workflow_dispatch", "workflow_run", "workflow_job", "release", "ping"} {
		if strings.HasPrefix(name, "webhook-"+strings.ReplaceAll(event, "_", "-")+"-") {
			return event
		}
	}
	return ""
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestParseWebhookFixtures(t *testing.T) {
	t.Parallel()
	linters := func(conclusion string, steps int) *workflows.Job {
		return &workflows.Job{ID: 289782451, RunID: 2202229078, Name: "linters", Status: "completed", Conclusion: conclusion,
			RunnerName: "GitHub Actions 5", Labels: []string{"ubuntu-latest"},
			StartedAt: utc("2021-08-05T10:34:58Z"), CompletedAt: utc("2021-08-05T10:38:16Z"),
			Steps: make([]workflows.Step, steps)}
	}
	dependabotRun := func(status, conclusion, updated string) *workflows.Run {
		return &workflows.Run{ID: 289782451, Repo: "octo-org/octo-repo",
			DisplayTitle: "ci(action): update actions/setup-node digest to 8c91899", Event: "repository_dispatch",
			Status: status, Conclusion: conclusion, RunAttempt: 1,
			HTMLURL:   "https://github.com/octo-org/octo-repo/actions/runs/289782451",
			CreatedAt: utc("2020-10-05T16:33:24Z"), UpdatedAt: utc(updated)}
	}
	waitingJob := &workflows.Job{ID: 12877621891, RunID: 4747967848, Name: "test", Status: "waiting",
		Labels: []string{"self-hosted", "k8s"}, StartedAt: utc("2023-04-19T21:12:12Z")}

	// want.Job.Steps only fixes the number of steps; their content is checked
	// separately below.
	tests := map[string]workflows.WebhookEvent{
		"webhook-ping-event-1.json":              {Event: "ping", Repo: "Octocoders/Hello-World"},
		"webhook-ping-event-2.json":              {Event: "ping", Repo: "Octocoders/Hello-World"},
		"webhook-ping-event-3.json":              {Event: "ping", Repo: "Octocoders/Hello-World"},
		"webhook-ping-event-4.json":              {Event: "ping"},
		"webhook-release-published-1.json":       {Event: "release", Action: "published", Repo: "Codertocat/Hello-World"},
		"webhook-workflow-dispatch-event-1.json": {Event: "workflow_dispatch", Repo: "octo-org/octo-repo"},
		"webhook-workflow-dispatch-event-2.json": {Event: "workflow_dispatch", Repo: "octo-org/octo-repo"},
		"webhook-workflow-job-completed-1.json": {Event: "workflow_job", Action: "completed", Repo: "Codertocat/Hello-World",
			Job: linters("failure", 12)},
		"webhook-workflow-job-completed-2.json": {Event: "workflow_job", Action: "completed", Repo: "Codertocat/Hello-World",
			Job: linters("success", 8)},
		"webhook-workflow-job-in-progress-1.json": {Event: "workflow_job", Action: "in_progress", Repo: "octo-org/example-workflow",
			Job: &workflows.Job{ID: 2832853555, RunID: 940463255, Name: "Test workflow", Status: "in_progress",
				RunnerName: "my runner", Labels: []string{"gpu", "db-app", "dc-03"}, StartedAt: utc("2021-06-15T19:22:27Z"),
				Steps: make([]workflows.Step, 1)}},
		"webhook-workflow-job-in-progress-2.json": {Event: "workflow_job", Action: "in_progress", Repo: "Codertocat/Hello-World",
			Job: &workflows.Job{ID: 289782451, RunID: 2202229078, Name: "Analyze (javascript)", Status: "in_progress",
				RunnerName: "GitHub Actions 5", Labels: []string{"ubuntu-latest"}, StartedAt: utc("2021-09-13T02:21:13Z"),
				Steps: make([]workflows.Step, 1)}},
		"webhook-workflow-job-in-progress-3.json": {Event: "workflow_job", Action: "in_progress", Repo: "wolfy1339/github-events-schemas",
			Job: &workflows.Job{ID: 14541957942, RunID: 5373506832, Name: "Do examples need to be regenerated?", Status: "in_progress",
				RunnerName: "GitHub Actions 6", Labels: []string{"ubuntu-latest"}, StartedAt: utc("2023-06-26T03:31:36Z"),
				Steps: make([]workflows.Step, 9)}},
		"webhook-workflow-job-queued-1.json": {Event: "workflow_job", Action: "queued", Repo: "Codertocat/Hello-World",
			Job: &workflows.Job{ID: 289782451, RunID: 2202229078, Name: "update", Status: "queued",
				RunnerName: "GitHub Actions 5", Labels: []string{"ubuntu-latest"}, StartedAt: utc("2021-09-13T02:21:13Z")}},
		// Real quirk: action "queued" with status "waiting".
		"webhook-workflow-job-queued-2.json":  {Event: "workflow_job", Action: "queued", Repo: "lineville/elastic-machines-testing", Job: waitingJob},
		"webhook-workflow-job-waiting-1.json": {Event: "workflow_job", Action: "waiting", Repo: "lineville/elastic-machines-testing", Job: waitingJob},
		// Real quirk: action "completed" with status "queued"; the payload's
		// repository differs from the run's.
		"webhook-workflow-run-completed-1.json": {Event: "workflow_run", Action: "completed", Repo: "Codertocat/Hello-World",
			Run: &workflows.Run{ID: 1589141559, Repo: "octo-org/octo-repo", Event: "workflow_dispatch", Status: "queued",
				RunAttempt: 1, HTMLURL: "https://github.com/octo-org/octo-repo/actions/runs/1589141559",
				CreatedAt: utc("2021-12-16T19:37:22Z"), UpdatedAt: utc("2021-12-16T19:37:22Z")}},
		"webhook-workflow-run-completed-2.json": {Event: "workflow_run", Action: "completed", Repo: "octo-org/octo-repo",
			Run: dependabotRun("completed", "success", "2020-10-05T16:33:49Z")},
		"webhook-workflow-run-completed-3.json": {Event: "workflow_run", Action: "completed", Repo: "octo-org/octo-repo",
			Run: dependabotRun("completed", "success", "2020-10-05T16:33:49Z")},
		"webhook-workflow-run-requested-1.json": {Event: "workflow_run", Action: "requested", Repo: "octo-org/octo-repo",
			Run: dependabotRun("queued", "", "2020-10-05T16:33:24Z")},
		"webhook-workflow-run-requested-2.json": {Event: "workflow_run", Action: "requested", Repo: "octo-org/octo-repo",
			Run: dependabotRun("completed", "action_required", "2020-10-05T16:33:24Z")},
	}

	files, err := filepath.Glob(filepath.Join("testdata", "webhooks", "*.json"))
	require.NoError(t, err)
	require.Len(t, files, len(tests), "every fixture has an expectation")
	for _, path := range files {
		name := filepath.Base(path)
		want, ok := tests[name]
		require.True(t, ok, "no expectation for %s", name)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseWebhook(fixtureEventType(name), readFixture(t, name))
			require.NoError(t, err)
			if got.Job != nil && want.Job != nil {
				require.Len(t, got.Job.Steps, len(want.Job.Steps))
				for i, s := range got.Job.Steps {
					if i > 0 {
						require.Greater(t, s.Number, got.Job.Steps[i-1].Number, "steps keep their order")
					}
					require.NotEmpty(t, s.Name)
					require.NotEmpty(t, s.Status)
				}
				gotJob, wantJob := *got.Job, *want.Job
				gotJob.Steps, wantJob.Steps = nil, nil
				got.Job, want.Job = &gotJob, &wantJob
			}
			require.Equal(t, want, got)
		})
	}
}

func TestParseWebhookSteps(t *testing.T) {
	t.Parallel()
	got, err := ParseWebhook("workflow_job", readFixture(t, "webhook-workflow-job-in-progress-3.json"))
	require.NoError(t, err)
	require.Equal(t, workflows.Step{Number: 1, Name: "Set up job", Status: "completed", Conclusion: "success",
		StartedAt: utc("2023-06-26T03:31:35Z"), CompletedAt: utc("2023-06-26T03:31:36Z")}, got.Job.Steps[0])
	last := got.Job.Steps[len(got.Job.Steps)-1]
	require.NotEqual(t, "completed", last.Status, "a job in progress has a step not completed yet")
	require.True(t, last.CompletedAt.IsZero())
}

func TestParseWebhookRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, event, payload string
	}{
		{"no event type", "", `{}`},
		{"not json", "workflow_run", `{"action":`},
		{"not an object", "workflow_job", `[1,2]`},
		{"run missing", "workflow_run", `{"action":"completed"}`},
		{"job missing", "workflow_job", `{"action":"queued","repository":{"full_name":"o/r"}}`},
		{"wrong field type", "workflow_run", `{"action":"completed","workflow_run":{"id":"five"}}`},
		{"other event not json", "release", `nope`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseWebhook(tt.event, []byte(tt.payload))
			require.Error(t, err)
		})
	}
}

// parseWebhookViaGoGitHub is how ParseWebhook used to work: the common
// fields, then go-github's ParseWebHook in full. It is the reference the
// one-pass decoding must agree with.
func parseWebhookViaGoGitHub(eventType string, payload []byte) (workflows.WebhookEvent, error) {
	if eventType == "" {
		return workflows.WebhookEvent{}, errors.New("no event type")
	}
	var common webhookCommon
	if err := json.Unmarshal(payload, &common); err != nil {
		return workflows.WebhookEvent{}, err
	}
	event := workflows.WebhookEvent{Event: eventType, Action: common.Action}
	if common.Repository != nil {
		event.Repo = common.Repository.FullName
	}
	switch eventType {
	case "workflow_run", "workflow_job":
	default:
		return event, nil
	}
	parsed, err := gh.ParseWebHook(eventType, payload)
	if err != nil {
		return workflows.WebhookEvent{}, err
	}
	switch e := parsed.(type) {
	case *gh.WorkflowRunEvent:
		if e.WorkflowRun == nil {
			return workflows.WebhookEvent{}, errors.New("no workflow_run")
		}
		run := runFromGitHub(e.WorkflowRun, event.Repo)
		if event.Repo == "" {
			event.Repo = run.Repo
		}
		event.Run = &run
	case *gh.WorkflowJobEvent:
		if e.WorkflowJob == nil {
			return workflows.WebhookEvent{}, errors.New("no workflow_job")
		}
		job := jobFromGitHub(e.WorkflowJob)
		event.Job = &job
	}
	return event, nil
}

func TestParseWebhookMatchesGoGitHub(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "webhooks", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	extra := map[string]string{
		"null steps and labels": `{"workflow_job":{"steps":[null,{"number":2,"started_at":null}],"labels":null}}`,
		"unix timestamps":       `{"workflow_run":{"created_at":12345,"updated_at":1700000000000,"repository":null}}`,
		"nulls everywhere":      `{"action":null,"repository":null,"workflow_run":{"id":null,"status":null,"run_attempt":null}}`,
		"empty run repository":  `{"repository":{"full_name":"a/b"},"workflow_run":{"repository":{"full_name":""}}}`,
	}
	cases := map[string][2]string{}
	for _, path := range files {
		name := filepath.Base(path)
		cases[name] = [2]string{fixtureEventType(name), string(readFixture(t, name))}
	}
	for name, payload := range extra {
		event := "workflow_run"
		if strings.Contains(payload, "workflow_job") {
			event = "workflow_job"
		}
		cases[name] = [2]string{event, payload}
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, err := parseWebhookViaGoGitHub(c[0], []byte(c[1]))
			require.NoError(t, err)
			got, err := ParseWebhook(c[0], []byte(c[1]))
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
}

func TestParseWebhookReplacesNUL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		event, payload string
		check          func(t *testing.T, ev workflows.WebhookEvent)
	}{
		{"workflow_run", `{"action":"completed","repository":{"full_name":"a/b\u0000"},"workflow_run":{"id":1,"display_title":"deskforge build_1\u0000","status":"comp\u0000leted","conclusion":"\u0000"}}`,
			func(t *testing.T, ev workflows.WebhookEvent) {
				require.Equal(t, "a/b\uFFFD", ev.Repo)
				require.Equal(t, "a/b\uFFFD", ev.Run.Repo)
				require.Equal(t, "deskforge build_1\uFFFD", ev.Run.DisplayTitle)
				require.Equal(t, "comp\uFFFDleted", ev.Run.Status)
				require.Equal(t, "\uFFFD", ev.Run.Conclusion)
			}},
		{"workflow_job", `{"action":"q\u0000","workflow_job":{"id":1,"run_id":2,"name":"\u0000b","labels":["ubuntu\u0000"],"runner_name":"r\u0000","steps":[{"number":1,"name":"s\u0000","status":"\u0000"}]}}`,
			func(t *testing.T, ev workflows.WebhookEvent) {
				require.Equal(t, "q\uFFFD", ev.Action)
				require.Equal(t, "\uFFFDb", ev.Job.Name)
				require.Equal(t, []string{"ubuntu\uFFFD"}, ev.Job.Labels)
				require.Equal(t, "r\uFFFD", ev.Job.RunnerName)
				require.Equal(t, "s\uFFFD", ev.Job.Steps[0].Name)
				require.Equal(t, "\uFFFD", ev.Job.Steps[0].Status)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.event, func(t *testing.T) {
			t.Parallel()
			ev, err := ParseWebhook(tt.event, []byte(tt.payload))
			require.NoError(t, err)
			tt.check(t, ev)
			data, err := json.Marshal(ev)
			require.NoError(t, err)
			require.NotContains(t, string(data), `\u0000`)
		})
	}
}

// BenchmarkParseWebhook parses the payload bench/webhooks sends.
func BenchmarkParseWebhook(b *testing.B) {
	for _, name := range []string{"webhook-workflow-job-in-progress-1.json", "webhook-workflow-job-completed-1.json", "webhook-workflow-run-completed-2.json"} {
		payload := readFixture(b, name)
		event := fixtureEventType(name)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseWebhook(event, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/go-github", func(b *testing.B) {
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parseWebhookViaGoGitHub(event, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func FuzzParseWebhook(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "webhooks", "*.json"))
	require.NoError(f, err)
	for _, path := range files {
		name := filepath.Base(path)
		f.Add(fixtureEventType(name), readFixture(f, name))
	}
	f.Add("workflow_job", []byte(`{"workflow_job":{"steps":[null,{}],"labels":null}}`))
	f.Add("workflow_run", []byte(`{"workflow_run":{"created_at":12345,"repository":null}}`))
	f.Fuzz(func(t *testing.T, event string, payload []byte) {
		got, err := ParseWebhook(event, payload)
		if ref, refErr := parseWebhookViaGoGitHub(event, payload); refErr == nil {
			// Whatever go-github's full decoding accepts parses to the same
			// event, but for NUL characters, which ParseWebhook replaces.
			if err != nil {
				t.Fatalf("go-github parses the payload, ParseWebhook fails: %v", err)
			}
			gotJSON, _ := json.Marshal(got)
			refJSON, _ := json.Marshal(ref)
			refJSON = bytes.ReplaceAll(refJSON, []byte(`\u0000`), []byte("\uFFFD"))
			if !bytes.Equal(gotJSON, refJSON) {
				t.Fatalf("ParseWebhook = %s, go-github gives %s", gotJSON, refJSON)
			}
		}
		if err != nil {
			return
		}
		if data, _ := json.Marshal(got); bytes.Contains(data, []byte(`\u0000`)) {
			t.Fatalf("parsed event holds a NUL character, which PostgreSQL's jsonb refuses: %s", data)
		}
		if got.Event != event {
			t.Fatalf("Event = %q, want %q", got.Event, event)
		}
		if got.Run != nil && event != "workflow_run" || got.Job != nil && event != "workflow_job" {
			t.Fatalf("%s event parsed with run %v job %v", event, got.Run, got.Job)
		}
	})
}
