package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
)

var timestampRe = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

func TestAPIHealth(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		for _, path := range []string{"/healthz", "/readyz"} {
			r := b.do(t, http.MethodGet, path, "", nil)
			require.Equal(t, http.StatusOK, r.status, path)
			require.NotEmpty(t, r.json(t)["status"])
		}
	})
}

func TestAPIAuthMatrix(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		buildA := b.createBuild(t, b.projectA.ID, b.adminKey, map[string]any{"platform": "mac"})
		spare := models.Project{Name: "Spare", URL: "https://spare.example", Platforms: "mac"}
		require.NoError(t, b.store.CreateProject(b.ctx, &spare))

		type endpoint struct {
			method, path string
			body         any
		}
		endpoints := map[string]endpoint{
			"ListBuilds":    {http.MethodGet, "/projects/" + b.projectA.ID + "/builds", nil},
			"GetBuild":      {http.MethodGet, "/builds/" + buildA, nil},
			"GetLogs":       {http.MethodGet, "/builds/" + buildA + "/logs", nil},
			"TriggerBuild":  {http.MethodPost, "/projects/" + b.projectA.ID + "/builds", map[string]any{"platform": "linux"}},
			"GetProject":    {http.MethodGet, "/projects/" + b.projectA.ID, nil},
			"ListProjects":  {http.MethodGet, "/projects", nil},
			"CreateProject": {http.MethodPost, "/projects", map[string]any{"name": "N", "url": "https://n.example", "platforms": []string{"mac"}}},
			"PatchProject":  {http.MethodPatch, "/projects/" + b.projectA.ID, map[string]any{"author": "Ada"}},
			"ListKeys":      {http.MethodGet, "/apikeys", nil},
		}
		callers := map[string]string{
			"None": "", "Unknown": "df_unknownkeyunknownkeyunknownkey", "Revoked": b.revokedKey,
			"Admin": b.adminKey, "OwnProject": b.keyA, "OtherProject": b.keyB,
		}
		// Expected status per endpoint for callers that are authenticated.
		expect := map[string]map[string]int{
			"ListBuilds":    {"Admin": 200, "OwnProject": 200, "OtherProject": 404},
			"GetBuild":      {"Admin": 200, "OwnProject": 200, "OtherProject": 404},
			"GetLogs":       {"Admin": 200, "OwnProject": 200, "OtherProject": 404},
			"TriggerBuild":  {"Admin": 201, "OwnProject": 201, "OtherProject": 404},
			"GetProject":    {"Admin": 200, "OwnProject": 200, "OtherProject": 404},
			"ListProjects":  {"Admin": 200, "OwnProject": 200, "OtherProject": 200},
			"CreateProject": {"Admin": 201, "OwnProject": 403, "OtherProject": 403},
			"PatchProject":  {"Admin": 200, "OwnProject": 403, "OtherProject": 403},
			"ListKeys":      {"Admin": 200, "OwnProject": 403, "OtherProject": 403},
		}
		for name, ep := range endpoints {
			for caller, key := range callers {
				t.Run(name+"/"+caller, func(t *testing.T) {
					r := b.do(t, ep.method, ep.path, key, ep.body)
					want, authenticated := expect[name][caller]
					if !authenticated {
						require.Equal(t, http.StatusUnauthorized, r.status, "%s", r.body)
						require.True(t, strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer"))
						code, _ := r.errorOf(t)
						require.Equal(t, "unauthorized", code)
						return
					}
					require.Equal(t, want, r.status, "%s", r.body)
					if want >= 400 {
						r.errorOf(t)
					}
				})
			}
		}

		// Deleting: another project's key and a project key on its own
		// project cannot; an admin can.
		require.Equal(t, http.StatusForbidden, b.do(t, http.MethodDelete, "/projects/"+spare.ID, b.keyA, nil).status)
		require.Equal(t, http.StatusUnauthorized, b.do(t, http.MethodDelete, "/projects/"+spare.ID, "", nil).status)
		require.Equal(t, http.StatusNoContent, b.do(t, http.MethodDelete, "/projects/"+spare.ID, b.adminKey, nil).status)

		// A project key lists only its own project.
		r := b.do(t, http.MethodGet, "/projects", b.keyB, nil)
		v := r.json(t)
		require.EqualValues(t, 1, v["total"])
		require.Equal(t, b.projectB.ID, v["projects"].([]any)[0].(map[string]any)["id"])

		// Malformed Authorization headers are 401 too.
		for _, h := range []string{"Basic abc", "Bearer", "Bearer ", "df_x"} {
			r := b.do(t, http.MethodGet, "/projects", "", nil, "Authorization", h)
			require.Equal(t, http.StatusUnauthorized, r.status, h)
		}
	})
}

func TestAPITriggerBuildValidation(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		path := "/projects/" + b.projectB.ID + "/builds" // linux only, no default version
		tests := []struct {
			name   string
			body   any
			status int
			code   string
			field  string
		}{
			{"BadPlatform", map[string]any{"platform": "ios", "version": "1.0.0"}, 400, "invalid_request", "platform"},
			{"MissingPlatform", map[string]any{"version": "1.0.0"}, 400, "invalid_request", "platform"},
			{"EmptyPlatform", map[string]any{"platform": "", "version": "1.0.0"}, 400, "invalid_request", "platform"},
			{"PlatformNotInProject", map[string]any{"platform": "mac", "version": "1.0.0"}, 400, "invalid_request", "platform"},
			{"BadArch", map[string]any{"platform": "linux", "arch": "x86", "version": "1.0.0"}, 400, "invalid_request", "arch"},
			{"EmptyArch", map[string]any{"platform": "linux", "arch": "", "version": "1.0.0"}, 400, "invalid_request", "arch"},
			{"LeadingV", map[string]any{"platform": "linux", "version": "v1.0.0"}, 400, "invalid_request", "version"},
			{"TwoComponents", map[string]any{"platform": "linux", "version": "1.0"}, 400, "invalid_request", "version"},
			{"BuildMetadata", map[string]any{"platform": "linux", "version": "2.0.0-rc.1+build.5"}, 400, "invalid_request", "version"},
			{"EmptyVersion", map[string]any{"platform": "linux", "version": ""}, 400, "invalid_request", "version"},
			{"NoVersionAnywhere", map[string]any{"platform": "linux"}, 400, "invalid_request", "version"},
			{"UnknownField", map[string]any{"platform": "linux", "version": "1.0.0", "color": "red"}, 400, "invalid_request", "color"},
			{"WrongTypePlatform", map[string]any{"platform": 5, "version": "1.0.0"}, 400, "invalid_request", "platform"},
			{"WrongTypeVersion", map[string]any{"platform": "linux", "version": 1.0}, 400, "invalid_request", "version"},
			{"EmptyBody", []byte(""), 400, "invalid_request", "body"},
			{"EmptyObject", []byte("{}"), 400, "invalid_request", "platform"},
			{"NullBody", []byte("null"), 400, "invalid_request", "body"},
			{"ArrayBody", []byte(`[{"platform":"linux"}]`), 400, "invalid_request", "body"},
			{"MalformedJSON", []byte(`{"platform": "linux",`), 400, "invalid_request", "body"},
			{"SyntaxError", []byte(`{"platform" "linux"}`), 400, "invalid_request", "body"},
			{"TwoObjects", []byte(`{"platform":"linux","version":"1.0.0"}{}`), 400, "invalid_request", "body"},
			{"TwoMiBBody", bytes.Repeat([]byte(" "), 2<<20), 413, "payload_too_large", ""},
			{"TwoMiBBodyChunked", io.MultiReader(strings.NewReader(`{"platform":"`), bytes.NewReader(bytes.Repeat([]byte("a"), 2<<20))), 413, "payload_too_large", ""},
			{"LongIdempotencyKey", map[string]any{"platform": "linux", "version": "1.0.0"}, 400, "invalid_request", "Idempotency-Key"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var headers []string
				if tt.name == "LongIdempotencyKey" {
					headers = []string{"Idempotency-Key", strings.Repeat("k", 256)}
				}
				r := b.do(t, http.MethodPost, path, b.adminKey, tt.body, headers...)
				require.Equal(t, tt.status, r.status, "%s", r.body)
				code, field := r.errorOf(t)
				require.Equal(t, tt.code, code)
				require.Equal(t, tt.field, field)
			})
		}
		require.Zero(t, b.count(t, "builds"))
		require.Zero(t, b.count(t, "river_job"))

		// Valid requests: defaults and explicit values.
		r := b.do(t, http.MethodPost, "/projects/"+b.projectA.ID+"/builds", b.keyA, map[string]any{"platform": "windows"})
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		v := r.json(t)
		require.Equal(t, "x64", v["arch"])
		require.Equal(t, "1.0.0", v["version"])
		r = b.do(t, http.MethodPost, path, b.keyB, map[string]any{"platform": "linux", "arch": "arm64", "version": "2.0.0-rc.1.build.5"})
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		require.Equal(t, "2.0.0-rc.1.build.5", r.json(t)["version"])
		require.Equal(t, int64(2), b.count(t, "river_job"))
	})
}

func TestAPITriggerAndGetBuild(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		r := b.do(t, http.MethodPost, "/projects/"+b.projectA.ID+"/builds", b.keyA,
			map[string]any{"platform": "mac", "arch": "arm64", "version": "1.0.0"})
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		v := r.json(t)
		id := v["id"].(string)
		require.Regexp(t, `^build_[0-9a-z]{26}$`, id)
		require.Equal(t, testPublicURL+"/builds/"+id, r.header.Get("Location"))
		require.Equal(t, "queued", v["status"])
		require.Equal(t, "Build queued successfully", v["message"])
		require.Regexp(t, timestampRe, v["createdAt"])

		g := b.do(t, http.MethodGet, "/builds/"+id, b.keyA, nil)
		require.Equal(t, http.StatusOK, g.status)
		got := g.json(t)
		require.Equal(t, id, got["id"])
		require.Equal(t, b.projectA.ID, got["projectId"])
		require.Equal(t, "queued", got["status"])
		require.Equal(t, v["createdAt"], got["createdAt"])
		require.Equal(t, testPublicURL+"/builds/"+id+"/logs", got["buildLog"])
		for _, k := range []string{"startedAt", "completedAt", "duration", "artifactUrl", "artifactSize"} {
			val, present := got[k]
			require.True(t, present, k)
			require.Nil(t, val, k)
		}
		require.NotContains(t, got, "retryOf")

		r = b.do(t, http.MethodGet, "/builds/build_01hqz00000000000000000000z", b.adminKey, nil)
		require.Equal(t, http.StatusNotFound, r.status)
		code, _ := r.errorOf(t)
		require.Equal(t, "not_found", code)
		r = b.do(t, http.MethodPost, "/projects/proj_01hqz00000000000000000000z/builds", b.adminKey, map[string]any{"platform": "mac"})
		require.Equal(t, http.StatusNotFound, r.status)
	})
}

func TestAPIIdempotency(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		path := "/projects/" + b.projectA.ID + "/builds"
		body := map[string]any{"platform": "mac", "arch": "arm64"}
		first := b.do(t, http.MethodPost, path, b.keyA, body, "Idempotency-Key", "release-1")
		require.Equal(t, http.StatusCreated, first.status, "%s", first.body)
		again := b.do(t, http.MethodPost, path, b.keyA, body, "Idempotency-Key", "release-1")
		require.Equal(t, http.StatusCreated, again.status)
		require.JSONEq(t, string(first.body), string(again.body))
		require.Equal(t, first.header.Get("Location"), again.header.Get("Location"))
		require.Equal(t, int64(1), b.count(t, "builds"))

		other := b.do(t, http.MethodPost, path, b.keyA, map[string]any{"platform": "linux"}, "Idempotency-Key", "release-1")
		require.Equal(t, http.StatusConflict, other.status, "%s", other.body)
		code, _ := other.errorOf(t)
		require.Equal(t, "idempotency_key_reused", code)

		// Concurrent identical requests create exactly one build.
		const n = 10
		ids := make([]string, n)
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := b.do(t, http.MethodPost, path, b.adminKey, map[string]any{"platform": "windows"}, "Idempotency-Key", "burst")
				statuses[i] = r.status
				if r.status == http.StatusCreated {
					ids[i] = r.json(t)["id"].(string)
				}
			}()
		}
		wg.Wait()
		for i := range n {
			require.Equal(t, http.StatusCreated, statuses[i])
			require.Equal(t, ids[0], ids[i])
		}
		require.Equal(t, int64(2), b.count(t, "builds"))
		require.Equal(t, int64(2), b.count(t, "river_job"))
	})
}

// insertBuilds writes n builds of a project in one INSERT … SELECT over a
// generated series (row-by-row or GORM batches are slow on SQLite under
// -race); statuses, platforms, arches and versions cycle so filters have
// work. Their ids, returned oldest first, sort below any id NewID makes.
func insertBuilds(t *testing.T, b *apiBundle, projectID string, n int) []string {
	t.Helper()
	id := "printf('build_%026d', i)"
	if b.db.Dialect == models.DialectPostgres {
		id = "'build_' || lpad(i::text, 26, '0')"
	}
	now := time.Now().UTC()
	err := b.db.Gorm.Exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO builds (id, project_id, version, platform, arch, status, created_at, updated_at, log_seq)
		SELECT `+id+`, ?, '1.0.' || (i % 4),
			CASE i % 3 WHEN 0 THEN 'mac' WHEN 1 THEN 'windows' ELSE 'linux' END,
			CASE i % 2 WHEN 0 THEN 'x64' ELSE 'arm64' END,
			CASE i % 5 WHEN 0 THEN 'queued' WHEN 1 THEN 'building' WHEN 2 THEN 'success' WHEN 3 THEN 'failed' ELSE 'cancelled' END,
			?, ?, 0
		FROM n`, n-1, projectID, now, now).Error
	require.NoError(t, err)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("build_%026d", i)
	}
	return ids
}

func TestAPIPaginationWhileInserting(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		old := insertBuilds(t, b, b.projectA.ID, 10000)

		// New builds keep arriving while the client pages.
		stop := make(chan struct{})
		var inserted sync.WaitGroup
		inserted.Add(1)
		var newIDs []string
		go func() {
			defer inserted.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := b.do(t, http.MethodPost, "/projects/"+b.projectA.ID+"/builds", b.keyA, map[string]any{"platform": "linux"})
				if r.status != http.StatusCreated {
					t.Errorf("insert during paging: %d %s", r.status, r.body)
					return
				}
				newIDs = append(newIDs, r.json(t)["id"].(string))
				time.Sleep(2 * time.Millisecond)
			}
		}()

		seen := map[string]int{}
		var order []string
		cursor := ""
		pages := 0
		for {
			path := "/projects/" + b.projectA.ID + "/builds?limit=200"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			r := b.do(t, http.MethodGet, path, b.keyA, nil)
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			v := r.json(t)
			require.GreaterOrEqual(t, v["total"].(float64), float64(10000))
			items := v["builds"].([]any)
			require.LessOrEqual(t, len(items), 200)
			for _, it := range items {
				id := it.(map[string]any)["id"].(string)
				seen[id]++
				order = append(order, id)
			}
			pages++
			next, _ := v["nextCursor"].(string)
			if next == "" {
				break
			}
			cursor = next
		}
		close(stop)
		inserted.Wait()

		require.GreaterOrEqual(t, pages, 50)
		for id, n := range seen {
			require.Equal(t, 1, n, "duplicate %s", id)
		}
		for _, id := range old {
			require.Equal(t, 1, seen[id], "gap: %s missing", id)
		}
		for i := 1; i < len(order); i++ {
			require.Greater(t, order[i-1], order[i], "newest first")
		}
		require.NotEmpty(t, newIDs, "builds were inserted while paging")

		t.Run("Filters", func(t *testing.T) {
			base := "/projects/" + b.projectA.ID + "/builds"
			for _, tt := range []struct {
				query string
				want  int  // among the 10,000 old builds
				walk  bool // walk every page (else the first page only)
				check func(item map[string]any) bool
			}{
				{"status=failed", 2000, true, func(m map[string]any) bool { return m["status"] == "failed" }},
				{"platform=mac", 3334, false, func(m map[string]any) bool { return m["platform"] == "mac" }},
				{"arch=arm64", 5000, false, func(m map[string]any) bool { return m["arch"] == "arm64" }},
				{"version=1.0.3", 2500, false, func(m map[string]any) bool { return m["version"] == "1.0.3" }},
				{"status=success&platform=windows&arch=x64", 333, true, func(m map[string]any) bool {
					return m["status"] == "success" && m["platform"] == "windows" && m["arch"] == "x64"
				}},
			} {
				total, walked := -1, 0
				cursor := ""
				for {
					path := base + "?limit=200&" + tt.query
					if cursor != "" {
						path += "&cursor=" + cursor
					}
					r := b.do(t, http.MethodGet, path, b.adminKey, nil)
					require.Equal(t, http.StatusOK, r.status, "%s", r.body)
					v := r.json(t)
					if total < 0 {
						total = int(v["total"].(float64))
					}
					for _, it := range v["builds"].([]any) {
						require.True(t, tt.check(it.(map[string]any)), tt.query)
						walked++
					}
					next, _ := v["nextCursor"].(string)
					if !tt.walk {
						require.Len(t, v["builds"], 200)
						require.NotEmpty(t, next)
						walked = total
						break
					}
					if next == "" {
						break
					}
					cursor = next
				}
				// None of the filters matches the builds created while paging
				// (linux, x64, 1.0.0, queued).
				require.Equal(t, tt.want, total, tt.query)
				require.Equal(t, total, walked, tt.query)
			}
		})

		t.Run("Limits", func(t *testing.T) {
			base := "/projects/" + b.projectA.ID + "/builds"
			r := b.do(t, http.MethodGet, base, b.adminKey, nil)
			require.Len(t, r.json(t)["builds"], 50, "default page size")
			for _, q := range []string{"limit=0", "limit=201", "limit=abc", "limit=-1"} {
				r := b.do(t, http.MethodGet, base+"?"+q, b.adminKey, nil)
				require.Equal(t, http.StatusBadRequest, r.status, q)
				_, field := r.errorOf(t)
				require.Equal(t, "limit", field)
			}
			for q, field := range map[string]string{
				"cursor=abc": "cursor", "status=done": "status", "platform=ios": "platform", "arch=x86": "arch",
				"version=" + strings.Repeat("1", 101): "version",
			} {
				r := b.do(t, http.MethodGet, base+"?"+q, b.adminKey, nil)
				require.Equal(t, http.StatusBadRequest, r.status, q)
				_, got := r.errorOf(t)
				require.Equal(t, field, got, q)
			}
			r = b.do(t, http.MethodGet, base+"?limit=200", b.adminKey, nil)
			require.Len(t, r.json(t)["builds"], 200)
			// An unknown project is a 404 before its filters are judged.
			missing := "/projects/" + models.NewID("proj") + "/builds"
			for _, q := range []string{"", "?status=failed", "?limit=0", "?status=done"} {
				r := b.do(t, http.MethodGet, missing+q, b.adminKey, nil)
				require.Equal(t, http.StatusNotFound, r.status, q)
			}
		})
	})
}

func TestAPILogs(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		id := b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": "mac"})
		// 2,500 more entries (the first is "Build queued"): more than two
		// of the server's read chunks.
		levels := []string{"debug", "info", "warning", "error", "success"}
		start := time.Date(2024, 1, 20, 10, 1, 0, 0, time.UTC)
		var lines []models.LogLine
		for i := range 2500 {
			lines = append(lines, models.LogLine{Timestamp: start.Add(time.Duration(i) * time.Second), Level: levels[i%5], Message: fmt.Sprintf("line %d", i)})
		}
		require.NoError(t, b.store.Tx(b.ctx, func(tx *gorm.DB) error { return models.AppendLogTx(b.ctx, tx, id, lines...) }))

		r := b.do(t, http.MethodGet, "/builds/"+id+"/logs", b.keyA, nil)
		require.Equal(t, http.StatusOK, r.status)
		require.Equal(t, "application/json; charset=utf-8", r.header.Get("Content-Type"))
		v := r.json(t)
		require.Equal(t, id, v["buildId"])
		logs := v["logs"].([]any)
		require.Len(t, logs, 2501)
		require.Equal(t, "Build queued", logs[0].(map[string]any)["message"])
		last := logs[2500].(map[string]any)
		require.Equal(t, map[string]any{"timestamp": "2024-01-20T10:42:39Z", "level": "success", "message": "line 2499"}, last)
		require.EqualValues(t, 2501, v["nextAfter"])

		// Paging with after and limit.
		var all []string
		after := 0
		for {
			r := b.do(t, http.MethodGet, fmt.Sprintf("/builds/%s/logs?after=%d&limit=700", id, after), b.keyA, nil)
			require.Equal(t, http.StatusOK, r.status)
			v := r.json(t)
			page := v["logs"].([]any)
			if len(page) == 0 {
				require.EqualValues(t, after, v["nextAfter"])
				break
			}
			require.LessOrEqual(t, len(page), 700)
			for _, e := range page {
				all = append(all, e.(map[string]any)["message"].(string))
			}
			after = int(v["nextAfter"].(float64))
		}
		require.Len(t, all, 2501)
		require.Equal(t, "line 0", all[1])
		require.Equal(t, "line 2499", all[2500])

		// ?level=warning keeps warning and error.
		r = b.do(t, http.MethodGet, "/builds/"+id+"/logs?level=warning", b.keyA, nil)
		v = r.json(t)
		require.Len(t, v["logs"], 1000)
		for _, e := range v["logs"].([]any) {
			require.Contains(t, []string{"warning", "error"}, e.(map[string]any)["level"])
		}
		r = b.do(t, http.MethodGet, "/builds/"+id+"/logs?level=info", b.keyA, nil)
		require.Len(t, r.json(t)["logs"], 2001, "info keeps info, success, warning, error")

		// ?format=text.
		r = b.do(t, http.MethodGet, "/builds/"+id+"/logs?format=text&limit=3", b.keyA, nil)
		require.Equal(t, http.StatusOK, r.status)
		require.Equal(t, "text/plain; charset=utf-8", r.header.Get("Content-Type"))
		textLines := strings.Split(strings.TrimSuffix(string(r.body), "\n"), "\n")
		require.Len(t, textLines, 3)
		require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[info\] Build queued$`, textLines[0])
		require.Equal(t, "2024-01-20T10:01:00Z [debug] line 0", textLines[1])
		require.Equal(t, "2024-01-20T10:01:01Z [info] line 1", textLines[2])

		for q, field := range map[string]string{"after=-1": "after", "after=x": "after", "limit=0": "limit", "limit=100001": "limit", "level=fatal": "level", "format=xml": "format"} {
			r := b.do(t, http.MethodGet, "/builds/"+id+"/logs?"+q, b.keyA, nil)
			require.Equal(t, http.StatusBadRequest, r.status, q)
			_, got := r.errorOf(t)
			require.Equal(t, field, got, q)
		}
		r = b.do(t, http.MethodGet, "/builds/build_01hqz00000000000000000000z/logs", b.keyA, nil)
		require.Equal(t, http.StatusNotFound, r.status)
	})
}

func TestAPIErrorEnvelopeAndRequestID(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		r := b.do(t, http.MethodGet, "/nowhere", "", nil)
		require.Equal(t, http.StatusNotFound, r.status)
		code, _ := r.errorOf(t)
		require.Equal(t, "not_found", code)
		require.Equal(t, r.header.Get("X-Request-Id"), r.json(t)["requestId"])

		r = b.do(t, http.MethodPut, "/builds/build_01hqz00000000000000000000z", b.adminKey, nil)
		require.Equal(t, http.StatusMethodNotAllowed, r.status)
		code, _ = r.errorOf(t)
		require.Equal(t, "method_not_allowed", code)

		r = b.do(t, http.MethodGet, "/healthz", "", nil, "X-Request-Id", "trace-123")
		require.Equal(t, "trace-123", r.header.Get("X-Request-Id"))
		r = b.do(t, http.MethodGet, "/healthz", "", nil, "X-Request-Id", "bad id with spaces")
		require.NotEqual(t, "bad id with spaces", r.header.Get("X-Request-Id"))
		require.NotEmpty(t, r.header.Get("X-Request-Id"))
	})
}
