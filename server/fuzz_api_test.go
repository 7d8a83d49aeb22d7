package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/server"
	"github.com/deskforge/deskforge/workflows"
)

// fuzzMethods are the methods FuzzAPI picks from.
var fuzzMethods = []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete, http.MethodHead, http.MethodPut}

// FuzzAPI sends arbitrary requests (method, path, query, body, and a
// header value used as Idempotency-Key and for the webhook headers) to the
// whole router on a real database: SQLite, and PostgreSQL too when
// DESKFORGE_TEST_DATABASE_URL is set. No input may answer 5xx or panic,
// and every error answers in the envelope. In a path, {A} and {B} stand for
// the two projects' ids and {build} for a build of project A; webhook
// bodies are signed with the server's secret.
func FuzzAPI(f *testing.F) {
	seeds := []struct {
		method       uint8
		path, query  string
		body, header string
	}{
		{0, "/projects", "limit=2", "", ""},
		{1, "/projects", "", `{"name":"F","url":"https://f.example","platforms":["mac"],"window":{"width":800}}`, ""},
		{1, "/projects", "", `{"name":"R","repository":"acme/app","ref":"release/1.x","platforms":["linux"]}`, ""},
		{1, "/projects", "", `{"name":"R","repository":"acme/..","ref":"a..b","url":"https://u:p@x.example","platforms":["linux"]}`, ""},
		{2, "/projects/{A}", "", `{"window":{"width":0},"window":{"height":900}}`, ""},
		{2, "/projects/{B}", "", "{\"author\":\"\xff\",\"ref\":\"x.lock\"}", ""},
		{1, "/projects/{A}/builds", "", `{"platform":"mac","arch":"arm64","version":"1.2.3"}`, "idem-1"},
		{1, "/projects/{A}/builds", "", `{"platform":"mac","version":"\u0000"}`, "idem\xff"},
		{0, "/projects/{A}/builds", "status=queued&platform=mac&version=%00&cursor=build_x", "", ""},
		{0, "/builds/{build}", "", "", ""},
		{0, "/builds/{build}/logs", "after=0&limit=10&level=info&format=text", "", ""},
		{4, "/builds/{build}/download", "", "", ""},
		{0, "/builds/{build}/artifacts/x.dmg", "", "", ""},
		{1, "/builds/{build}/cancel", "", "", ""},
		{1, "/builds/{build}/retry", "", "", ""},
		{3, "/projects/{B}", "", "", ""},
		{0, "/apikeys", "projectId={A}", "", ""},
		{1, "/apikeys", "", `{"name":"k","projectId":"{A}"}`, ""},
		{3, "/apikeys/key_x", "", "", ""},
		{0, "/builds/\x00", "", "", ""},
		{0, "/projects/\xff\xfe", "x=%FF", "", ""},
		{5, "/builds/{build}", "", "", ""},
		{1, "/webhooks/github", "", `{"action":"completed","workflow_run":{"id":1,"display_title":"deskforge {build}\u0000","status":"completed"}}`, "workflow_run"},
		{1, "/webhooks/github", "", `{"workflow_job":{"id":2,"run_id":1,"labels":["\u0000"],"steps":[{"number":1}]}}`, "workflow_job"},
		{0, "/healthz", "", "", ""},
		{0, "/updates/{A}/darwin/aarch64/1.0.0", "", "", ""},
		{4, "/updates/{B}/linux/x64/1.0.0-%00", "", "", ""},
		{0, "/signed/1/abc/builds/{build}/artifacts/x.dmg", "", "", ""},
		{0, "/signed/99999999999/abc/releases/rel_x/files/SHA256SUMS", "", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.query, []byte(s.body), s.header)
	}

	type target struct {
		b     *apiBundle
		build string
	}
	var targets []target
	for _, dialect := range dbtest.Dialects() {
		b := startAPI(f, dialect, assetForge{signedBase: "http://127.0.0.1:1"}, workflows.Options{},
			server.Options{WebhookSecret: []byte(testWebhookSecret)})
		targets = append(targets, target{b: b, build: b.createBuild(f, b.projectA.ID, b.adminKey, map[string]any{"platform": "mac"})})
	}

	f.Fuzz(func(t *testing.T, method uint8, path, query string, body []byte, header string) {
		for _, tg := range targets {
			b := tg.b
			replace := strings.NewReplacer("{A}", b.projectA.ID, "{B}", b.projectB.ID, "{build}", tg.build)
			path := replace.Replace(path)
			body := []byte(replace.Replace(string(body)))
			if !strings.HasPrefix(path, "/") {
				path = "/" + path
			}
			req := httptest.NewRequest(http.MethodGet, "/", bytes.NewReader(body))
			req.Method = fuzzMethods[int(method)%len(fuzzMethods)]
			req.URL = &url.URL{Path: path, RawQuery: query}
			req.RequestURI = req.URL.RequestURI()
			key := b.adminKey
			if method >= 128 {
				key = b.keyA
			}
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", header)
			req.Header.Set("X-GitHub-Event", header)
			req.Header.Set("X-GitHub-Delivery", header+"-"+guid())
			req.Header.Set("X-Hub-Signature-256", sign(testWebhookSecret, body))
			rec := httptest.NewRecorder()
			contractHandler(t, b.handler).ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s %q ?%q body %q: %d %s", req.Method, path, query, body, rec.Code, rec.Body)
			}
			if rec.Code >= 400 && req.Method != http.MethodHead {
				var envelope struct {
					Error     struct{ Code, Message string }
					RequestID string
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &envelope); err != nil || envelope.Error.Code == "" || envelope.RequestID == "" {
					t.Fatalf("%s %q: %d without the error envelope: %s", req.Method, path, rec.Code, rec.Body)
				}
			}
		}
	})
}
