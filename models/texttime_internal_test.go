package models

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestParseStoredTime reads what the driver reads, the same instant, and
// refuses what is no timestamp.
func TestParseStoredTime(t *testing.T) {
	for _, s := range []string{
		"2024-01-20 10:00:00+00:00", "2024-01-20 10:00:00.5+00:00", "2024-01-20 10:00:00.123456789+00:00",
		"2024-01-20 11:30:00.000001+01:30", "2024-01-20 02:00:00-08:00", "2024-02-29 23:59:59.999999999-00:00",
		"2024-01-20T10:00:00+00:00", "2024-01-20T10:00:00.25Z", "2024-01-20 10:00:00", "2024-01-20 10:00:00.7",
		"2024-01-20 10:00", "2024-01-20",
	} {
		got, err := parseStoredTime(s)
		require.NoError(t, err, s)
		var want time.Time
		for _, layout := range storedTimeLayouts {
			if w, err := time.ParseInLocation(layout, strings.TrimSuffix(s, "Z"), time.UTC); err == nil {
				want = w
				break
			}
		}
		require.False(t, want.IsZero(), s)
		require.True(t, want.Equal(got), "%s: got %s, want %s", s, got, want)
		_, offWant := want.Zone()
		_, offGot := got.Zone()
		require.Equal(t, offWant, offGot, s)
	}
	now := time.Date(2024, 1, 20, 10, 0, 0, 123, time.FixedZone("CET", 3600))
	got, err := parseStoredTime(now.String())
	require.NoError(t, err)
	require.True(t, now.Equal(got))
	for _, s := range []string{"", "yesterday", "2024-13-01 10:00:00", "2024-02-30 10:00:00+00:00", "2024-01-20 10:00:00+0100",
		"2024-01-20 10:00:00.+00:00", "2024-01-20 25:00:00"} {
		_, err := parseStoredTime(s)
		require.Error(t, err, s)
	}
}
