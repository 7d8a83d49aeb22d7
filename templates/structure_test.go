package templates_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/deskforge/deskforge/templates"
)

// workflow is the part of a template the structural tests read.
type workflow struct {
	Name        string    `yaml:"name"`
	RunName     string    `yaml:"run-name"`
	On          yaml.Node `yaml:"on"`
	Permissions yaml.Node `yaml:"permissions"`
	Concurrency struct {
		Group            string `yaml:"group"`
		CancelInProgress bool   `yaml:"cancel-in-progress"`
	} `yaml:"concurrency"`
	Jobs map[string]*job `yaml:"jobs"`
}

type job struct {
	RunsOn         string    `yaml:"runs-on"`
	TimeoutMinutes int       `yaml:"timeout-minutes"`
	Env            yaml.Node `yaml:"env"`
	Defaults       struct {
		Run struct {
			Shell string `yaml:"shell"`
		} `yaml:"run"`
	} `yaml:"defaults"`
	Steps []*step `yaml:"steps"`
}

type step struct {
	ID    string            `yaml:"id"`
	Name  string            `yaml:"name"`
	If    string            `yaml:"if"`
	Uses  string            `yaml:"uses"`
	With  map[string]string `yaml:"with"`
	Env   yaml.Node         `yaml:"env"`
	Run   string            `yaml:"run"`
	Shell string            `yaml:"shell"`
}

// pairs maps a yaml mapping node to its ordered key/value strings.
func pairs(t *testing.T, n yaml.Node) [][2]string {
	t.Helper()
	if n.Kind == 0 {
		return nil
	}
	require.Equal(t, yaml.MappingNode, n.Kind, "expected a mapping at line %d", n.Line)
	var out [][2]string
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, [2]string{n.Content[i].Value, n.Content[i+1].Value})
	}
	return out
}

func loadWorkflow(t *testing.T, name string) *workflow {
	t.Helper()
	content, err := templates.Get(name)
	require.NoError(t, err)
	var w workflow
	require.NoError(t, yaml.Unmarshal(content, &w), "parse %s", name)
	return &w
}

// theJob returns a template's one job: the engine correlates one job per run.
func (w *workflow) theJob(t *testing.T) *job {
	t.Helper()
	require.Len(t, w.Jobs, 1, "a template has exactly one job")
	for _, j := range w.Jobs {
		return j
	}
	return nil
}

func TestTemplatesDeclareContractInputs(t *testing.T) {
	t.Parallel()
	for _, name := range templates.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := loadWorkflow(t, name)
			require.Equal(t, yaml.MappingNode, w.On.Kind, "on: must be a mapping")
			var triggers []string
			var dispatch *yaml.Node
			for _, kv := range pairsNodes(w.On) {
				triggers = append(triggers, kv[0].Value)
				if kv[0].Value == "workflow_dispatch" {
					dispatch = kv[1]
				}
			}
			require.Equal(t, []string{"workflow_dispatch"}, triggers, "templates run only when dispatched")
			require.NotNil(t, dispatch)
			var inputs *yaml.Node
			for _, kv := range pairsNodes(*dispatch) {
				if kv[0].Value == "inputs" {
					inputs = kv[1]
				}
			}
			require.NotNil(t, inputs, "workflow_dispatch declares inputs")

			var got []templates.Input
			for _, kv := range pairsNodes(*inputs) {
				var spec struct {
					Type     string `yaml:"type"`
					Required bool   `yaml:"required"`
					Default  *string
				}
				require.NoError(t, kv[1].Decode(&spec))
				require.Equal(t, "string", spec.Type, "input %s must be a string", kv[0].Value)
				got = append(got, templates.Input{Name: kv[0].Value, Required: spec.Required})
			}
			require.Equal(t, templates.Inputs, got, "inputs must be exactly the contract's, in order")
			require.Equal(t, templates.RunName, w.RunName, "run-name must match the contract")
		})
	}
}

func pairsNodes(n yaml.Node) [][2]*yaml.Node {
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, [2]*yaml.Node{n.Content[i], n.Content[i+1]})
	}
	return out
}

func TestTemplatesJobSettings(t *testing.T) {
	t.Parallel()
	for _, name := range templates.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := loadWorkflow(t, name)
			j := w.theJob(t)
			require.Equal(t, "${{ inputs."+templates.InputRunner+" }}", j.RunsOn, "runs-on is the runner the server chose")
			require.Positive(t, j.TimeoutMinutes, "timeout-minutes is set")
			require.LessOrEqual(t, j.TimeoutMinutes, 360, "hosted runners stop jobs after 6 hours anyway")
			require.Contains(t, w.Concurrency.Group, "inputs."+templates.InputBuildID, "one concurrency group per build")
			require.False(t, w.Concurrency.CancelInProgress, "a duplicate dispatch must not cancel the build")
			require.Equal(t, "bash", j.Defaults.Run.Shell, "scripts run in bash on every OS")

			require.Equal(t, yaml.MappingNode, w.Permissions.Kind, "permissions must list scopes, never read-all/write-all")
			require.Equal(t, [][2]string{{"contents", "write"}}, pairs(t, w.Permissions),
				"least privilege: only contents: write, for the release upload")
		})
	}
}

var pinnedAction = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$`)

func TestTemplatesPinActionsAndQuoteNothingIntoScripts(t *testing.T) {
	t.Parallel()
	for _, name := range templates.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := loadWorkflow(t, name)
			j := w.theJob(t)
			jobEnv := pairs(t, j.Env)
			for _, s := range j.Steps {
				label := fmt.Sprintf("step %q", s.Name)
				require.True(t, (s.Uses == "") != (s.Run == ""), "%s: either uses or run", label)
				if s.Uses != "" {
					require.Regexp(t, pinnedAction, s.Uses, "%s: actions are pinned to a release tag or commit SHA, never a branch", label)
					continue
				}
				// Expressions inside a script are pasted into it before the
				// shell sees it (script injection); values go through env.
				require.NotContains(t, s.Run, "${{", "%s: pass values through env:, not ${{ }} in run:", label)
				require.NotRegexp(t, `(?m)^\s*set\s+-[a-z]*x`, s.Run, "%s: xtrace would print secrets", label)

				secretVars := map[string]bool{}
				for _, kv := range append(jobEnv, pairs(t, s.Env)...) {
					if strings.Contains(kv[1], "secrets.") {
						secretVars[kv[0]] = true
					}
				}
				for _, line := range strings.Split(s.Run, "\n") {
					if !printsSomething.MatchString(line) {
						continue
					}
					for v := range secretVars {
						ref := regexp.MustCompile(`\$(\{|env:)?` + v + `\b`)
						require.NotRegexp(t, ref, line, "%s prints %s, which comes from a secret", label, v)
					}
				}
			}
		})
	}
}

var printsSomething = regexp.MustCompile(`\b(echo|printf|cat|tee|Write-Host|Write-Output|Write-Information|console\.log)\b`)

// sampleConfig is the config input the engine sends for a build.
func sampleConfig(t *testing.T, platform, arch, version string) string {
	t.Helper()
	cfg := templates.BuildConfig{
		Name:      "Acme Notes!",
		URL:       "https://notes.example.com/app",
		AppID:     "com.example.notes",
		AssetName: templates.AssetName("Acme Notes!", version, platform, arch),
		Window:    templates.WindowConfig{Width: 1024, Height: 768, Resizable: true},
		Features:  templates.Features{Tray: true, MenuBar: true},
	}
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	return string(b)
}

// dispatchInputs are the inputs the engine sends for one build.
func dispatchInputs(t *testing.T, platform, arch, version string) map[string]string {
	t.Helper()
	return map[string]string{
		templates.InputBuildID:  "build_01jt0z8g5m3k2q7w9x4y6a1b2c",
		templates.InputPlatform: platform,
		templates.InputArch:     arch,
		templates.InputVersion:  version,
		templates.InputRunner:   templates.DefaultRunners.Runner(platform, arch),
		templates.InputConfig:   sampleConfig(t, platform, arch, version),
	}
}

// evalEnv evaluates an env mapping against inputs and an outer env.
func evalEnv(t *testing.T, ctx exprContext, n yaml.Node) map[string]any {
	t.Helper()
	out := map[string]any{}
	for k, v := range ctx.Env {
		out[k] = v
	}
	for _, kv := range pairs(t, n) {
		v, err := ctx.interpolate(kv[1])
		require.NoError(t, err, "env %s: %s", kv[0], kv[1])
		out[kv[0]] = v
	}
	return out
}

// installerStep recognizes the command that produces an installer and says
// which format and which arch selector it uses.
type installerCommand struct {
	format  string // as the bundler names it
	archRef string // the shell variable that selects the arch
}

var (
	tauriBuild    = regexp.MustCompile(`(?m)\btauri(\[@\]\}")? build .*--bundles (\S+).*--target "\$(\w+)"|--target "\$(\w+)".*--bundles (\S+)`)
	electronBuild = regexp.MustCompile(`(?m)"\$\{builder\[@\]\}" --(mac|win|linux) (\S+) "--\$(\w+)"`)
)

func findInstallerCommand(run string) (installerCommand, string, bool) {
	if m := tauriBuild.FindStringSubmatch(run); m != nil {
		if m[2] != "" {
			return installerCommand{format: m[2], archRef: m[3]}, "tauri", true
		}
		return installerCommand{format: m[5], archRef: m[4]}, "tauri", true
	}
	if m := electronBuild.FindStringSubmatch(run); m != nil {
		return installerCommand{format: m[1] + " " + m[2], archRef: m[3]}, "electron", true
	}
	return installerCommand{}, "", false
}

// Bundler formats, per platform, that yield the contract's extension.
var (
	tauriFormats    = map[string]string{"mac": "dmg", "windows": "msi", "linux": "appimage"}
	electronFormats = map[string]string{"mac": "mac dmg", "windows": "win msi", "linux": "linux AppImage"}
)

// TestTemplatesBuildEveryRunnerTableEntry follows each template for every
// platform/arch of the default runner table, evaluating job env and step
// conditions the way the runner would, and checks that exactly one installer
// command runs, for the right format and architecture, and that its output is
// collected and uploaded under the contract's asset name.
func TestTemplatesBuildEveryRunnerTableEntry(t *testing.T) {
	t.Parallel()
	keys := make([]string, 0, len(templates.DefaultRunners))
	for k := range templates.DefaultRunners {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	const version = "2.4.0-rc.1"
	for _, name := range templates.Names() {
		for _, key := range keys {
			platform, arch, _ := strings.Cut(key, "/")
			t.Run(name+"/"+key, func(t *testing.T) {
				t.Parallel()
				w := loadWorkflow(t, name)
				j := w.theJob(t)
				inputs := dispatchInputs(t, platform, arch, version)
				jobEnv := evalEnv(t, exprContext{Inputs: inputs}, j.Env)
				require.Equal(t, templates.Extension(platform), jobEnv["INSTALLER_EXT"])
				require.Equal(t, templates.ReleaseTag(version), jobEnv["RELEASE_TAG"])

				wantAsset := templates.AssetName("Acme Notes!", version, platform, arch)
				var producers, collects, uploads []int
				for i, s := range j.Steps {
					ctx := exprContext{Inputs: inputs, Env: jobEnv}
					active, err := ctx.condition(s.If)
					require.NoError(t, err, "step %q: if: %s", s.Name, s.If)
					env := evalEnv(t, ctx, s.Env)

					if strings.Contains(s.Run, "apt-get") {
						require.Equal(t, platform == "linux", active == triTrue, "step %q installs Debian packages: Linux only", s.Name)
					}
					cmd, kind, ok := findInstallerCommand(s.Run)
					if ok {
						require.NotEqual(t, triUnknown, active, "installer step %q must not depend on run-time values", s.Name)
						if active == triFalse {
							continue
						}
						producers = append(producers, i)
						formats := tauriFormats
						if kind == "electron" {
							formats = electronFormats
						}
						require.Equal(t, formats[platform], cmd.format, "step %q builds the wrong format for %s", s.Name, platform)
						switch kind {
						case "tauri":
							require.Equal(t, templates.RustTarget(platform, arch), env[cmd.archRef], "step %q: Rust target", s.Name)
						case "electron":
							require.Equal(t, arch, env[cmd.archRef], "step %q: electron-builder --%s flag", s.Name, arch)
						}
						continue
					}
					if s.ID == "collect" {
						require.Equal(t, triTrue, active, "the installer is always collected")
						collects = append(collects, i)
						require.Equal(t, wantAsset, env["ASSET_NAME"], "collect step renames to the contract's asset name")
						require.Equal(t, templates.Extension(platform), env["INSTALLER_EXT"])
					}
					if strings.Contains(s.Run, "gh api") && strings.Contains(s.Run, "upload_url") {
						require.Equal(t, triTrue, active, "the installer is always uploaded")
						uploads = append(uploads, i)
						require.Equal(t, wantAsset, env["ASSET_NAME"], "upload step uses the contract's asset name")
						require.Equal(t, templates.ReleaseTag(version), env["RELEASE_TAG"])
						require.Equal(t, unknownValue{"steps.collect.outputs.path"}, env["ASSET_PATH"], "upload takes the collected file")
						require.Contains(t, s.Run, `?name=$ASSET_NAME&label=$label"`, "uploads the installer under ASSET_NAME, labelled with the build")
						require.Contains(t, s.Run, `label="$ASSET_NAME%20%28$BUILD_ID%29"`, "the label is templates.AssetLabel, URL-encoded")
						require.Contains(t, s.Run, `?name=$ASSET_NAME.sha256"`, "uploads the checksum next to it")
						require.Contains(t, s.Run, "-F draft=true", "creates a missing release as a draft")
						require.Contains(t, s.Run, `-X DELETE "$api/assets/`, "replaces an existing asset of the same name")
					}
				}
				require.Len(t, producers, 1, "exactly one installer command runs for %s", key)
				require.Len(t, collects, 1, "one collect step")
				require.Len(t, uploads, 1, "one upload step")
				require.Less(t, producers[0], collects[0], "collect after build")
				require.Less(t, collects[0], uploads[0], "upload after collect")
			})
		}
	}
}

// TestTemplatesShareTheirContractSteps keeps the steps that implement the
// contract (config check, signing detection, collect, upload) identical in
// every template, so a fix to one reaches all of them.
func TestTemplatesShareTheirContractSteps(t *testing.T) {
	t.Parallel()
	shared := []string{"Check build config", "Check auto-update", "Detect signing credentials", "Collect the installer", "Upload to release"}
	scripts := map[string]map[string]string{}
	for _, name := range templates.Names() {
		w := loadWorkflow(t, name)
		scripts[name] = map[string]string{}
		for _, s := range w.theJob(t).Steps {
			scripts[name][s.Name] = s.Run
		}
	}
	first := templates.Names()[0]
	for _, stepName := range shared {
		require.NotEmpty(t, scripts[first][stepName], "%s has a %q step", first, stepName)
		for _, name := range templates.Names()[1:] {
			require.Equal(t, scripts[first][stepName], scripts[name][stepName], "%q differs between %s and %s", stepName, first, name)
		}
	}
}
