package e2e

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/client"
	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/workflows"
)

// TestClientDecodesEveryRoute is the referee between the server and the
// client package until an OpenAPI document exists: every public builds and
// projects route is called through the strict client, which refuses an
// answer carrying a field its types do not have, and the decoded values are
// checked against what the server stored.
func TestClientDecodesEveryRoute(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		for _, mode := range []string{workflows.DownloadRedirect, workflows.DownloadProxy} {
			t.Run(dialect+"/"+mode, func(t *testing.T) {
				t.Parallel()
				// The simulator's default scenario: "-fail" fails, "-hang" stays queued.
				h := newHarness(t, config{dialect: dialect, webhooks: true, downloadMode: mode})
				c := h.typed()
				ctx := h.ctx

				// Trigger, with an Idempotency-Key: a replay answers the same build.
				req := client.TriggerRequest{Platform: "mac", Arch: "arm64", Version: "1.2.0", IdempotencyKey: "wire-1"}
				first, err := c.TriggerBuild(ctx, h.project.ID, req)
				require.NoError(t, err)
				again, err := c.TriggerBuild(ctx, h.project.ID, req)
				require.NoError(t, err)
				require.Equal(t, first, again)
				require.Equal(t, client.TriggeredBuild{ID: first.ID, ProjectID: h.project.ID, Platform: "mac", Arch: "arm64",
					Version: "1.2.0", Status: "queued", CreatedAt: first.CreatedAt, Message: "Build queued successfully"}, *first)
				failing, err := c.TriggerBuild(ctx, h.project.ID, client.TriggerRequest{Platform: "linux", Version: "1.2.1-fail"})
				require.NoError(t, err)
				hanging, err := c.TriggerBuild(ctx, h.project.ID, client.TriggerRequest{Platform: "windows", Version: "1.2.2-hang"})
				require.NoError(t, err)
				final := h.waitTerminal(90*time.Second, first.ID, failing.ID)

				// Get: every field as stored.
				b, err := c.GetBuild(ctx, first.ID)
				require.NoError(t, err)
				require.Equal(t, final[first.ID], *b)
				row, err := h.store.GetBuild(ctx, b.ID)
				require.NoError(t, err)
				require.Equal(t, "success", b.Status)
				require.Equal(t, row.CreatedAt.UTC().Truncate(time.Second), b.CreatedAt)
				require.Equal(t, row.ArtifactSize, b.ArtifactSize)
				require.Equal(t, "http://deskforge.test/builds/"+b.ID+"/logs", b.BuildLog)
				f, err := c.GetBuild(ctx, failing.ID)
				require.NoError(t, err)
				require.Equal(t, "failed", f.Status)
				require.Nil(t, f.ArtifactURL)

				// The raw answer has the contract's timestamp format.
				status, raw := h.api(http.MethodGet, "/builds/"+b.ID, nil, nil)
				require.Equal(t, http.StatusOK, status)
				var fields map[string]any
				require.NoError(t, json.Unmarshal(raw, &fields))
				for _, k := range []string{"createdAt", "startedAt", "completedAt"} {
					require.Regexp(t, timestampRe, fields[k], k)
				}

				// List: filters, and keyset paging one build a page.
				var seen []string
				cursor := ""
				for {
					page, err := c.ListBuilds(ctx, h.project.ID, client.BuildFilter{Limit: 1, Cursor: cursor})
					require.NoError(t, err)
					require.EqualValues(t, 3, page.Total)
					require.Len(t, page.Builds, 1)
					seen = append(seen, page.Builds[0].ID)
					if page.NextCursor == nil {
						break
					}
					cursor = *page.NextCursor
				}
				require.Equal(t, []string{hanging.ID, failing.ID, first.ID}, seen, "newest first")
				filtered, err := c.ListBuilds(ctx, h.project.ID, client.BuildFilter{Status: "failed", Platform: "linux", Arch: "x64", Version: "1.2.1-fail"})
				require.NoError(t, err)
				require.EqualValues(t, 1, filtered.Total)
				require.Equal(t, *f, filtered.Builds[0])
				require.Nil(t, filtered.NextCursor)

				// Logs: after and limit page through them; level filters.
				all, err := c.BuildLogs(ctx, first.ID, client.LogOptions{})
				require.NoError(t, err)
				require.Greater(t, len(all.Logs), 3)
				var paged []client.LogEntry
				var after int64
				for {
					page, err := c.BuildLogs(ctx, first.ID, client.LogOptions{After: after, Limit: 3})
					require.NoError(t, err)
					if len(page.Logs) == 0 {
						require.Equal(t, after, page.NextAfter)
						break
					}
					paged = append(paged, page.Logs...)
					after = page.NextAfter
				}
				require.Equal(t, all.Logs, paged)
				errs, err := c.BuildLogs(ctx, failing.ID, client.LogOptions{Level: "error"})
				require.NoError(t, err)
				require.NotEmpty(t, errs.Logs)
				for _, e := range errs.Logs {
					require.Equal(t, "error", e.Level)
				}

				// Download: whole, then from an offset.
				a, err := c.OpenArtifact(ctx, first.ID, 0)
				require.NoError(t, err)
				whole, err := io.ReadAll(a.Body)
				a.Body.Close()
				require.NoError(t, err)
				require.Equal(t, *b.ArtifactSize, int64(len(whole)))
				require.Equal(t, row.ArtifactSHA256, sha256Hex(whole))
				if mode == workflows.DownloadProxy {
					require.Equal(t, row.ArtifactSHA256, a.SHA256, "the proxy's ETag is the SHA-256")
					require.Equal(t, row.ArtifactName, a.Name)
				}
				a, err = c.OpenArtifact(ctx, first.ID, 1000)
				require.NoError(t, err)
				tail, err := io.ReadAll(a.Body)
				a.Body.Close()
				require.NoError(t, err)
				require.Equal(t, int64(1000), a.Offset)
				require.Equal(t, whole[1000:], tail)

				// Cancel and retry answer builds.
				cancelled, err := c.CancelBuild(ctx, hanging.ID)
				require.NoError(t, err)
				require.Equal(t, hanging.ID, cancelled.ID)
				h.waitTerminal(60*time.Second, hanging.ID)
				retry, err := c.RetryBuild(ctx, failing.ID)
				require.NoError(t, err)
				require.Equal(t, failing.ID, *retry.RetryOf)
				require.Equal(t, "queued", retry.Status)

				// Projects, as the project key and as the admin key.
				p, err := c.GetProject(ctx, h.project.ID)
				require.NoError(t, err)
				require.Equal(t, "My App", p.Name)
				require.Equal(t, []string{"mac", "windows", "linux"}, p.Platforms)
				require.Equal(t, client.Window{Width: 1200, Height: 800, Resizable: true}, p.Window)
				require.Nil(t, p.Repository)
				projects, err := c.ListProjects(ctx, client.ListOptions{})
				require.NoError(t, err)
				require.Equal(t, []client.Project{*p}, projects.Projects)
				adminList, err := h.typedWith(h.adminKy).ListProjects(ctx, client.ListOptions{Limit: 1})
				require.NoError(t, err)
				require.EqualValues(t, 1, adminList.Total)

				// Errors: the envelope, typed.
				requireAPIError := func(err error, status int, code, field string) {
					t.Helper()
					var ae *client.APIError
					require.ErrorAs(t, err, &ae)
					require.Equal(t, status, ae.Status, "%v", err)
					require.Equal(t, code, ae.Code)
					require.Equal(t, field, ae.Field)
					require.True(t, strings.HasPrefix(ae.RequestID, "req_"), ae.RequestID)
					require.NotEmpty(t, ae.Message)
				}
				_, err = c.GetBuild(ctx, "build_00000000000000000000000000")
				requireAPIError(err, http.StatusNotFound, "not_found", "")
				_, err = c.TriggerBuild(ctx, h.project.ID, client.TriggerRequest{Platform: "amiga"})
				requireAPIError(err, http.StatusBadRequest, "invalid_request", "platform")
				_, err = c.ListBuilds(ctx, h.project.ID, client.BuildFilter{Limit: 500})
				requireAPIError(err, http.StatusBadRequest, "invalid_request", "limit")
				_, err = c.BuildLogs(ctx, first.ID, client.LogOptions{Level: "loud"})
				requireAPIError(err, http.StatusBadRequest, "invalid_request", "level")
				_, err = c.OpenArtifact(ctx, failing.ID, 0)
				requireAPIError(err, http.StatusConflict, "not_ready", "")
				_, err = c.CancelBuild(ctx, first.ID)
				requireAPIError(err, http.StatusConflict, "conflict", "")
				_, err = h.typedWith("df_unknown").ListProjects(ctx, client.ListOptions{})
				requireAPIError(err, http.StatusUnauthorized, "unauthorized", "")
				require.False(t, client.IsTransient(err))
				require.False(t, errors.Is(err, io.EOF))
			})
		}
	}
}
