package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
)

// TestAppendBuildMatchesEncodingJSON holds the hand-written encoder of
// builds to the bytes encoding/json writes for buildJSON's struct, for
// every optional part and for text that needs escaping.
func TestAppendBuildMatchesEncodingJSON(t *testing.T) {
	links := newLinkSigner(nil, []byte("a signing key of the test, 32 bytes or more"))
	links.now = func() time.Time { return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC) }
	s := &Server{publicURL: "https://api.deskforge.test", links: links}
	at := func(sec int) *time.Time {
		t := time.Date(2024, 1, 20, 10, 0, sec, 987654321, time.FixedZone("CET", 3600))
		return &t
	}
	size := int64(45678912)
	retry := "build_01hqxyz0000000000000000000"
	tricky := []string{"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\x00nul",
		"ünïcødé ✓ 🚀", "line\u2028separator\u2029", "invalid \xff\xfe utf-8", "My App 1.0 (beta)/x?y#z%"}
	var builds []models.Build
	for i, text := range tricky {
		base := models.Build{ID: "build_01hq" + string(rune('a'+i)) + "0000000000000000000000", ProjectID: "proj_" + text, Version: text,
			Platform: "mac", Arch: "arm64", CreatedAt: *at(i)}
		queued := base
		queued.Status = models.StatusQueued
		building := base
		building.Status, building.StartedAt = models.StatusBuilding, at(30)
		building.ProgressStep, building.ProgressSteps, building.ProgressName = 3, 9, text
		building.RetryOf = &retry
		success := base
		success.Status, success.StartedAt, success.CompletedAt = models.StatusSuccess, at(1), at(59)
		success.ArtifactName, success.ArtifactSize = text+".dmg", &size
		noSize := success
		noSize.ArtifactSize = nil
		noArtifact := success
		noArtifact.ArtifactName = ""
		failed := base
		failed.Status, failed.StartedAt, failed.CompletedAt = models.StatusFailed, at(1), at(2)
		failed.ErrorCode, failed.FailureReason, failed.ErrorStep = "compile_error", text, text
		failedBare := base
		failedBare.Status = models.StatusFailed
		cancelled := base
		cancelled.Status, cancelled.CompletedAt = models.StatusCancelled, at(5)
		builds = append(builds, queued, building, success, noSize, noArtifact, failed, failedBare, cancelled)
	}
	for _, publicURL := range []string{s.publicURL, "https://example.test/deskforge?a=<b>&c=ü"} {
		s := &Server{publicURL: publicURL, links: links}
		for _, b := range builds {
			want, err := json.Marshal(s.buildJSON(b))
			require.NoError(t, err)
			require.Equal(t, string(want), string(s.appendBuild(nil, &b)))
		}
	}
	for _, tm := range []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.FixedZone("W", -3600)), time.Date(-5, 3, 1, 1, 2, 3, 0, time.UTC),
		time.Date(2024, 2, 29, 9, 8, 7, 0, time.FixedZone("NPT", 5*3600+45*60)),
	} {
		want, err := json.Marshal(formatTime(tm))
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendJSONTime(nil, &tm)), "%s", tm)
	}
	for _, next := range []string{"", "build_01hqa0000000000000000000000"} {
		resp := buildListResponse{Builds: []buildResponse{}, Total: 123456789, NextCursor: nil}
		for _, b := range builds {
			resp.Builds = append(resp.Builds, s.buildJSON(b))
		}
		if next != "" {
			resp.NextCursor = &next
		}
		want, err := json.Marshal(resp)
		require.NoError(t, err)
		require.Equal(t, string(want), string(s.appendBuildList(nil, builds, 123456789, next)))
	}
	// An empty page is an empty array, not null.
	want, err := json.Marshal(buildListResponse{Builds: []buildResponse{}})
	require.NoError(t, err)
	require.Equal(t, string(want), string(s.appendBuildList(nil, nil, 0, "")))

	// What the handler sends: the same bytes and content type as c.JSON.
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	s.renderBuild(c, http.StatusOK, &builds[5])
	ref := httptest.NewRecorder()
	rc, _ := gin.CreateTestContext(ref)
	rc.JSON(http.StatusOK, s.buildJSON(builds[5]))
	require.Equal(t, ref.Header().Get("Content-Type"), w.Header().Get("Content-Type"))
	require.Equal(t, ref.Body.String(), w.Body.String())
}
