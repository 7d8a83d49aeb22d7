package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/server"
	"github.com/deskforge/deskforge/workflows"
)

const testPublicURL = "https://api.deskforge.test"

// apiBundle is a running API server on a fresh database with an admin key,
// two projects and a key for each.
type apiBundle struct {
	ctx    context.Context
	db     *models.DB
	store  *models.Store
	river  *river.Client[*sql.Tx]
	url    string
	client *http.Client
	// handler is the router, for in-process requests (fuzzing); wrap it
	// in contractHandler with the test's t.
	handler http.Handler

	adminKey   string
	projectA   models.Project // web app: mac, windows, linux; version 1.0.0
	projectB   models.Project // own repository: linux only, no version
	keyA       string
	keyB       string
	revokedKey string
}

// setupAPI starts the API on a fresh database of dialect, with a River
// client that inserts jobs (no workers run).
func setupAPI(t *testing.T, dialect string) *apiBundle {
	t.Helper()
	return startAPI(t, dialect, nil, workflows.Options{}, server.Options{})
}

// startAPI starts the API on a fresh database of dialect with an engine on
// forge (engine and server options completed with the test's public URL,
// builder repository, store and engine) and seeds the admin key, the two
// projects and their keys.
func startAPI(t testing.TB, dialect string, forge workflows.Forge, eo workflows.Options, so server.Options) *apiBundle {
	t.Helper()
	ctx := context.Background()
	db := dbtest.Open(t, dialect)
	db.Outbox().SetRenderer(server.EventRenderer(testPublicURL))
	store := models.NewStore(db)
	eo.PublicURL, eo.BuilderRepo = testPublicURL, "deskforge/builder"
	engine := workflows.NewEngine(store, forge, nil, nil, eo)
	client, err := river.NewClient[*sql.Tx](db.RiverDriver(), &river.Config{})
	require.NoError(t, err)
	so.Store, so.Engine, so.PublicURL = store, engine, testPublicURL
	// The http.Server the serve command runs: its header limits and
	// timeouts are part of what the tests check.
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = server.New(so).HTTPServer()
	router := ts.Config.Handler
	// Every request and answer is checked against the OpenAPI document
	// (openapi_test.go).
	ts.Config.Handler = contractHandler(t, router)
	ts.Start()
	t.Cleanup(ts.Close)

	b := &apiBundle{ctx: ctx, db: db, store: store, river: client, url: ts.URL, client: ts.Client(), handler: router}
	_, b.adminKey, err = store.CreateAPIKey(ctx, models.NewAPIKeyParams{Name: "admin", Role: models.RoleAdmin})
	require.NoError(t, err)
	b.projectA = models.Project{Name: "My App", URL: "https://example.com", Version: "1.0.0", Platforms: "mac,windows,linux", WindowResizable: true}
	require.NoError(t, store.CreateProject(ctx, &b.projectA))
	b.projectB = models.Project{Name: "Other", Repository: "acme/other", Platforms: "linux"}
	require.NoError(t, store.CreateProject(ctx, &b.projectB))
	_, b.keyA, err = store.CreateAPIKey(ctx, models.NewAPIKeyParams{Name: "a", Role: models.RoleProject, ProjectID: b.projectA.ID})
	require.NoError(t, err)
	_, b.keyB, err = store.CreateAPIKey(ctx, models.NewAPIKeyParams{Name: "b", Role: models.RoleProject, ProjectID: b.projectB.ID})
	require.NoError(t, err)
	revoked, plaintext, err := store.CreateAPIKey(ctx, models.NewAPIKeyParams{Name: "old", Role: models.RoleAdmin})
	require.NoError(t, err)
	_, err = store.RevokeAPIKey(ctx, revoked.ID)
	require.NoError(t, err)
	b.revokedKey = plaintext
	return b
}

// response is an answer read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a generic value.
func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var v map[string]any
	require.NoError(t, json.Unmarshal(r.body, &v), "body: %s", r.body)
	return v
}

// errorOf checks the error envelope and returns its code and field.
func (r response) errorOf(t *testing.T) (code, field string) {
	t.Helper()
	v := r.json(t)
	require.NotEmpty(t, v["requestId"], "requestId in %s", r.body)
	e, ok := v["error"].(map[string]any)
	require.True(t, ok, "error object in %s", r.body)
	require.NotEmpty(t, e["message"], "message in %s", r.body)
	code, _ = e["code"].(string)
	field, _ = e["field"].(string)
	return code, field
}

// do sends a request with key (none when "") and body (JSON-encoded unless
// it is []byte or an io.Reader).
func (b *apiBundle) do(t testing.TB, method, path, key string, body any, headers ...string) response {
	t.Helper()
	var reader io.Reader
	switch v := body.(type) {
	case nil:
	case []byte:
		reader = bytes.NewReader(v)
	case io.Reader:
		reader = v
	default:
		data, err := json.Marshal(v)
		require.NoError(t, err)
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(b.ctx, method, b.url+path, reader)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// createBuild triggers a build through the API and returns its id.
func (b *apiBundle) createBuild(t testing.TB, projectID, key string, body map[string]any) string {
	t.Helper()
	r := b.do(t, http.MethodPost, "/projects/"+projectID+"/builds", key, body)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	return r.json(t)["id"].(string)
}

func (b *apiBundle) count(t *testing.T, table string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, b.db.Gorm.Raw("SELECT count(*) FROM "+table).Scan(&n).Error)
	return n
}

// forEachDialect runs fn against a fresh API on every dialect under test.
func forEachDialect(t *testing.T, fn func(t *testing.T, b *apiBundle)) {
	t.Helper()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			fn(t, setupAPI(t, dialect))
		})
	}
}
