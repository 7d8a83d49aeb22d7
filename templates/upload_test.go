package templates_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/templates"
)

// fakeRelease is a release as the fake gh (testdata/fakegh/gh) stores it.
type fakeRelease struct {
	ID        int64       `json:"id"`
	TagName   string      `json:"tag_name"`
	Draft     bool        `json:"draft"`
	UploadURL string      `json:"upload_url"`
	Assets    []fakeAsset `json:"assets"`
}

type fakeAsset struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Label  string `json:"label"`
	Size   int64  `json:"size"`
	Digest string `json:"digest"`
}

type fakeGitHub struct {
	Next     int64         `json:"next"`
	Releases []fakeRelease `json:"releases"`
}

// runUpload runs the "Upload to release" step of a template against the fake
// gh, with an installer collected as the collect step leaves it, and returns
// the step's result and the fake's releases afterwards.
func runUpload(t *testing.T, template string, before *fakeGitHub, env map[string]string) (stepResult, fakeGitHub) {
	t.Helper()
	return runUploadWith(t, template, before, env, nil)
}

// runUploadWith is runUpload with further outputs of the collect step
// (updater_name, updater_path, updater_sig).
func runUploadWith(t *testing.T, template string, before *fakeGitHub, env, collected map[string]string) (stepResult, fakeGitHub) {
	t.Helper()
	needTools(t, "jq", "sha256sum")
	fakeBin, err := filepath.Abs(filepath.Join("testdata", "fakegh"))
	require.NoError(t, err)
	state := t.TempDir()
	if before != nil {
		b, err := json.Marshal(before)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(state, "releases.json"), b, 0o600))
	}
	asset := templates.AssetName("Acme Notes!", "1.0.0", "linux", "x64")
	installerPath := filepath.Join(t.TempDir(), asset)
	installer := []byte("\x7fELF AppImage bytes")
	require.NoError(t, os.WriteFile(installerPath, installer, 0o600))
	sum := sha256.Sum256(installer)
	require.NoError(t, os.WriteFile(installerPath+".sha256", []byte(hex.EncodeToString(sum[:])+"  "+asset+"\n"), 0o600))
	outputs := map[string]string{"path": installerPath, "sha256": hex.EncodeToString(sum[:])}
	for k, v := range collected {
		outputs[k] = v
	}

	if env == nil {
		env = map[string]string{}
	}
	env["FAKE_GH_STATE"] = state
	res := runTemplateStep(t, stepRun{
		template: template, step: "Upload to release", inputs: dispatchInputs(t, "linux", "x64", "1.0.0"),
		outputs:    map[string]map[string]string{"collect": outputs},
		env:        env,
		pathPrefix: fakeBin,
	})
	if calls, err := os.ReadFile(filepath.Join(state, "calls.log")); err == nil {
		t.Logf("gh calls:\n%s", calls)
	}
	var after fakeGitHub
	raw, err := os.ReadFile(filepath.Join(state, "releases.json"))
	require.NoError(t, err, res.stdout)
	require.NoError(t, json.Unmarshal(raw, &after))
	return res, after
}

func assetNames(r fakeRelease) []string {
	var names []string
	for _, a := range r.Assets {
		names = append(names, a.Name)
	}
	return names
}

func TestUploadStepCreatesDraftRelease(t *testing.T) {
	t.Parallel()
	res, after := runUpload(t, "webapp", nil, nil)
	require.NoError(t, res.err, res.stdout)
	asset := templates.AssetName("Acme Notes!", "1.0.0", "linux", "x64")
	require.Len(t, after.Releases, 1)
	rel := after.Releases[0]
	require.Equal(t, templates.ReleaseTag("1.0.0"), rel.TagName)
	require.True(t, rel.Draft, "a missing release is created as a draft")
	require.Equal(t, []string{asset, asset + ".sha256"}, assetNames(rel))
	buildID := dispatchInputs(t, "linux", "x64", "1.0.0")[templates.InputBuildID]
	require.Equal(t, templates.AssetLabel(asset, buildID), rel.Assets[0].Label, "the installer's label names the build")
	require.Equal(t, buildID, templates.AssetLabelBuildID(rel.Assets[0].Label))
	require.Contains(t, res.stdout, "Created draft release v1.0.0")
	require.Contains(t, res.summary, "`"+asset+"`")
}

func TestUploadStepReplacesAnExistingAssetOfADraft(t *testing.T) {
	t.Parallel()
	asset := templates.AssetName("Acme Notes!", "1.0.0", "linux", "x64")
	before := &fakeGitHub{Next: 10, Releases: []fakeRelease{{
		ID: 5, TagName: "v1.0.0", Draft: true,
		UploadURL: "https://uploads.example.test/repos/acme/builder/releases/5/assets{?name,label}",
		Assets:    []fakeAsset{{ID: 6, Name: asset, Size: 3}, {ID: 7, Name: "other-app-1.0.0-linux-x64.AppImage", Size: 3}},
	}}}
	res, after := runUpload(t, "tauri-app", before, nil)
	require.NoError(t, res.err, res.stdout)
	require.Len(t, after.Releases, 1, "the draft is reused")
	rel := after.Releases[0]
	require.True(t, rel.Draft)
	require.Equal(t, []string{"other-app-1.0.0-linux-x64.AppImage", asset, asset + ".sha256"}, assetNames(rel),
		"the old asset of that name is replaced; other apps' assets stay")
	require.NotEqual(t, int64(6), rel.Assets[1].ID)
	require.Contains(t, res.stdout, "Replacing existing asset 6")
}

func TestUploadStepSettlesConcurrentDrafts(t *testing.T) {
	t.Parallel()
	res, after := runUpload(t, "electron-app", nil, map[string]string{"FAKE_GH_RACE": "1"})
	require.NoError(t, res.err, res.stdout)
	require.Len(t, after.Releases, 1, "the duplicate draft is dropped")
	require.Equal(t, int64(100), after.Releases[0].ID, "everyone settles on the oldest draft")
	require.Len(t, after.Releases[0].Assets, 2)
	require.Contains(t, res.stdout, "Dropped duplicate draft 101 in favour of 100")
}

func TestUploadStepChecksGitHubsDigest(t *testing.T) {
	t.Parallel()
	res, _ := runUpload(t, "webapp", nil, map[string]string{"FAKE_GH_BAD_DIGEST": "1"})
	require.Error(t, res.err)
	require.Contains(t, res.stdout, "::error title=Upload::GitHub reports digest sha256:0000")
	require.False(t, strings.Contains(res.stdout, "ghs_test"), "the token never reaches the log")
}

func TestUploadStepLabelsTheAssetWithItsBuild(t *testing.T) {
	t.Parallel()
	for _, tmpl := range []string{"webapp", "tauri-app", "electron-app"} {
		t.Run(tmpl, func(t *testing.T) {
			t.Parallel()
			res, after := runUpload(t, tmpl, nil, nil)
			require.NoError(t, res.err, res.stdout)
			buildID := dispatchInputs(t, "linux", "x64", "1.0.0")[templates.InputBuildID]
			require.Equal(t, buildID, templates.AssetLabelBuildID(after.Releases[0].Assets[0].Label))
		})
	}
}

func TestUploadStepNeverChangesAPublishedRelease(t *testing.T) {
	t.Parallel()
	asset := templates.AssetName("Acme Notes!", "1.0.0", "linux", "x64")
	published := func() *fakeGitHub {
		return &fakeGitHub{Next: 10, Releases: []fakeRelease{{
			ID: 5, TagName: "v1.0.0", Draft: false,
			UploadURL: "https://uploads.example.test/repos/acme/builder/releases/5/assets{?name,label}",
			Assets:    []fakeAsset{{ID: 6, Name: asset, Size: 3}},
		}}}
	}
	for _, tmpl := range []string{"webapp", "tauri-app", "electron-app"} {
		t.Run(tmpl, func(t *testing.T) {
			t.Parallel()
			res, after := runUpload(t, tmpl, published(), nil)
			require.Error(t, res.err)
			require.Contains(t, res.stdout, "::error title=Upload::release v1.0.0 is published and already has "+asset)
			require.Equal(t, published().Releases, after.Releases, "nothing deleted, nothing uploaded")
		})
	}

	// A file the published release does not have yet may be added.
	other := published()
	other.Releases[0].Assets[0].Name = "other-app-1.0.0-linux-x64.AppImage"
	res, after := runUpload(t, "webapp", other, nil)
	require.NoError(t, res.err, res.stdout)
	require.Equal(t, []string{"other-app-1.0.0-linux-x64.AppImage", asset, asset + ".sha256"}, assetNames(after.Releases[0]))
}

func TestUploadStepUploadsTheUpdaterArtifacts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	asset := templates.AssetName("Acme Notes!", "1.0.0", "linux", "x64")
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}

	// Tauri on Linux: the updater artifact is the installer; its .sig is added.
	sig := write(asset+".sig", "dW50cnVzdGVkIGNvbW1lbnQ=")
	res, after := runUploadWith(t, "tauri-app", nil, nil, map[string]string{
		"updater_name": asset, "updater_path": filepath.Join(dir, asset), "updater_sig": sig})
	require.NoError(t, res.err, res.stdout)
	require.Equal(t, []string{asset, asset + ".sha256", asset + ".sig"}, assetNames(after.Releases[0]))
	require.Contains(t, res.stdout, "Uploaded the updater signature "+asset+".sig")

	// Electron: electron-updater's own file (on Windows the NSIS .exe) beside
	// the installer; a rebuild into a draft replaces all three.
	exe := "acme-notes-1.0.0-linux-x64.exe"
	exePath := write(exe, "MZ nsis")
	before := &fakeGitHub{Next: 10, Releases: []fakeRelease{{
		ID: 5, TagName: "v1.0.0", Draft: true,
		UploadURL: "https://uploads.example.test/repos/acme/builder/releases/5/assets{?name,label}",
		Assets:    []fakeAsset{{ID: 6, Name: asset}, {ID: 7, Name: asset + ".sha256"}, {ID: 8, Name: exe}},
	}}}
	res, after = runUploadWith(t, "electron-app", before, nil, map[string]string{"updater_name": exe, "updater_path": exePath})
	require.NoError(t, res.err, res.stdout)
	require.Equal(t, []string{asset, asset + ".sha256", exe}, assetNames(after.Releases[0]))
	for _, id := range []string{"6", "7", "8"} {
		require.Contains(t, res.stdout, "Replacing existing asset "+id+" ")
	}
}
