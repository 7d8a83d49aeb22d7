package templates_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/templates"
)

func TestProjectAssetNamesKeepProjectsApart(t *testing.T) {
	t.Parallel()
	twin := templates.ProjectAssetName("proj_01jt0z8g5m3k2q7w9x4y6a1b2c", "Twin", "5.1.1", "mac", "arm64")
	twinBang := templates.ProjectAssetName("proj_01jt0z8g5m3k2q7w9x4y6z9z9z", "twin!", "5.1.1", "mac", "arm64")
	require.Equal(t, "twin-4y6a1b2c-5.1.1-mac-arm64.dmg", twin)
	require.NotEqual(t, twin, twinBang, "names that slug alike, different projects")
	require.Equal(t, templates.ProjectAssetName("proj_01jt0z8g5m3k2q7w9x4y6a1b2c", "Twin", "5.1.1", "mac", "arm64"), twin,
		"a rebuild of the same project, version and target has the same name")

	for label, want := range map[string]string{
		templates.AssetLabel(twin, "build_01abc"): "build_01abc",
		twin:                       "",
		"":                         "",
		"x (build_01abc) trailing": "",
		"x (build_01ABC)":          "",
	} {
		require.Equal(t, want, templates.AssetLabelBuildID(label), label)
	}
}

func TestElectronUpdaterArtifactNameKeepsTargetInName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ platform, arch, want string }{
		{"mac", "arm64", "app-1.0.0-mac-arm64.zip"},
		{"windows", "x64", "app-1.0.0-windows-x64.exe"},
		{"linux", "arm64", "app-1.0.0-linux-arm64.AppImage"},
	} {
		asset := templates.AssetName("App", "1.0.0", tc.platform, tc.arch)
		require.Equal(t, tc.want, templates.ElectronUpdaterArtifactName(asset, tc.platform))
	}
}
