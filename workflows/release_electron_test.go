package workflows_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/workflows"
)

func TestElectronManifestNamesFollowElectronUpdater(t *testing.T) {
	t.Parallel()
	for target, want := range map[[2]string]string{
		{"windows", "x64"}: "latest.yml", {"windows", "arm64"}: "latest.yml",
		{"mac", "x64"}: "latest-mac.yml", {"mac", "arm64"}: "latest-mac.yml",
		{"linux", "x64"}: "latest-linux.yml", {"linux", "arm64"}: "latest-linux-arm64.yml",
	} {
		require.Equal(t, want, workflows.ElectronManifestName(target[0], target[1]), "%v", target)
	}
}

// The layout electron-builder (js-yaml) writes: field order, two-space
// indent, releaseDate single-quoted, multi-line notes as a block.
func TestMarshalElectronManifestWritesElectronBuildersLayout(t *testing.T) {
	t.Parallel()
	data, err := workflows.MarshalElectronManifest(workflows.ElectronManifest{
		Version: "1.4.0",
		Files: []workflows.ElectronFile{
			{URL: "app-1.4.0-mac-x64.zip", SHA512: "c2hhNTEy+/x=", Size: 1024},
			{URL: "app-1.4.0-mac-x64.dmg", SHA512: "ZG1n", Size: 2048},
		},
		Path: "app-1.4.0-mac-x64.zip", SHA512: "c2hhNTEy+/x=",
		ReleaseNotes: "Faster\nSmaller", ReleaseDate: "2026-11-30T19:00:00.000Z",
	})
	require.NoError(t, err)
	require.Equal(t, `version: 1.4.0
files:
  - url: app-1.4.0-mac-x64.zip
    sha512: c2hhNTEy+/x=
    size: 1024
  - url: app-1.4.0-mac-x64.dmg
    sha512: ZG1n
    size: 2048
path: app-1.4.0-mac-x64.zip
sha512: c2hhNTEy+/x=
releaseNotes: |-
  Faster
  Smaller
releaseDate: '2026-11-30T19:00:00.000Z'
`, string(data))

	noNotes, err := workflows.MarshalElectronManifest(workflows.ElectronManifest{Version: "1.4.0", ReleaseDate: "2026-11-30T19:00:00.000Z"})
	require.NoError(t, err)
	require.NotContains(t, string(noNotes), "releaseNotes")
}
