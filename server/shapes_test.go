package server_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/workflows"
)

// seed reads one of the contract's response examples from testdata/seed.
func seed(t *testing.T, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "seed", name))
	require.NoError(t, err)
	var v map[string]any
	require.NoError(t, json.Unmarshal(data, &v))
	return v
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

func keysOf(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// timestampKeys are the fields that hold timestamps in the contract.
var timestampKeys = map[string]bool{"createdAt": true, "startedAt": true, "completedAt": true, "timestamp": true}

// requireSameShape checks that got has every key of want with the same JSON
// type, that timestamps match the contract's format, and that got has no
// keys besides want's and extra.
func requireSameShape(t *testing.T, want, got map[string]any, extra ...string) {
	t.Helper()
	for k, wv := range want {
		gv, ok := got[k]
		require.True(t, ok, "missing key %q in %v", k, got)
		require.Equal(t, jsonType(wv), jsonType(gv), "type of %q", k)
		if timestampKeys[k] {
			require.Regexp(t, timestampRe, gv, k)
		}
	}
	allowed := map[string]bool{}
	for _, k := range extra {
		allowed[k] = true
	}
	for k := range got {
		_, inSeed := want[k]
		require.True(t, inSeed || allowed[k], "unexpected key %q", k)
	}
}

func TestAPIJSONShapesMatchTheContract(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		// Trigger Build: exactly the seed's keys and types.
		r := b.do(t, http.MethodPost, "/projects/"+b.projectA.ID+"/builds", b.keyA, map[string]any{"platform": "mac", "arch": "arm64", "version": "1.0.0"})
		require.Equal(t, http.StatusCreated, r.status)
		trigger := r.json(t)
		require.Equal(t, keysOf(seed(t, "trigger_build.json")), keysOf(trigger))
		requireSameShape(t, seed(t, "trigger_build.json"), trigger)
		id := trigger["id"].(string)

		// Finish the build as the engine would, so every field is known.
		started := time.Date(2024, 1, 20, 10, 1, 0, 0, time.UTC)
		completed := time.Date(2024, 1, 20, 10, 15, 0, 0, time.UTC)
		size := int64(45678912)
		require.NoError(t, b.db.Gorm.Model(&models.Build{}).Where("id = ?", id).Updates(map[string]any{
			"status": models.StatusSuccess, "started_at": started, "completed_at": completed,
			"artifact_name": "my-app-1.0.0-mac-arm64.dmg", "artifact_size": size,
		}).Error)
		require.NoError(t, b.store.Tx(b.ctx, func(tx *gorm.DB) error {
			return models.AppendLogTx(b.ctx, tx, id,
				models.LogLine{Timestamp: started, Level: models.LevelInfo, Message: "Starting build process..."},
				models.LogLine{Timestamp: completed, Level: models.LevelSuccess, Message: "Build completed successfully"})
		}))

		// Get Build: exactly the seed's keys and types, plus error (null
		// unless the build failed).
		r = b.do(t, http.MethodGet, "/builds/"+id, b.keyA, nil)
		require.Equal(t, http.StatusOK, r.status)
		get := r.json(t)
		// Extensions: the step running, and why a failed build failed.
		wantKeys := append(keysOf(seed(t, "get_build.json")), "progress", "error")
		sort.Strings(wantKeys)
		require.Equal(t, wantKeys, keysOf(get))
		require.Nil(t, get["error"], "a successful build has no error")
		requireSameShape(t, seed(t, "get_build.json"), get, "progress", "error")
		require.EqualValues(t, 840, get["duration"])
		require.EqualValues(t, size, get["artifactSize"])
		require.Regexp(t, `^`+regexp.QuoteMeta(testPublicURL)+`/signed/\d+/[A-Za-z0-9_-]{43}/builds/`+id+`/artifacts/my-app-1\.0\.0-mac-arm64\.dmg$`, get["artifactUrl"])
		require.Equal(t, testPublicURL+"/builds/"+id+"/logs", get["buildLog"])

		// List Builds: the seed's keys plus nextCursor; items have the seed's
		// item keys and types, and are exactly Get Build's shape.
		r = b.do(t, http.MethodGet, "/projects/"+b.projectA.ID+"/builds", b.keyA, nil)
		require.Equal(t, http.StatusOK, r.status)
		list := r.json(t)
		wantList := seed(t, "list_builds.json")
		requireSameShape(t, wantList, list, "nextCursor")
		require.Nil(t, list["nextCursor"])
		require.EqualValues(t, 1, list["total"])
		item := list["builds"].([]any)[0].(map[string]any)
		requireSameShape(t, wantList["builds"].([]any)[0].(map[string]any), item, keysOf(get)...)
		require.Equal(t, get, item)

		// Build Logs: the seed's keys plus nextAfter; entries exactly the
		// seed's.
		r = b.do(t, http.MethodGet, "/builds/"+id+"/logs", b.keyA, nil)
		require.Equal(t, http.StatusOK, r.status)
		logs := r.json(t)
		wantLogs := seed(t, "build_logs.json")
		requireSameShape(t, wantLogs, logs, "nextAfter")
		wantEntry := wantLogs["logs"].([]any)[0].(map[string]any)
		entries := logs["logs"].([]any)
		require.Len(t, entries, 3)
		for _, e := range entries {
			require.Equal(t, keysOf(wantEntry), keysOf(e.(map[string]any)))
			requireSameShape(t, wantEntry, e.(map[string]any))
		}
		require.Equal(t, map[string]any{"timestamp": "2024-01-20T10:15:00Z", "level": "success", "message": "Build completed successfully"}, entries[2])
	})
}

// TestFailedBuildSaysWhy: a failed build's error names the code, the
// message and the failed step, in Get Build and in List Builds.
func TestFailedBuildSaysWhy(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		id := b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": "linux", "arch": "x64", "version": "2.0.0"})
		noStep := b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": "linux", "arch": "x64", "version": "2.0.1"})
		require.NoError(t, b.db.Gorm.Model(&models.Build{}).Where("id = ?", id).Updates(map[string]any{
			"status": models.StatusFailed, "error_code": workflows.ErrorStepFailed, "error_step": "Build installer",
			"failure_reason": `step "Build installer" failed: error[E0308]: mismatched types`,
		}).Error)
		require.NoError(t, b.db.Gorm.Model(&models.Build{}).Where("id = ?", noStep).Updates(map[string]any{
			"status": models.StatusFailed, "error_code": workflows.ErrorDispatchFailed, "failure_reason": "could not dispatch the workflow: GitHub unreachable",
		}).Error)

		want := map[string]any{"code": "step_failed", "message": `step "Build installer" failed: error[E0308]: mismatched types`, "step": "Build installer"}
		r := b.do(t, http.MethodGet, "/builds/"+id, b.keyA, nil)
		require.Equal(t, http.StatusOK, r.status)
		require.Equal(t, want, r.json(t)["error"])
		r = b.do(t, http.MethodGet, "/builds/"+noStep, b.keyA, nil)
		require.Equal(t, map[string]any{"code": "dispatch_failed", "message": "could not dispatch the workflow: GitHub unreachable", "step": nil}, r.json(t)["error"])

		r = b.do(t, http.MethodGet, "/projects/"+b.projectA.ID+"/builds?status=failed", b.keyA, nil)
		require.Equal(t, http.StatusOK, r.status)
		var found bool
		for _, item := range r.json(t)["builds"].([]any) {
			if item.(map[string]any)["id"] == id {
				found = true
				require.Equal(t, want, item.(map[string]any)["error"])
			}
		}
		require.True(t, found)
	})
}
