package ghsim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/templates"
)

const (
	testRepo   = "acme/builder"
	testOwner  = "acme"
	testName   = "builder"
	testToken  = "ghp_simulated_token"
	testSecret = "It's a Secret to Everybody"
)

// testWorkflow is a workflow declaring the contract's inputs and run-name,
// independent of the template files being written elsewhere.
func testWorkflow() []byte {
	var b strings.Builder
	b.WriteString("name: DeskForge build\n")
	fmt.Fprintf(&b, "run-name: %q\n", templates.RunName)
	b.WriteString("on:\n  workflow_dispatch:\n    inputs:\n")
	for _, in := range templates.Inputs {
		fmt.Fprintf(&b, "      %s:\n        description: %s\n        type: string\n        required: %t\n", in.Name, in.Name, in.Required)
	}
	fmt.Fprintf(&b, `permissions:
  contents: write
jobs:
  build:
    name: build ${{ inputs.%s }}-${{ inputs.%s }}
    runs-on: ${{ inputs.%s }}
    steps:
      - uses: actions/checkout@v4
`, templates.InputPlatform, templates.InputArch, templates.InputRunner)
	return []byte(b.String())
}

// hookReceiver is a webhook endpoint that validates every delivery the way
// the server will.
type hookReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []receivedHook
	errs   []error
	status int
}

type receivedHook struct {
	event, action, guid string
	header              http.Header
	body                []byte
	parsed              any
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{status: http.StatusNoContent}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := github.ValidatePayload(r, []byte(testSecret))
		h.mu.Lock()
		defer h.mu.Unlock()
		if err != nil {
			h.errs = append(h.errs, fmt.Errorf("validate payload: %w", err))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		event := github.WebHookType(r)
		parsed, err := github.ParseWebHook(event, body)
		if err != nil {
			h.errs = append(h.errs, fmt.Errorf("parse %s: %w", event, err))
		}
		var action struct {
			Action string `json:"action"`
		}
		_ = json.Unmarshal(body, &action)
		h.got = append(h.got, receivedHook{event: event, action: action.Action, guid: github.DeliveryID(r), header: r.Header.Clone(), body: body, parsed: parsed})
		w.WriteHeader(h.status)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) received() []receivedHook {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]receivedHook(nil), h.got...)
}

func (h *hookReceiver) errors() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.errs...)
}

type env struct {
	sim   *Sim
	clock *FakeClock
	srv   *httptest.Server
	gh    *github.Client
	hooks *hookReceiver
	ctx   context.Context
}

// setup starts a simulator on a fake clock (near the real time, so
// go-github's own rate-limit bookkeeping agrees with the reset headers),
// with FastTiming, the test repository and a webhook receiver.
func setup(t *testing.T, mutate ...func(*Options)) *env {
	t.Helper()
	clock := NewFakeClock(time.Now().UTC().Truncate(time.Second))
	opts := Options{Clock: clock, Timing: FastTiming(), Tokens: []string{testToken}}
	for _, m := range mutate {
		m(&opts)
	}
	sim, srv := NewServer(opts)
	t.Cleanup(srv.Close)
	require.NoError(t, sim.AddRepo(testRepo, RepoOptions{
		Workflows: map[string][]byte{"deskforge.yml": testWorkflow()},
		Branches:  []string{"dev"},
		Files:     map[string][]byte{"README.md": []byte("# builder\n")},
	}))
	hooks := newHookReceiver(t)
	sim.SetWebhook(hooks.srv.URL, testSecret)
	sim.Tick() // deliver the ping
	gh := github.NewClient(nil).WithAuthToken(testToken)
	base, err := url.Parse(srv.URL + "/")
	require.NoError(t, err)
	gh.BaseURL = base
	return &env{sim: sim, clock: clock, srv: srv, gh: gh, hooks: hooks, ctx: context.Background()}
}

func contractInputs(buildID, platform, arch, version string) map[string]any {
	cfg, _ := json.Marshal(templates.BuildConfig{Name: "Acme Notes", URL: "https://notes.acme.test"})
	return map[string]any{
		templates.InputBuildID:  buildID,
		templates.InputPlatform: platform,
		templates.InputArch:     arch,
		templates.InputVersion:  version,
		templates.InputRunner:   templates.DefaultRunners.Runner(platform, arch),
		templates.InputConfig:   string(cfg),
	}
}

type dispatchDetails struct {
	WorkflowRunID int64  `json:"workflow_run_id"`
	RunURL        string `json:"run_url"`
	HTMLURL       string `json:"html_url"`
}

// dispatch asks for run details the way the engine does (go-github v62 has
// no field for return_run_details, so through NewRequest + Do).
func (e *env) dispatch(t *testing.T, inputs map[string]any) dispatchDetails {
	t.Helper()
	var out dispatchDetails
	resp, err := e.dispatchRaw(map[string]any{"ref": "main", "inputs": inputs, "return_run_details": true}, &out)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotZero(t, out.WorkflowRunID)
	return out
}

func (e *env) dispatchRaw(body map[string]any, out any) (*github.Response, error) {
	req, err := e.gh.NewRequest(http.MethodPost, "repos/"+testRepo+"/actions/workflows/deskforge.yml/dispatches", body)
	if err != nil {
		return nil, err
	}
	return e.gh.Do(e.ctx, req, out)
}

// advance moves the clock and lets the simulator catch up.
func (e *env) advance(d time.Duration) {
	e.clock.Advance(d)
	e.sim.Tick()
}

// finish advances past a whole run and the log delay.
func (e *env) finish() {
	t := e.sim.Timing()
	e.advance(t.RunDuration() + t.LogDelay + time.Millisecond)
}
