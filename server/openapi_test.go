package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/server"
)

// The OpenAPI contract test: startAPI wraps every test server's handler in
// contractHandler, so every request the server package's API tests send,
// and every answer, is checked against the embedded OpenAPI document with
// kin-openapi's openapi3filter. A mismatch fails the test that sent it.
//
// Rules (what "matches" means):
//   - The answer is validated against the operation: its status must be
//     documented (errors match the `default` error envelope) and its JSON
//     body must match the schema (additionalProperties: false, so an
//     undocumented field fails too). Event streams (text/event-stream) are
//     checked by status and headers only (they never end); binary
//     downloads by status and headers.
//   - A request that does not match the document (bad parameter, body,
//     missing key) must be refused by the server with a 4xx: the document
//     and the server agree it is wrong. Answered 2xx, it fails.
//   - A request to a path and method the document does not have fails,
//     unless the server refused it too (404 not_found, 405, or 400, 414,
//     431 before routing) in the error envelope (and
//     TestEveryRouteIsInTheOpenAPIDocument checks that every route the
//     router has is in the document). Exempt: the dashboard's HTML
//     and static files (/, /ui/…, /ui-download/…), which are not the API,
//     and CORS preflights (OPTIONS with Access-Control-Request-Method),
//     which the CORS middleware answers for every route.
//   - HEAD is validated as its GET twin, without a body.
//   - Request bodies are read as JSON whatever their Content-Type, as the
//     server reads them.

var (
	contractOnce   sync.Once
	contractRouter routers.Router
	contractErr    error
	// errorSchema is the error envelope's schema.
	errorSchema *openapi3.Schema
)

// openAPIRouter loads the embedded document (validated as OpenAPI 3.1) and
// returns a router over it.
func openAPIRouter(t testing.TB) routers.Router {
	t.Helper()
	contractOnce.Do(func() {
		data, err := server.OpenAPIDocument()
		if err != nil {
			contractErr = err
			return
		}
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(data)
		if err != nil {
			contractErr = fmt.Errorf("load openapi.yaml: %w", err)
			return
		}
		if err := doc.Validate(loader.Context); err != nil {
			contractErr = fmt.Errorf("openapi.yaml is not a valid OpenAPI document: %w", err)
			return
		}
		if !doc.IsOpenAPI31OrLater() {
			contractErr = errors.New("openapi.yaml is not OpenAPI 3.1")
			return
		}
		errorSchema = doc.Components.Schemas["Error"].Value
		// Match any host: the tests' servers listen on loopback ports.
		doc.Servers = nil
		contractRouter, contractErr = gorillamux.NewRouter(doc)
	})
	require.NoError(t, contractErr)
	return contractRouter
}

// contractHandler wraps next so that every request and answer is checked
// against the OpenAPI document; mismatches are reported to t.
func contractHandler(t testing.TB, next http.Handler) http.Handler {
	router := openAPIRouter(t)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if contractExempt(r) {
			next.ServeHTTP(w, r)
			return
		}
		body := &teeBody{r: r.Body}
		r.Body = body
		// The route and the request are checked against a copy taken now:
		// handlers may change the request (Gin's context).
		probe := r.Clone(context.WithoutCancel(r.Context()))
		if probe.Method == http.MethodHead {
			probe.Method = http.MethodGet
		}
		cw := &contractWriter{real: w, header: http.Header{}}
		check := func() {
			if msg := contractCheck(router, probe, body.bytes(), r.Method == http.MethodHead, cw); msg != "" {
				t.Errorf("OpenAPI contract: %s %s → %d: %s", r.Method, r.URL.RequestURI(), cw.status, msg)
			}
		}
		cw.onStream = check
		next.ServeHTTP(cw, r)
		cw.finish(check)
	})
}

// contractExempt reports the requests the document does not describe on
// purpose: the dashboard and CORS preflights.
func contractExempt(r *http.Request) bool {
	p := r.URL.Path
	if p == "/" || strings.HasPrefix(p, "/ui/") || strings.HasPrefix(p, "/ui-download/") {
		return true
	}
	return r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
}

// contractCheck validates one exchange and returns what does not match
// ("" when everything does).
func contractCheck(router routers.Router, req *http.Request, reqBody []byte, head bool, cw *contractWriter) string {
	status := cw.status
	route, params, err := router.FindRoute(req)
	if err != nil {
		if status < 400 {
			return fmt.Sprintf("the route is not in the document (%v) but the server answered it", err)
		}
		// Refused (404, 405, or before routing: 400, 414, 431, …): in the
		// error envelope.
		if head || cw.buf.Len() == 0 {
			return ""
		}
		var v any
		if err := json.Unmarshal(cw.buf.Bytes(), &v); err != nil {
			return fmt.Sprintf("refused outside the error envelope: %v", err)
		}
		if err := errorSchema.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
			return fmt.Sprintf("refused outside the error envelope: %v", err)
		}
		return ""
	}
	ctx := context.Background()
	req.Body = io.NopCloser(bytes.NewReader(reqBody))
	if len(reqBody) > 0 {
		// The server parses every body as JSON whatever its Content-Type
		// (curl -d sends application/x-www-form-urlencoded); so does the
		// document's reader here.
		req.Header.Set("Content-Type", "application/json")
	}
	reqIn := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: contractAuth, MultiError: true},
	}
	reqErr := openapi3filter.ValidateRequest(ctx, reqIn)
	if reqErr != nil && status < 400 {
		return fmt.Sprintf("the request does not match the document, yet the server answered %d: %v", status, reqErr)
	}

	mediaType, _, _ := mime.ParseMediaType(cw.snapshot.Get("Content-Type"))
	excludeBody := head || cw.streaming || (mediaType != "application/json" && mediaType != "text/plain")
	respIn := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: reqIn,
		Status:                 status,
		Header:                 cw.snapshot,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: excludeBody, MultiError: true},
	}
	if !excludeBody {
		respIn.SetBodyBytes(cw.buf.Bytes())
	}
	if err := openapi3filter.ValidateResponse(ctx, respIn); err != nil {
		body := cw.buf.String()
		if len(body) > 600 {
			body = body[:600] + "…"
		}
		return fmt.Sprintf("the answer does not match the document: %v\nbody: %s", err, body)
	}
	return ""
}

// contractAuth checks that the credentials a security scheme names are
// present (the server checks their value).
func contractAuth(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	switch in.SecuritySchemeName {
	case "bearer":
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			return errors.New("no Authorization: Bearer header")
		}
	case "eventToken":
		if r.URL.Query().Get("token") == "" {
			return errors.New("no token query parameter")
		}
	default:
		return fmt.Errorf("unknown security scheme %q", in.SecuritySchemeName)
	}
	return nil
}

// teeBody keeps a copy of what the handler reads of the request body (up
// to 4 MiB; the API refuses more).
type teeBody struct {
	r   io.ReadCloser
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *teeBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.mu.Lock()
	if b.buf.Len() < 4<<20 {
		b.buf.Write(p[:n])
	}
	b.mu.Unlock()
	return n, err
}

func (b *teeBody) Close() error { return b.r.Close() }

func (b *teeBody) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// contractWriter holds the answer until the handler returns, so that it is
// validated before the client sees it (and a mismatch is reported while
// the test still waits for it). An event stream is validated when its
// headers are written and then passed through.
type contractWriter struct {
	real     http.ResponseWriter
	header   http.Header
	snapshot http.Header // the headers when WriteHeader was called
	status   int
	buf      bytes.Buffer
	// streaming: the answer is an event stream, passed through.
	streaming bool
	onStream  func()
}

func (w *contractWriter) Header() http.Header { return w.header }

func (w *contractWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	w.snapshot = w.header.Clone()
	if strings.HasPrefix(w.header.Get("Content-Type"), "text/event-stream") {
		w.streaming = true
		w.onStream()
		copyHeader(w.real.Header(), w.header)
		w.real.WriteHeader(code)
	}
}

func (w *contractWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.streaming {
		return w.real.Write(p)
	}
	return w.buf.Write(p)
}

// Flush passes through for event streams; other answers are held anyway.
func (w *contractWriter) Flush() {
	if w.streaming {
		if f, ok := w.real.(http.Flusher); ok {
			f.Flush()
		}
	}
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (w *contractWriter) Unwrap() http.ResponseWriter { return w.real }

// finish validates a held answer with check, then sends it: headers as
// they were at WriteHeader, the body, then what was set afterwards
// (trailers).
func (w *contractWriter) finish(check func()) {
	if w.streaming {
		return
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	check()
	copyHeader(w.real.Header(), w.snapshot)
	w.real.WriteHeader(w.status)
	_, _ = w.real.Write(w.buf.Bytes())
	for k, v := range w.header {
		if _, ok := w.snapshot[k]; !ok {
			w.real.Header()[k] = v
		}
	}
}

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}

// TestOpenAPIDocumentServed: GET /openapi.json answers the embedded
// document without a key, and it is a valid OpenAPI 3.1 document.
func TestOpenAPIDocumentServed(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, "sqlite")
	r := b.do(t, http.MethodGet, "/openapi.json", "", nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	want, err := server.OpenAPIDocument()
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(r.body))
	doc, err := openapi3.NewLoader().LoadFromData(r.body)
	require.NoError(t, err)
	require.Equal(t, "3.1.0", doc.OpenAPI)
	require.NotNil(t, doc.Paths.Find("/projects/{projectId}/builds"))
	require.NotNil(t, doc.Paths.Find("/updates/{projectId}/{target}/{arch}/{currentVersion}"))
}

// TestOpenAPIContractCatchesDrift: the contract handler fails a test on an
// answer the document does not allow, on a route the document lacks, and
// on an invalid request the server accepted; it passes a matching one.
func TestOpenAPIContractCatchesDrift(t *testing.T) {
	cases := []struct {
		name   string
		method string
		path   string
		body   string
		auth   bool
		status int
		answer string
		fails  bool
	}{
		{"matching", "GET", "/healthz", "", false, 200, `{"status":"ok"}`, false},
		{"undocumented field", "GET", "/healthz", "", false, 200, `{"status":"ok","extra":1}`, true},
		{"wrong type", "GET", "/builds/build_x", "", true, 200, `{"id":1}`, true},
		{"undocumented status", "GET", "/healthz", "", false, 201, `{"status":"ok"}`, true},
		{"error envelope", "GET", "/builds/build_x", "", true, 404, `{"error":{"code":"not_found","message":"no"},"requestId":"req_1"}`, false},
		{"bad error envelope", "GET", "/builds/build_x", "", true, 404, `{"message":"no"}`, true},
		{"route not in the document", "GET", "/secret", "", true, 200, `{}`, true},
		{"unknown route refused", "GET", "/secret", "", true, 404, `{"error":{"code":"not_found","message":"no"},"requestId":"req_1"}`, false},
		{"invalid request accepted", "GET", "/builds?limit=0", "", true, 200, `{"builds":[],"total":0}`, true},
		{"invalid request refused", "GET", "/builds?limit=0", "", true, 400, `{"error":{"code":"invalid_request","message":"limit","field":"limit"},"requestId":"req_1"}`, false},
		{"missing key accepted", "GET", "/builds", "", false, 200, `{"builds":[],"total":0}`, true},
		{"unknown body field accepted", "POST", "/projects/proj_a/builds", `{"platform":"mac","colour":"red"}`, true, 201,
			`{"id":"build_a","projectId":"proj_a","platform":"mac","arch":"x64","version":"1.0.0","status":"queued","createdAt":"2024-01-20T10:00:00Z","message":"ok"}`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recordingTB{TB: t}
			h := contractHandler(rec, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body)
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				if tc.status == 201 {
					w.Header().Set("Location", "https://api.deskforge.test/builds/build_a")
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.answer)
			}))
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if tc.auth {
				req.Header.Set("Authorization", "Bearer df_x")
			}
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, req)
			require.Equal(t, tc.status, rr.Code, "the answer passes through")
			require.Equal(t, tc.answer, rr.Body.String())
			require.Equal(t, tc.fails, rec.failed(), "reported: %v", rec.messages())
		})
	}
}

// recordingTB records Errorf instead of failing.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordingTB) failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.errs) > 0
}

func (r *recordingTB) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// TestOpenAPISeedExamples: the Builds API contract's examples (testdata/
// seed, copied from the contract) validate against the document: the
// trigger request body, and each answer for its operation and status.
func TestOpenAPISeedExamples(t *testing.T) {
	router := openAPIRouter(t)
	cases := []struct {
		method, path, file string
		status             int
		body               string
	}{
		{"GET", "/projects/proj_abc123/builds", "list_builds.json", 200, ""},
		{"GET", "/builds/build_xyz789", "get_build.json", 200, ""},
		{"POST", "/projects/proj_abc123/builds", "trigger_build.json", 201, `{"platform": "mac", "arch": "arm64", "version": "1.0.0"}`},
		{"GET", "/builds/build_xyz789/logs", "build_logs.json", 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "https://api.deskforge.app"+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer YOUR_API_KEY")
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			route, params, err := router.FindRoute(req)
			require.NoError(t, err)
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: contractAuth, MultiError: true}}
			require.NoError(t, openapi3filter.ValidateRequest(context.Background(), in), "the example request")
			example := seedBytes(t, tc.file)
			header := http.Header{"Content-Type": {"application/json"}}
			if tc.status == http.StatusCreated {
				header.Set("Location", "https://api.deskforge.app/builds/build_xyz789")
			}
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: tc.status, Header: header,
				Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
			out.SetBodyBytes(example)
			require.NoError(t, openapi3filter.ValidateResponse(context.Background(), out), "example %s", tc.file)
		})
	}
}

func seedBytes(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "seed", name))
	require.NoError(t, err)
	return data
}

// TestEveryRouteIsInTheOpenAPIDocument: every method and path the router
// serves is in the document (HEAD as its GET twin), except the dashboard's
// HTML and static files; and every operation of the document is served,
// except GET /updates/…, which the update endpoint's branch adds.
func TestEveryRouteIsInTheOpenAPIDocument(t *testing.T) {
	t.Parallel()
	data, err := server.OpenAPIDocument()
	require.NoError(t, err)
	doc, err := openapi3.NewLoader().LoadFromData(data)
	require.NoError(t, err)
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	db := dbtest.Open(t, models.DialectSQLite)
	engine := server.New(server.Options{Store: models.NewStore(db)}).Handler().(*gin.Engine)
	served := map[string]bool{}
	ginParam := regexp.MustCompile(`:[A-Za-z]+`)
	for _, rt := range engine.Routes() {
		if rt.Path == "/" || strings.HasPrefix(rt.Path, "/ui/") || strings.HasPrefix(rt.Path, "/ui-download/") {
			continue // the dashboard, not the API
		}
		method := rt.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		// Gin names parameters :id throughout; compare shapes, not names.
		key := method + " " + ginParam.ReplaceAllString(rt.Path, "{}")
		served[key] = true
		found := false
		for d := range documented {
			if regexp.MustCompile(`\{[A-Za-z]+\}`).ReplaceAllString(d, "{}") == key {
				found = true
			}
		}
		require.True(t, found, "%s %s is served but not in openapi.yaml", rt.Method, rt.Path)
	}
	for d := range documented {
		shape := regexp.MustCompile(`\{[A-Za-z]+\}`).ReplaceAllString(d, "{}")
		if strings.HasPrefix(d, "GET /updates/") {
			continue
		}
		require.True(t, served[shape], "%s is in openapi.yaml but not served", d)
	}
}
