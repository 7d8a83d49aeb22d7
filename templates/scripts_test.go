package templates_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/templates"
)

// The tests in this file run the templates' own bash and node steps on this
// machine, with the environment the runner would give them, to check what
// they do rather than what they say. They skip when bash or node is missing.

// stepRun describes one execution of a template step.
type stepRun struct {
	template string
	step     string
	inputs   map[string]string
	outputs  map[string]map[string]string // earlier steps' outputs
	secrets  map[string]string
	runnerOS string // RUNNER_OS: macOS, Windows, Linux
	runnerAr string // RUNNER_ARCH: X64, ARM64
	env      map[string]string
	dir      string // working directory; a fresh one when ""
	// pathPrefix is put before PATH (fake tools).
	pathPrefix string
}

// stepResult is what a step left behind.
type stepResult struct {
	err     error
	stdout  string
	outputs map[string]string
	dir     string
	temp    string // RUNNER_TEMP
	summary string // what the step wrote to GITHUB_STEP_SUMMARY
}

var runnerNames = map[string][2]string{
	"mac/arm64": {"macOS", "ARM64"}, "mac/x64": {"macOS", "X64"},
	"windows/x64": {"Windows", "X64"}, "windows/arm64": {"Windows", "ARM64"},
	"linux/x64": {"Linux", "X64"}, "linux/arm64": {"Linux", "ARM64"},
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if requireTools() {
				t.Fatalf("%s is not installed but DESKFORGE_REQUIRE_TOOLS is set", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

func runTemplateStep(t *testing.T, r stepRun) stepResult {
	t.Helper()
	needTools(t, "bash", "node")
	w := loadWorkflow(t, r.template)
	j := w.theJob(t)
	var s *step
	for _, candidate := range j.Steps {
		if candidate.Name == r.step {
			s = candidate
		}
	}
	require.NotNil(t, s, "%s has a step %q", r.template, r.step)
	require.NotEmpty(t, s.Run, "step %q runs a script", r.step)

	if r.outputs == nil {
		r.outputs = map[string]map[string]string{}
	}
	if r.secrets == nil {
		r.secrets = map[string]string{}
	}
	ctx := exprContext{Inputs: r.inputs, Steps: r.outputs, Secrets: r.secrets, GitHub: map[string]string{"token": "ghs_test"}}
	jobEnv := evalEnv(t, ctx, j.Env)
	ctx.Env = jobEnv
	stepEnv := evalEnv(t, ctx, s.Env)

	dir := r.dir
	if dir == "" {
		dir = t.TempDir()
	}
	temp := t.TempDir()
	files := t.TempDir()
	outputFile := filepath.Join(files, "output")
	script := filepath.Join(files, "script.sh")
	require.NoError(t, os.WriteFile(script, []byte(s.Run), 0o600))
	require.NoError(t, os.WriteFile(outputFile, nil, 0o600))

	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"RUNNER_OS=" + r.runnerOS,
		"RUNNER_ARCH=" + r.runnerAr,
		"RUNNER_TEMP=" + temp,
		"GITHUB_OUTPUT=" + outputFile,
		"GITHUB_ENV=" + filepath.Join(files, "env"),
		"GITHUB_PATH=" + filepath.Join(files, "path"),
		"GITHUB_STEP_SUMMARY=" + filepath.Join(files, "summary"),
		"GITHUB_REPOSITORY=acme/builder",
		"GITHUB_SERVER_URL=https://github.com",
		"GITHUB_SHA=0123456789abcdef0123456789abcdef01234567",
	}
	for k, v := range stepEnv {
		str, err := valueString(v)
		require.NoError(t, err)
		require.NotContains(t, str, "<", "env %s is only known on GitHub (%s)", k, str)
		env = append(env, k+"="+str)
	}
	for k, v := range r.env {
		env = append(env, k+"="+v)
	}
	if r.pathPrefix != "" {
		env[0] = "PATH=" + r.pathPrefix + string(os.PathListSeparator) + os.Getenv("PATH")
	}
	// How GitHub runs a `shell: bash` step.
	cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", script)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()

	raw, readErr := os.ReadFile(outputFile)
	require.NoError(t, readErr)
	outputs := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			outputs[k] = v
		}
	}
	summary, _ := os.ReadFile(filepath.Join(files, "summary"))
	return stepResult{err: err, stdout: out.String(), outputs: outputs, dir: dir, temp: temp, summary: string(summary)}
}

func forEntry(key string) (platform, arch, osName, archName string) {
	platform, arch, _ = strings.Cut(key, "/")
	return platform, arch, runnerNames[key][0], runnerNames[key][1]
}

func TestValidateInputsStep(t *testing.T) {
	t.Parallel()
	for _, name := range templates.Names() {
		for key := range templates.DefaultRunners {
			platform, arch, osName, archName := forEntry(key)
			t.Run(name+"/"+key, func(t *testing.T) {
				t.Parallel()
				res := runTemplateStep(t, stepRun{template: name, step: "Validate inputs",
					inputs: dispatchInputs(t, platform, arch, "1.2.3"), runnerOS: osName, runnerAr: archName})
				require.NoError(t, res.err, res.stdout)
			})
		}
	}

	cases := []struct {
		name     string
		mutate   func(map[string]string)
		runnerOS string
		want     string
	}{
		{"platform", func(in map[string]string) { in["platform"] = "darwin" }, "macOS", "platform must be one of mac, windows, linux (got 'darwin')"},
		{"arch", func(in map[string]string) { in["arch"] = "amd64" }, "macOS", "arch must be one of x64, arm64"},
		{"leading v", func(in map[string]string) { in["version"] = "v1.2.3" }, "macOS", "version must be semver"},
		{"not semver", func(in map[string]string) { in["version"] = "1.2" }, "macOS", "version must be semver"},
		{"build id", func(in map[string]string) { in["build_id"] = "BUILD-1" }, "macOS", "build_id must look like build_"},
		{"newline injection", func(in map[string]string) { in["build_id"] = "x\n::set-output name=a::b" }, "macOS", "got 'x ::set-output"},
		{"runner on wrong os", nil, "Linux", "runner 'macos-15' is a Linux machine, not mac"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inputs := dispatchInputs(t, "mac", "arm64", "1.2.3")
			if tc.mutate != nil {
				tc.mutate(inputs)
			}
			res := runTemplateStep(t, stepRun{template: "webapp", step: "Validate inputs", inputs: inputs,
				runnerOS: tc.runnerOS, runnerAr: "ARM64"})
			require.Error(t, res.err)
			require.Contains(t, res.stdout, "::error title=Invalid DeskForge input::")
			require.Contains(t, res.stdout, tc.want)
		})
	}
}

func TestCheckBuildConfigStep(t *testing.T) {
	t.Parallel()
	good := dispatchInputs(t, "windows", "arm64", "1.2.3-beta.1")
	res := runTemplateStep(t, stepRun{template: "tauri-app", step: "Check build config", inputs: good})
	require.NoError(t, res.err, res.stdout)
	require.Equal(t, templates.AssetName("Acme Notes!", "1.2.3-beta.1", "windows", "arm64"), res.outputs["asset_name"])

	cases := []struct {
		name   string
		config string
		want   string
	}{
		{"empty", "", "the config input is not valid JSON"},
		{"not json", "{name: x}", "the config input is not valid JSON"},
		{"array", "[]", "must be a JSON object"},
		{"no asset name", `{"name":"x"}`, "config.assetName is missing or empty"},
		{"other arch", `{"assetName":"acme-notes-1.2.3-beta.1-windows-x64.msi"}`, `must be <app-slug>-1.2.3-beta.1-windows-arm64.msi`},
		{"other extension", `{"assetName":"acme-notes-1.2.3-beta.1-windows-arm64.exe"}`, "must be <app-slug>"},
		{"path", `{"assetName":"../x-1.2.3-beta.1-windows-arm64.msi"}`, "must be <app-slug>"},
		{"no slug", `{"assetName":"-1.2.3-beta.1-windows-arm64.msi"}`, "must be <app-slug>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inputs := dispatchInputs(t, "windows", "arm64", "1.2.3-beta.1")
			inputs["config"] = tc.config
			res := runTemplateStep(t, stepRun{template: "electron-app", step: "Check build config", inputs: inputs})
			require.Error(t, res.err)
			require.Contains(t, res.stdout, "::error title=Invalid DeskForge config::")
			require.Contains(t, res.stdout, tc.want)
		})
	}
}

func TestDetectSigningStep(t *testing.T) {
	t.Parallel()
	all := map[string]string{
		"APPLE_CERTIFICATE": "MIIx", "APPLE_CERTIFICATE_PASSWORD": "pw", "APPLE_ID": "dev@example.com",
		"APPLE_PASSWORD": "app-pw", "APPLE_TEAM_ID": "TEAM123", "WINDOWS_CERTIFICATE": "MIIy", "WINDOWS_CERTIFICATE_PASSWORD": "pw2",
	}
	cases := []struct {
		name     string
		platform string
		secrets  map[string]string
		want     map[string]string
		notice   string
	}{
		{"mac, nothing set", "mac", nil, map[string]string{"mac_sign": "false", "mac_notarize": "false", "windows_sign": "false"}, "macOS code signing skipped"},
		{"mac, all set", "mac", all, map[string]string{"mac_sign": "true", "mac_notarize": "true", "windows_sign": "false"}, "macOS notarization: enabled"},
		{"mac, certificate without password", "mac", map[string]string{"APPLE_CERTIFICATE": "MIIx", "APPLE_ID": "dev@example.com", "APPLE_PASSWORD": "app-pw", "APPLE_TEAM_ID": "TEAM123"},
			map[string]string{"mac_sign": "false", "mac_notarize": "false", "windows_sign": "false"}, "macOS notarization skipped"},
		{"windows, all set", "windows", all, map[string]string{"mac_sign": "false", "mac_notarize": "false", "windows_sign": "true"}, "Windows code signing: enabled"},
		{"windows, nothing set", "windows", nil, map[string]string{"mac_sign": "false", "mac_notarize": "false", "windows_sign": "false"}, "Windows code signing skipped"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			secrets := tc.secrets
			if secrets == nil {
				secrets = map[string]string{}
			}
			res := runTemplateStep(t, stepRun{template: "webapp", step: "Detect signing credentials",
				inputs: dispatchInputs(t, tc.platform, "x64", "1.0.0"), secrets: secrets})
			require.NoError(t, res.err, res.stdout)
			require.Equal(t, tc.want, res.outputs)
			require.Contains(t, res.stdout, tc.notice)
			for _, v := range secrets {
				require.NotContains(t, res.stdout, v, "a secret value reached the log")
			}
		})
	}
}

func TestWebappGenerateStep(t *testing.T) {
	t.Parallel()
	inputs := dispatchInputs(t, "windows", "arm64", "1.2.3-beta.1")
	res := runTemplateStep(t, stepRun{template: "webapp", step: "Generate the Tauri project", inputs: inputs,
		outputs: map[string]map[string]string{"signing": {"mac_sign": "false"}, "wincert": {"thumbprint": "AB12CD"}}})
	require.NoError(t, res.err, res.stdout)

	app := filepath.Join(res.dir, "deskforge-app")
	var conf struct {
		ProductName string `json:"productName"`
		Version     string `json:"version"`
		Identifier  string `json:"identifier"`
		Build       struct {
			FrontendDist string `json:"frontendDist"`
		} `json:"build"`
		App struct {
			Windows []struct {
				Label     string `json:"label"`
				Title     string `json:"title"`
				URL       string `json:"url"`
				Width     int    `json:"width"`
				Height    int    `json:"height"`
				Resizable bool   `json:"resizable"`
			} `json:"windows"`
			TrayIcon *struct {
				ID       string `json:"id"`
				IconPath string `json:"iconPath"`
			} `json:"trayIcon"`
		} `json:"app"`
		Bundle struct {
			Icon    []string `json:"icon"`
			Windows struct {
				Wix struct {
					Version string `json:"version"`
				} `json:"wix"`
				CertificateThumbprint string `json:"certificateThumbprint"`
			} `json:"windows"`
		} `json:"bundle"`
	}
	raw, err := os.ReadFile(filepath.Join(app, "src-tauri", "tauri.conf.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &conf))
	require.Equal(t, "Acme Notes", conf.ProductName)
	require.Equal(t, "1.2.3-beta.1", conf.Version)
	require.Equal(t, "com.example.notes", conf.Identifier)
	require.Equal(t, "../dist", conf.Build.FrontendDist)
	require.Len(t, conf.App.Windows, 1)
	require.Equal(t, "main", conf.App.Windows[0].Label)
	require.Equal(t, "https://notes.example.com/app", conf.App.Windows[0].URL)
	require.Equal(t, 1024, conf.App.Windows[0].Width)
	require.Equal(t, 768, conf.App.Windows[0].Height)
	require.True(t, conf.App.Windows[0].Resizable)
	require.NotNil(t, conf.App.TrayIcon, "tray feature configures a tray icon")
	require.Equal(t, "main", conf.App.TrayIcon.ID)
	require.Equal(t, "1.2.3", conf.Bundle.Windows.Wix.Version, "MSI gets the numeric part of a prerelease version")
	require.Equal(t, "AB12CD", conf.Bundle.Windows.CertificateThumbprint)

	cargo, err := os.ReadFile(filepath.Join(app, "src-tauri", "Cargo.toml"))
	require.NoError(t, err)
	require.Contains(t, string(cargo), `tauri = { version = "2", features = ["tray-icon"] }`)
	require.Contains(t, string(cargo), `version = "1.2.3-beta.1"`)
	mainRS, err := os.ReadFile(filepath.Join(app, "src-tauri", "src", "main.rs"))
	require.NoError(t, err)
	require.Contains(t, string(mainRS), "tauri::menu::Menu::default(handle)", "menu bar feature")
	require.Contains(t, string(mainRS), `app.tray_by_id("main")`, "tray feature")
	require.Contains(t, string(mainRS), "tauri::generate_context!()")
	for _, f := range []string{"src-tauri/build.rs", "dist/index.html", "package.json"} {
		require.FileExists(t, filepath.Join(app, f))
	}

	iconFile, err := os.Open(filepath.Join(app, "app-icon.png"))
	require.NoError(t, err)
	defer iconFile.Close()
	icon, err := png.Decode(iconFile)
	require.NoError(t, err, "the generated icon is a valid PNG")
	require.Equal(t, 1024, icon.Bounds().Dx())
	require.Equal(t, 1024, icon.Bounds().Dy())
	_, _, _, corner := icon.At(0, 0).RGBA()
	_, _, _, center := icon.At(512, 512).RGBA()
	require.Zero(t, corner, "transparent corner")
	require.Equal(t, uint32(0xffff), center, "opaque centre")
}

func TestWebappGenerateStepWithoutFeatures(t *testing.T) {
	t.Parallel()
	inputs := dispatchInputs(t, "mac", "arm64", "3.0.0")
	inputs["config"] = `{"name":"Plain","url":"http://localhost:3000","assetName":"plain-3.0.0-mac-arm64.dmg","window":{"width":0,"height":0,"resizable":false},"features":{}}`
	res := runTemplateStep(t, stepRun{template: "webapp", step: "Generate the Tauri project", inputs: inputs,
		outputs: map[string]map[string]string{"signing": {"mac_sign": "false"}}})
	require.NoError(t, res.err, res.stdout)
	raw, err := os.ReadFile(filepath.Join(res.dir, "deskforge-app", "src-tauri", "tauri.conf.json"))
	require.NoError(t, err)
	var conf map[string]any
	require.NoError(t, json.Unmarshal(raw, &conf))
	require.Equal(t, "com.deskforge.plain", conf["identifier"], "derived from the name when appId is empty")
	app := conf["app"].(map[string]any)
	require.NotContains(t, app, "trayIcon")
	window := app["windows"].([]any)[0].(map[string]any)
	require.Equal(t, float64(1200), window["width"], "default width")
	require.Equal(t, false, window["resizable"])
	bundle := conf["bundle"].(map[string]any)
	require.Equal(t, map[string]any{"signingIdentity": "-"}, bundle["macOS"], "unsigned mac builds are signed ad hoc")
	require.Equal(t, map[string]any{}, bundle["windows"], "no wix override for a plain version")
	cargo, err := os.ReadFile(filepath.Join(res.dir, "deskforge-app", "src-tauri", "Cargo.toml"))
	require.NoError(t, err)
	require.Contains(t, string(cargo), `tauri = { version = "2", features = [] }`)
	mainRS, err := os.ReadFile(filepath.Join(res.dir, "deskforge-app", "src-tauri", "src", "main.rs"))
	require.NoError(t, err)
	require.NotContains(t, string(mainRS), "tray")
	require.NotContains(t, string(mainRS), "Menu::default")
}

func TestWebappGenerateStepRejectsBadConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, config, want string
	}{
		{"no url", `{"name":"A","assetName":"a-1.0.0-linux-x64.AppImage"}`, "config.url"},
		{"ftp url", `{"name":"A","url":"ftp://x","assetName":"a-1.0.0-linux-x64.AppImage"}`, "must use http or https"},
		{"no name", `{"url":"https://x","assetName":"a-1.0.0-linux-x64.AppImage"}`, "config.name"},
		{"bad app id", `{"name":"A","url":"https://x","appId":"my app","assetName":"a-1.0.0-linux-x64.AppImage"}`, "reverse-domain identifier"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inputs := dispatchInputs(t, "linux", "x64", "1.0.0")
			inputs["config"] = tc.config
			res := runTemplateStep(t, stepRun{template: "webapp", step: "Generate the Tauri project", inputs: inputs})
			require.Error(t, res.err)
			require.Contains(t, res.stdout, tc.want)
		})
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
}

func TestInspectProjectStep(t *testing.T) {
	t.Parallel()
	tauriProject := map[string]string{
		"package.json": `{}`, "package-lock.json": `{}`, ".nvmrc": "22\n",
		"src-tauri/tauri.conf.json": `{"identifier":"com.example.x"}`, "src-tauri/Cargo.toml": "[package]\n",
		"src-tauri/rust-toolchain.toml": "[toolchain]\nchannel = \"1.90\"\n",
	}
	cases := []struct {
		name     string
		template string
		files    map[string]string
		want     map[string]string
		err      string
	}{
		{"tauri npm project", "tauri-app", tauriProject, map[string]string{
			"tauri_dir": "src-tauri", "toolchain_file": "src-tauri/rust-toolchain.toml", "npm_cache": "npm",
			"npm_install": "ci", "node_version_file": ".nvmrc"}, ""},
		{"tauri without package.json", "tauri-app", map[string]string{"src-tauri/Tauri.toml": "", "src-tauri/Cargo.toml": ""},
			map[string]string{"tauri_dir": "src-tauri", "toolchain_file": "", "npm_cache": "", "npm_install": "", "node_version_file": ""}, ""},
		{"tauri without lockfile", "tauri-app", map[string]string{"package.json": "{}", "src-tauri/tauri.conf.json": "{}", "src-tauri/Cargo.toml": ""},
			map[string]string{"tauri_dir": "src-tauri", "toolchain_file": "", "npm_cache": "", "npm_install": "install", "node_version_file": ""}, ""},
		{"no tauri project", "tauri-app", map[string]string{"package.json": "{}"}, nil, "no Tauri project here"},
		{"tauri without crate", "tauri-app", map[string]string{"src-tauri/tauri.conf.json": "{}"}, nil, "src-tauri has a Tauri config but no Cargo.toml"},
		{"pnpm", "tauri-app", map[string]string{"package.json": "{}", "pnpm-lock.yaml": "", "src-tauri/tauri.conf.json": "{}", "src-tauri/Cargo.toml": ""}, nil, "only npm projects are supported"},
		{"electron npm project", "electron-app", map[string]string{"package.json": "{}", "npm-shrinkwrap.json": "{}", ".node-version": "24"},
			map[string]string{"npm_cache": "npm", "npm_install": "ci", "node_version_file": ".node-version"}, ""},
		{"electron without package.json", "electron-app", map[string]string{"main.js": ""}, nil, "no package.json at the repository root"},
		{"electron with yarn", "electron-app", map[string]string{"package.json": "{}", "yarn.lock": ""}, nil, "only npm projects are supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			res := runTemplateStep(t, stepRun{template: tc.template, step: "Inspect the project",
				inputs: dispatchInputs(t, "linux", "x64", "1.0.0"), dir: dir})
			if tc.err != "" {
				require.Error(t, res.err)
				require.Contains(t, res.stdout, "::error title=Unsupported project::"+tc.err)
				return
			}
			require.NoError(t, res.err, res.stdout)
			require.Equal(t, tc.want, res.outputs)
		})
	}
}

func TestTauriOverridesStep(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, platform, version, conf, thumbprint string) stepResult {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"src-tauri/tauri.conf.json": conf})
		return runTemplateStep(t, stepRun{template: "tauri-app", step: "Prepare Tauri config overrides",
			inputs: dispatchInputs(t, platform, "x64", version), dir: dir,
			outputs: map[string]map[string]string{"project": {"tauri_dir": "src-tauri"}, "wincert": {"thumbprint": thumbprint}}})
	}
	read := func(t *testing.T, res stepResult) map[string]any {
		require.NoError(t, res.err, res.stdout)
		require.Equal(t, filepath.Join(res.temp, "deskforge-tauri-overrides.json"), res.outputs["path"])
		raw, err := os.ReadFile(res.outputs["path"])
		require.NoError(t, err)
		var got map[string]any
		require.NoError(t, json.Unmarshal(raw, &got))
		return got
	}

	got := read(t, run(t, "windows", "2.0.0-rc.2", "\ufeff{\"identifier\":\"com.x\"}", "FF00"))
	require.Equal(t, map[string]any{"version": "2.0.0-rc.2", "bundle": map[string]any{"windows": map[string]any{
		"wix": map[string]any{"version": "2.0.0"}, "certificateThumbprint": "FF00",
		"digestAlgorithm": "sha256", "timestampUrl": "http://timestamp.digicert.com"}}}, got)

	got = read(t, run(t, "mac", "2.0.0", `{"identifier":"com.x"}`, ""))
	require.Equal(t, map[string]any{"version": "2.0.0"}, got)

	res := run(t, "linux", "1.0.0", `{"tauri":{"bundle":{"identifier":"com.x"}}}`, "")
	require.Error(t, res.err)
	require.Contains(t, res.stdout, "is a Tauri v1 configuration")
}

func TestCollectInstallerStep(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, files map[string]string, platform string, extra map[string]string) stepResult {
		dir := t.TempDir()
		writeFiles(t, dir, files)
		return runTemplateStep(t, stepRun{template: "electron-app", step: "Collect the installer",
			inputs: dispatchInputs(t, platform, "arm64", "1.4.0"), dir: dir, env: extra})
	}

	installer := "MZ fake msi bytes"
	res := run(t, map[string]string{
		"deskforge-dist/Acme Notes 1.4.0.msi":    installer,
		"deskforge-dist/latest.yml":              "version: 1.4.0",
		"deskforge-dist/win-arm64-unpacked/x.js": "",
	}, "windows", nil)
	require.NoError(t, res.err, res.stdout)
	asset := templates.AssetName("Acme Notes!", "1.4.0", "windows", "arm64")
	out := filepath.Join(res.temp, "deskforge-out", asset)
	require.Equal(t, out, res.outputs["path"])
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, installer, string(got))
	sum := sha256.Sum256([]byte(installer))
	require.Equal(t, hex.EncodeToString(sum[:]), res.outputs["sha256"])
	sumFile, err := os.ReadFile(out + ".sha256")
	require.NoError(t, err)
	require.Equal(t, hex.EncodeToString(sum[:])+"  "+asset+"\n", string(sumFile), "sha256sum format")

	res = run(t, map[string]string{"deskforge-dist/a.dmg": "1", "deskforge-dist/b.dmg": "2", "deskforge-dist/a.dmg.blockmap": ""}, "mac", nil)
	require.Error(t, res.err)
	require.Contains(t, res.stdout, "expected exactly one .dmg installer")

	res = run(t, map[string]string{"deskforge-dist/x.AppImage.blockmap": ""}, "linux", nil)
	require.Error(t, res.err)
	require.Contains(t, res.stdout, "found 0")

	res = run(t, map[string]string{}, "linux", nil)
	require.Error(t, res.err)
	require.Contains(t, res.stdout, "the build left no bundle directory")
}

func TestCollectInstallerStepFindsCargoTargetDir(t *testing.T) {
	t.Parallel()
	needTools(t, "cargo")
	dir := t.TempDir()
	target := templates.RustTarget("mac", "arm64")
	writeFiles(t, dir, map[string]string{
		"src-tauri/Cargo.toml":  "[package]\nname = \"x\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
		"src-tauri/src/main.rs": "fn main() {}\n",
		"src-tauri/target/" + target + "/release/bundle/dmg/X_0.1.0_aarch64.dmg": "dmg",
		"src-tauri/target/" + target + "/release/bundle/macos/X.app/Contents/x":  "",
	})
	res := runTemplateStep(t, stepRun{template: "tauri-app", step: "Collect the installer",
		inputs: dispatchInputs(t, "mac", "arm64", "1.0.0"), dir: dir,
		outputs: map[string]map[string]string{"project": {"tauri_dir": "src-tauri"}}})
	require.NoError(t, res.err, res.stdout)
	require.Equal(t, filepath.Join(res.temp, "deskforge-out", templates.AssetName("Acme Notes!", "1.0.0", "mac", "arm64")), res.outputs["path"])
}
