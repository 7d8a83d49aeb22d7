package models

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestUnpackAPIColumns reads SQLite's packed columns, and refuses a value
// that holds the separator rather than shift the fields after it.
func TestUnpackAPIColumns(t *testing.T) {
	var b Build
	require.NoError(t, unpackAPIColumns("build_1\x1fproj_1\x1fmac\x1fx64\x1fsuccess\x1fbuild_0\x1f"+
		"2024-01-20 10:00:00+00:00\x1f2024-01-20 10:01:00.5+00:00\x1f\x1f45678912\x1f2\x1f5\x1f42", &b))
	started := time.Date(2024, 1, 20, 10, 1, 0, 500000000, time.UTC)
	size := int64(45678912)
	retryOf := "build_0"
	require.Equal(t, Build{ID: "build_1", ProjectID: "proj_1", Platform: "mac", Arch: "x64", Status: "success", RetryOf: &retryOf,
		CreatedAt: time.Date(2024, 1, 20, 10, 0, 0, 0, time.UTC), StartedAt: &started, ArtifactSize: &size,
		ProgressStep: 2, ProgressSteps: 5, LogSeq: 42}, b)

	require.NoError(t, unpackAPIColumns("build_1\x1fproj_1\x1fmac\x1fx64\x1fqueued\x1f\x1f2024-01-20 10:00:00\x1f\x1f\x1f\x1f0\x1f0\x1f0", &b))
	require.Nil(t, b.RetryOf)
	require.Nil(t, b.StartedAt)
	require.Nil(t, b.ArtifactSize)

	for _, packed := range []string{
		"build_1\x1fproj_1\x1fma\x1fc\x1fx64\x1fqueued\x1f\x1f2024-01-20 10:00:00\x1f\x1f\x1f\x1f0\x1f0\x1f0", // one too many
		"build_1\x1fproj_1\x1fx64\x1fqueued\x1f\x1f2024-01-20 10:00:00\x1f\x1f\x1f\x1f0\x1f0\x1f0",            // one too few
		"build_1\x1fproj_1\x1fmac\x1fx64\x1fqueued\x1f\x1fyesterday\x1f\x1f\x1f\x1f0\x1f0\x1f0",               // not a time
		"build_1\x1fproj_1\x1fmac\x1fx64\x1fqueued\x1f\x1f2024-01-20 10:00:00\x1f\x1f\x1fbig\x1f0\x1f0\x1f0",  // not a number
	} {
		require.Error(t, unpackAPIColumns(packed, &b), "%q", packed)
	}
}
