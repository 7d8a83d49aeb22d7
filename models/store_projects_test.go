package models_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
)

func TestIsRefName(t *testing.T) {
	t.Parallel()
	valid := []string{"main", "release/1.x", "v1.0.0", "feature/foo-bar", "refs/heads/main", "a.b", "a@b", "ünïcode", strings.Repeat("r", 255)}
	for _, ref := range valid {
		require.True(t, models.IsRefName(ref), "%q is a valid ref", ref)
	}
	// The rules of git check-ref-format, one case each.
	invalid := []string{
		"", "@", "a..b", "a@{1}", "x.lock", "feature/x.lock", ".hidden", "feature/.hidden", "/main", "main/",
		"a//b", "trail.", "a~1", "a^", "a:b", "a?", "a*", "a[b", `a\b`, "has space", "tab\tx", "nul\x00", "del\x7f", "bad\xff",
	}
	for _, ref := range invalid {
		require.False(t, models.IsRefName(ref), "%q is not a valid ref", ref)
	}
}

func TestIsID(t *testing.T) {
	t.Parallel()
	id := models.NewID("build")
	require.True(t, models.IsID("build", id))
	require.False(t, models.IsID("proj", id))
	for _, s := range []string{"", "build_", "build_01hqz", id + "0", strings.ToUpper(id), "build_01hqz00000000000000000\x00z", strings.Repeat("x", 100_000)} {
		require.False(t, models.IsID("build", s), "%.40q", s)
	}
}
