package templates_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/templates"
)

// autoUpdateInputs are dispatch inputs of a project with features.autoUpdate,
// as the engine sends them.
func autoUpdateInputs(t *testing.T, platform, arch, version string) map[string]string {
	t.Helper()
	inputs := dispatchInputs(t, platform, arch, version)
	var cfg templates.BuildConfig
	require.NoError(t, json.Unmarshal([]byte(inputs[templates.InputConfig]), &cfg))
	cfg.Features.AutoUpdate = true
	cfg.UpdateEndpoint = templates.UpdateEndpoint("https://deskforge.example.com/", "proj_01jt0z8g5m3k2q7w9x4y6a1b2c")
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	inputs[templates.InputConfig] = string(b)
	return inputs
}

func TestCheckAutoUpdateStep(t *testing.T) {
	t.Parallel()
	both := map[string]string{"TAURI_SIGNING_PRIVATE_KEY": "key", "TAURI_SIGNING_PUBLIC_KEY": "pub"}
	cases := []struct {
		name     string
		template string
		inputs   map[string]string
		secrets  map[string]string
		kind     string
		fails    string // the ::error line's start, "" when the step succeeds
	}{
		{"off", "webapp", dispatchInputs(t, "mac", "arm64", "1.0.0"), nil, "", ""},
		{"tauri app with key", "tauri-app", autoUpdateInputs(t, "mac", "arm64", "1.0.0"), map[string]string{"TAURI_SIGNING_PRIVATE_KEY": "key"}, "tauri", ""},
		{"web app with keys", "webapp", autoUpdateInputs(t, "linux", "x64", "1.0.0"), both, "tauri", ""},
		{"electron needs no key", "electron-app", autoUpdateInputs(t, "windows", "x64", "1.0.0"), nil, "electron", ""},
		{"tauri app without key", "tauri-app", autoUpdateInputs(t, "mac", "arm64", "1.0.0"), nil, "",
			"::error title=Auto-update::the project has features.autoUpdate but the repository acme/builder has no TAURI_SIGNING_PRIVATE_KEY secret"},
		{"web app without public key", "webapp", autoUpdateInputs(t, "mac", "arm64", "1.0.0"), map[string]string{"TAURI_SIGNING_PRIVATE_KEY": "key"}, "",
			"::error title=Auto-update::the project has features.autoUpdate but the repository acme/builder has no TAURI_SIGNING_PUBLIC_KEY secret"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := runTemplateStep(t, stepRun{template: tc.template, step: "Check auto-update", inputs: tc.inputs, secrets: tc.secrets})
			if tc.fails != "" {
				require.Error(t, res.err)
				require.Contains(t, res.stdout, tc.fails)
				require.NotContains(t, res.outputs, "kind")
				return
			}
			require.NoError(t, res.err, res.stdout)
			require.Equal(t, tc.kind, res.outputs["kind"])
			require.NotContains(t, res.stdout, "key\n", "secrets are never printed")
		})
	}

	// The web app's endpoint comes from the server: a config without it
	// (a server without DESKFORGE_PUBLIC_URL's update route) is refused.
	inputs := autoUpdateInputs(t, "linux", "x64", "1.0.0")
	inputs[templates.InputConfig] = strings.Replace(inputs[templates.InputConfig], "{{arch}}", "arch", 1)
	res := runTemplateStep(t, stepRun{template: "webapp", step: "Check auto-update", inputs: inputs, secrets: both})
	require.Error(t, res.err)
	require.Contains(t, res.stdout, "::error title=Auto-update::config.updateEndpoint")
}

func TestCollectInstallerStepCollectsUpdaterArtifacts(t *testing.T) {
	t.Parallel()
	collect := func(t *testing.T, template, platform string, files map[string]string, updater string) stepResult {
		dir := t.TempDir()
		writeFiles(t, dir, files)
		return runTemplateStep(t, stepRun{template: template, step: "Collect the installer",
			inputs: autoUpdateInputs(t, platform, "arm64", "1.4.0"), dir: dir,
			env: map[string]string{"UPDATER": updater, "SEARCH_DIR": "dist", "CARGO_MANIFEST": ""}})
	}
	read := func(t *testing.T, p string) string {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		return string(b)
	}

	t.Run("tauri mac", func(t *testing.T) {
		t.Parallel()
		res := collect(t, "electron-app", "mac", map[string]string{
			"dist/dmg/Acme_1.4.0_aarch64.dmg":         "dmg",
			"dist/macos/Acme.app/Contents/Info.plist": "",
			"dist/macos/Acme.app.tar.gz":              "tarball",
			"dist/macos/Acme.app.tar.gz.sig":          "c2lnbmF0dXJl",
		}, "tauri")
		require.NoError(t, res.err, res.stdout)
		asset := templates.AssetName("Acme Notes!", "1.4.0", "mac", "arm64")
		name := templates.UpdaterArtifactName(asset, "mac")
		require.Equal(t, name, res.outputs["updater_name"])
		require.Equal(t, "tarball", read(t, res.outputs["updater_path"]))
		require.Equal(t, res.outputs["updater_path"]+".sig", res.outputs["updater_sig"])
		require.Equal(t, "c2lnbmF0dXJl", read(t, res.outputs["updater_sig"]))
	})
	t.Run("tauri windows", func(t *testing.T) {
		t.Parallel()
		res := collect(t, "electron-app", "windows", map[string]string{
			"dist/msi/Acme_1.4.0_arm64_en-US.msi":     "msi",
			"dist/msi/Acme_1.4.0_arm64_en-US.msi.sig": "c2ln",
		}, "tauri")
		require.NoError(t, res.err, res.stdout)
		asset := templates.AssetName("Acme Notes!", "1.4.0", "windows", "arm64")
		require.Equal(t, asset, res.outputs["updater_name"], "the installer is the updater artifact")
		require.Equal(t, "c2ln", read(t, res.outputs["updater_sig"]))
	})
	t.Run("tauri without signature", func(t *testing.T) {
		t.Parallel()
		res := collect(t, "electron-app", "linux", map[string]string{"dist/appimage/Acme.AppImage": "elf"}, "tauri")
		require.Error(t, res.err)
		require.Contains(t, res.stdout, "::error title=No updater artifact::the build left no signature")
	})
	t.Run("electron windows", func(t *testing.T) {
		t.Parallel()
		res := collect(t, "electron-app", "windows", map[string]string{
			"dist/Acme 1.4.0.msi":                "msi",
			"dist/Acme Setup 1.4.0.exe":          "nsis",
			"dist/Acme Setup 1.4.0.exe.blockmap": "",
			"dist/win-arm64-unpacked/Acme.exe":   "the app itself",
		}, "electron")
		require.NoError(t, res.err, res.stdout)
		asset := templates.AssetName("Acme Notes!", "1.4.0", "windows", "arm64")
		require.Equal(t, templates.ElectronUpdaterArtifactName(asset, "windows"), res.outputs["updater_name"])
		require.Equal(t, "nsis", read(t, res.outputs["updater_path"]))
		require.NotContains(t, res.outputs, "updater_sig")
	})
	t.Run("electron mac without zip", func(t *testing.T) {
		t.Parallel()
		res := collect(t, "electron-app", "mac", map[string]string{"dist/Acme-1.4.0-arm64.dmg": "dmg"}, "electron")
		require.Error(t, res.err)
		require.Contains(t, res.stdout, "expected exactly one .zip for electron-updater")
	})
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		res := collect(t, "electron-app", "linux", map[string]string{"dist/Acme.AppImage": "elf"}, "")
		require.NoError(t, res.err, res.stdout)
		require.NotContains(t, res.outputs, "updater_name")
	})
}

func TestTauriOverridesStepAsksForUpdaterArtifacts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"src-tauri/tauri.conf.json": `{"identifier":"com.x"}`})
	res := runTemplateStep(t, stepRun{template: "tauri-app", step: "Prepare Tauri config overrides",
		inputs: autoUpdateInputs(t, "mac", "arm64", "2.0.0"), dir: dir,
		outputs: map[string]map[string]string{"project": {"tauri_dir": "src-tauri"}, "updater": {"kind": "tauri"}}})
	require.NoError(t, res.err, res.stdout)
	raw, err := os.ReadFile(res.outputs["path"])
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(raw, &got))
	require.Equal(t, map[string]any{"version": "2.0.0", "bundle": map[string]any{"createUpdaterArtifacts": true}}, got)
}

func TestWebappGenerateStepWiresTheUpdater(t *testing.T) {
	t.Parallel()
	inputs := autoUpdateInputs(t, "linux", "x64", "1.3.0")
	res := runTemplateStep(t, stepRun{template: "webapp", step: "Generate the Tauri project", inputs: inputs,
		secrets: map[string]string{"TAURI_SIGNING_PUBLIC_KEY": "dW50cnVzdGVkIHB1YmtleQ==\n"},
		outputs: map[string]map[string]string{"signing": {"mac_sign": "false"}, "updater": {"kind": "tauri"}}})
	require.NoError(t, res.err, res.stdout)
	require.Contains(t, res.stdout, "autoUpdate=true")
	app := filepath.Join(res.dir, "deskforge-app", "src-tauri")
	raw, err := os.ReadFile(filepath.Join(app, "tauri.conf.json"))
	require.NoError(t, err)
	var conf struct {
		Bundle struct {
			CreateUpdaterArtifacts bool `json:"createUpdaterArtifacts"`
		} `json:"bundle"`
		Plugins struct {
			Updater struct {
				Pubkey    string   `json:"pubkey"`
				Endpoints []string `json:"endpoints"`
			} `json:"updater"`
		} `json:"plugins"`
	}
	require.NoError(t, json.Unmarshal(raw, &conf))
	require.True(t, conf.Bundle.CreateUpdaterArtifacts)
	require.Equal(t, "dW50cnVzdGVkIHB1YmtleQ==", conf.Plugins.Updater.Pubkey)
	require.Equal(t, []string{"https://deskforge.example.com/updates/proj_01jt0z8g5m3k2q7w9x4y6a1b2c/{{target}}/{{arch}}/{{current_version}}"},
		conf.Plugins.Updater.Endpoints)
	cargo, err := os.ReadFile(filepath.Join(app, "Cargo.toml"))
	require.NoError(t, err)
	require.Contains(t, string(cargo), "\ntauri-plugin-updater = \"2\"\n")
	mainRS, err := os.ReadFile(filepath.Join(app, "src", "main.rs"))
	require.NoError(t, err)
	for _, want := range []string{".plugin(tauri_plugin_updater::Builder::new().build())", "updater.check().await", "download_and_install", `app.tray_by_id("main")`} {
		require.Contains(t, string(mainRS), want)
	}
	require.Equal(t, 1, strings.Count(string(mainRS), ".setup(|app|"), "one setup closure runs both the updater and the tray")

	// Without the updater output the app has no updater.
	res = runTemplateStep(t, stepRun{template: "webapp", step: "Generate the Tauri project", inputs: dispatchInputs(t, "linux", "x64", "1.3.0"),
		outputs: map[string]map[string]string{"signing": {"mac_sign": "false"}}})
	require.NoError(t, res.err, res.stdout)
	mainRS, err = os.ReadFile(filepath.Join(res.dir, "deskforge-app", "src-tauri", "src", "main.rs"))
	require.NoError(t, err)
	require.NotContains(t, string(mainRS), "updater")
}
