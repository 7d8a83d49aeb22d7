package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/client"
	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/templates"
	"github.com/deskforge/deskforge/workflows"
	"github.com/deskforge/deskforge/workflows/ghsim"
)

// TestDispatchRefusedByGitHub (workflows/github/ANSWERS.md): GitHub
// refuses a dispatch with an answer asking again cannot change (a token
// that may not write: 403; a workflow without a workflow_dispatch trigger,
// a branch that does not exist: 422). Through DeskForge, River, go-github
// and the simulator, the build fails at once with GitHub's reason, the
// dispatch is sent once and never retried, and no run exists.
func TestDispatchRefusedByGitHub(t *testing.T) {
	t.Parallel()
	noDispatchTrigger := []byte("name: DeskForge build\non:\n  push:\n    branches: [main]\njobs:\n  build:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo\n")
	tests := []struct {
		name    string
		faults  ghsim.Faults
		prepare func(h *harness) (projectID, key string)
		repo    string
		message string // GitHub's, quoted in the reason
	}{
		{name: "403 token cannot write", faults: ghsim.Faults{ReadOnly: true}, repo: builderRepo,
			message: "Resource not accessible by personal access token"},
		{name: "422 no workflow_dispatch trigger", repo: builderRepo, message: "Workflow does not have 'workflow_dispatch' trigger",
			prepare: func(h *harness) (string, string) {
				require.NoError(h.t, h.sim.SetFile(builderRepo, "main", templates.InstallPath, noDispatchTrigger))
				return h.project.ID, h.apiKey
			}},
		{name: "422 unknown ref", repo: appRepo, message: "No ref found for: release/9",
			prepare: func(h *harness) (string, string) {
				p := models.Project{Name: "Desk", Repository: appRepo, Ref: "release/9", Version: "1.0.0", Platforms: "linux"}
				require.NoError(h.t, h.store.CreateProject(h.ctx, &p))
				_, key, err := h.store.CreateAPIKey(h.ctx, models.NewAPIKeyParams{Name: "desk", Role: models.RoleProject, ProjectID: p.ID})
				require.NoError(h.t, err)
				h.apiKey = key // the harness reads builds and logs with it
				return p.ID, key
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, config{webhooks: true, faults: tt.faults})
			projectID, key := h.project.ID, h.apiKey
			if tt.prepare != nil {
				projectID, key = tt.prepare(h)
			}
			trig, err := h.typedWith(key).TriggerBuild(h.ctx, projectID, client.TriggerRequest{Platform: "linux", Arch: "x64", Version: "6.0.0"})
			require.NoError(t, err)

			got := h.waitTerminal(90*time.Second, trig.ID)[trig.ID]
			require.Equal(t, "failed", got.Status)
			require.NotNil(t, got.Error)
			require.Equal(t, workflows.ErrorDispatchRefused, got.Error.Code)
			require.Contains(t, got.Error.Message, "GitHub refused to dispatch deskforge.yml in "+tt.repo)
			require.Contains(t, got.Error.Message, tt.message)
			require.Equal(t, []string{">queued", "queued>failed"}, h.transitions(trig.ID))
			logs := h.logs(trig.ID)
			require.Equal(t, "Build failed: "+got.Error.Message, logs[len(logs)-1].Message)
			require.False(t, hasEntry(logs, "warning", "Dispatch attempt"), "not retried: %v", logs)

			// Give River time to retry, had it been told to: still one request.
			time.Sleep(time.Second)
			dispatches := h.sim.Counters().Endpoints["POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches"]
			require.Equal(t, 1, dispatches.Requests, "sent once")
			require.Empty(t, h.runsByBuild())
		})
	}
}
