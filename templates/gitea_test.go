package templates_test

import (
	"io"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/deskforge/deskforge/templates"
)

// The Gitea variants are tested here, apart from the GitHub templates
// (templates.Names() does not list them): they keep the contract, need
// nothing from github.com and upload through Gitea's API. The upload step
// itself runs against a real Gitea in e2e/gitea_test.go.

func loadGiteaWorkflow(t *testing.T, name string) (*workflow, []byte) {
	t.Helper()
	content, err := templates.GetFor(templates.ForgeGitea, name)
	require.NoError(t, err)
	var w workflow
	require.NoError(t, yaml.Unmarshal(content, &w))
	return &w, content
}

func TestGiteaTemplatesKeepTheContract(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"webapp"}, templates.GiteaNames())
	for _, name := range templates.GiteaNames() {
		w, content := loadGiteaWorkflow(t, name)
		require.Equal(t, templates.RunName, w.RunName)
		j := w.theJob(t)
		require.Equal(t, "${{ inputs."+templates.InputRunner+" }}", j.RunsOn)
		require.Equal(t, [][2]string{{"contents", "write"}}, pairs(t, w.Permissions), "the job token writes releases, nothing else")

		var inputs []string
		var dispatch struct {
			On struct {
				WorkflowDispatch struct {
					Inputs yaml.Node `yaml:"inputs"`
				} `yaml:"workflow_dispatch"`
			} `yaml:"on"`
		}
		require.NoError(t, yaml.Unmarshal(content, &dispatch))
		for _, kv := range pairsNodes(dispatch.On.WorkflowDispatch.Inputs) {
			inputs = append(inputs, kv[0].Value)
		}
		var want []string
		for _, in := range templates.Inputs {
			want = append(want, in.Name)
		}
		require.Equal(t, want, inputs)

		// The GitHub template's steps that do not touch GitHub are the same.
		github := loadWorkflow(t, name).theJob(t)
		same := map[string]string{}
		for _, s := range github.Steps {
			same[s.Name] = s.Run
		}
		for _, s := range j.Steps {
			require.Empty(t, s.Uses, "step %q: no uses: (DEFAULT_ACTIONS_URL=self reaches no github.com)", s.Name)
			require.NotContains(t, s.Run, "${{", "step %q: values go through env:", s.Name)
			require.NotContains(t, s.Run, "gh api", "step %q: no GitHub CLI", s.Name)
			switch s.Name {
			case "Check Node.js", "Upload to release":
			default:
				require.Equal(t, same[s.Name], s.Run, "step %q is the GitHub template's", s.Name)
			}
		}
	}
}

func TestGiteaTemplateUploadsThroughGiteasAPI(t *testing.T) {
	t.Parallel()
	w, _ := loadGiteaWorkflow(t, "webapp")
	var upload *step
	for _, s := range w.theJob(t).Steps {
		if s.Name == "Upload to release" {
			upload = s
		}
	}
	require.NotNil(t, upload)
	env := map[string]string{}
	for _, kv := range pairs(t, upload.Env) {
		env[kv[0]] = kv[1]
	}
	require.Equal(t, "${{ secrets.GITHUB_TOKEN }}", env["TOKEN"], "the job token")
	for _, want := range []string{
		`api="${GITHUB_API_URL%/}/repos/$GITHUB_REPOSITORY/releases"`,
		`"$api/tags/$RELEASE_TAG"`,
		`\"draft\":true`,
		`-X DELETE -H "$auth" "$api/$release_id/assets/$old"`,
		`"$api/$release_id/assets?name=$1"`,
		`upload "$ASSET_NAME" "$ASSET_PATH"`,
		`upload "$ASSET_NAME.sha256" "$ASSET_PATH.sha256"`,
		`a published release is never changed`,
	} {
		require.Contains(t, upload.Run, want)
	}
}

func TestGiteaTemplatesPassActionlint(t *testing.T) {
	t.Parallel()
	shellcheck := externalLinter(t, "shellcheck")
	for _, name := range templates.GiteaNames() {
		_, content := loadGiteaWorkflow(t, name)
		linter, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{Shellcheck: shellcheck})
		require.NoError(t, err)
		findings, err := linter.Lint(".github/workflows/"+name+".yml", content, nil)
		require.NoError(t, err)
		var report []string
		for _, f := range findings {
			report = append(report, f.Error())
		}
		require.Empty(t, report, "actionlint findings in gitea/%s.yml:\n%s", name, strings.Join(report, "\n"))
	}
}

func TestToGiteaFollowsTheGitHubTemplate(t *testing.T) {
	t.Parallel()
	src, err := templates.Get("webapp")
	require.NoError(t, err)
	out, err := templates.ToGitea(src)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(out), "# Gitea/Forgejo variant"))
	require.Contains(t, string(out), string(src[:strings.Index(string(src), "\n    steps:\n")]), "everything before the steps is the GitHub template's")

	// A new step using an action, or a replaced step gone, fails loudly.
	withAction := strings.Replace(string(src), "      - name: Check build config\n",
		"      - name: New action\n        uses: actions/new@v1\n\n      - name: Check build config\n", 1)
	_, err = templates.ToGitea([]byte(withAction))
	require.ErrorContains(t, err, `step "New action" uses an action and has no Gitea replacement`)
	withoutUpload := strings.Replace(string(src), "      - name: Upload to release\n", "      - name: Upload elsewhere\n", 1)
	_, err = templates.ToGitea([]byte(withoutUpload))
	require.ErrorContains(t, err, `no step "Upload to release" to replace`)
}

func TestGetForUnknown(t *testing.T) {
	t.Parallel()
	_, err := templates.GetFor(templates.ForgeGitea, "electron-app")
	require.ErrorContains(t, err, `template "electron-app" has no Gitea variant (have webapp)`)
	_, err = templates.GetFor("gitlab", "webapp")
	require.ErrorContains(t, err, `forge "gitlab"`)
	github, err := templates.GetFor(templates.ForgeGitHub, "webapp")
	require.NoError(t, err)
	plain, _ := templates.Get("webapp")
	require.Equal(t, plain, github)
}
