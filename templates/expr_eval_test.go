package templates_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestExprEvaluator(t *testing.T) {
	t.Parallel()
	ctx := exprContext{
		Inputs: map[string]string{"platform": "mac", "arch": "arm64", "config": `{"assetName":"a-1.0.0-mac-arm64.dmg","n":2}`},
		Env:    map[string]any{"EXT": "dmg"},
	}
	values := []struct {
		expr string
		want any
	}{
		{"${{ inputs.platform }}", "mac"},
		{"v${{ inputs.arch }}-x", "varm64-x"},
		{"${{ inputs.platform == 'MAC' }}", true}, // case-insensitive, as on GitHub
		{"${{ inputs.platform == 'mac' && 'dmg' || 'msi' }}", "dmg"},
		{"${{ inputs.platform == 'linux' && 'AppImage' || '' }}", ""},
		{"${{ inputs.platform == 'mac' && (inputs.arch == 'arm64' && 'aarch64' || 'x86_64') || 'none' }}", "aarch64"},
		{"${{ fromJSON(inputs.config).assetName }}", "a-1.0.0-mac-arm64.dmg"},
		{"${{ fromJSON(inputs.config).n }}", float64(2)},
		{"${{ fromJSON(inputs.config).missing }}", nil},
		{"${{ env.EXT }}", "dmg"},
		{"${{ steps.collect.outputs.path }}", unknownValue{"steps.collect.outputs.path"}},
		{"${{ secrets.X != '' }}", unknownValue{"!="}},
		{"${{ 'it''s' }}", "it's"},
		{"${{ !false }}", true},
	}
	for _, tc := range values {
		got, err := ctx.interpolate(tc.expr)
		require.NoError(t, err, tc.expr)
		require.Equal(t, tc.want, got, tc.expr)
	}

	conditions := []struct {
		cond string
		want tristate
	}{
		{"", triTrue},
		{"inputs.platform == 'mac'", triTrue},
		{"${{ inputs.platform == 'windows' }}", triFalse},
		{"inputs.platform == 'windows' && steps.signing.outputs.windows_sign == 'true'", triFalse},
		{"inputs.platform == 'mac' && steps.signing.outputs.mac_sign == 'true'", triUnknown},
		{"inputs.platform == 'mac' || steps.x.outputs.y == 'true'", triTrue},
		{"inputs.platform == 'linux' || steps.x.outputs.y == 'true'", triUnknown},
		{"!(inputs.arch == 'x64')", triTrue},
		{"steps.project.outputs.npm_install != ''", triUnknown},
	}
	for _, tc := range conditions {
		got, err := ctx.condition(tc.cond)
		require.NoError(t, err, tc.cond)
		require.Equal(t, tc.want, got, tc.cond)
	}

	for _, bad := range []string{
		"inputs.platform == 'mac' && contains(inputs.arch, 'arm')", // unsupported function
		"matrix.os == 'mac'",          // unsupported context
		"inputs.platform >= 'mac'",    // unsupported operator
		"inputs.platform == 1",        // mixed-type comparison
		"(inputs.platform == 'mac'",   // syntax
		"fromJSON(inputs.platform).x", // invalid JSON
	} {
		_, err := ctx.condition(bad)
		require.Error(t, err, bad)
	}
}
