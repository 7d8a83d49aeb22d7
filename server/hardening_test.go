package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/server"
	"github.com/deskforge/deskforge/workflows"
)

// logBuffer collects the log output of concurrent requests.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func errorMessage(t *testing.T, r response) string {
	t.Helper()
	return r.json(t)["error"].(map[string]any)["message"].(string)
}

func TestAuthorizationHeaderNamesTheProblem(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, models.DialectSQLite)
	tests := []struct {
		name, header, want string
	}{
		{"Missing", "", "missing API key"},
		{"KeyWithoutBearer", b.adminKey, "malformed Authorization header: the key needs the Bearer scheme"},
		{"OtherScheme", "Basic YWRhOnB3", "malformed Authorization header: only the Bearer scheme"},
		{"BearerAlone", "Bearer", "malformed Authorization header: Bearer is not followed by a key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var headers []string
			if tt.header != "" {
				headers = []string{"Authorization", tt.header}
			}
			r := b.do(t, http.MethodGet, "/projects", "", nil, headers...)
			require.Equal(t, http.StatusUnauthorized, r.status)
			code, _ := r.errorOf(t)
			require.Equal(t, "unauthorized", code)
			require.Contains(t, errorMessage(t, r), tt.want)
			require.NotContains(t, string(r.body), b.adminKey, "the key is never echoed")
		})
	}
}

// TestJSONBodiesRefuseAmbiguousText: duplicate keys (last would win),
// invalid UTF-8 (would be replaced) and NUL characters (PostgreSQL refuses
// them: a 500 before) answer 400 naming the field, and store nothing.
func TestJSONBodiesRefuseAmbiguousText(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		projects := "/projects"
		project := "/projects/" + b.projectA.ID
		builds := project + "/builds"
		tests := []struct {
			name, method, path, body, field, message string
		}{
			{"DuplicateName", http.MethodPost, projects, `{"name":"A","url":"https://a.example","platforms":["mac"],"name":"B"}`, "name", "given twice"},
			{"DuplicateNested", http.MethodPatch, project, `{"window":{"width":800,"width":900}}`, "window.width", "given twice"},
			{"DuplicatePlatform", http.MethodPost, builds, `{"platform":"mac","platform":"linux"}`, "platform", "given twice"},
			{"InvalidUTF8", http.MethodPost, projects, "{\"name\":\"\xff\xfe\",\"url\":\"https://a.example\",\"platforms\":[\"mac\"]}", "name", "not valid UTF-8"},
			{"InvalidUTF8InArray", http.MethodPost, projects, "{\"name\":\"A\",\"url\":\"https://a.example\",\"platforms\":[\"mac\xc0\"]}", "platforms", "not valid UTF-8"},
			{"InvalidUTF8Key", http.MethodPatch, project, "{\"auth\xffor\":\"x\"}", "auth\ufffdor", "not valid UTF-8"},
			{"NULInName", http.MethodPatch, project, `{"author":"Ada\u0000"}`, "author", "NUL"},
			{"NULVersion", http.MethodPost, builds, `{"platform":"mac","version":"\u0000"}`, "version", "NUL"},
			{"NULProjectID", http.MethodPost, "/apikeys", `{"projectId":"\u0000"}`, "projectId", "NUL"},
			{"ProjectIDNotAnID", http.MethodPost, "/apikeys", `{"projectId":"proj_x"}`, "projectId", "project proj_x does not exist"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := b.do(t, tt.method, tt.path, b.adminKey, []byte(tt.body))
				require.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
				code, field := r.errorOf(t)
				require.Equal(t, "invalid_request", code)
				require.Equal(t, tt.field, field)
				require.Contains(t, errorMessage(t, r), tt.message)
			})
		}
		require.Equal(t, int64(2), b.count(t, "projects"))
		require.Zero(t, b.count(t, "builds"))
		got := b.do(t, http.MethodGet, project, b.adminKey, nil).json(t)
		require.Nil(t, got["author"], "nothing changed")
	})
}

// TestBadTextOnEveryRoute sends NUL bytes and invalid UTF-8 in the path,
// the query, the body and the headers of every route: never a 5xx (they
// were 500s on PostgreSQL: SQLSTATE 22021 and 22P05), always the envelope.
func TestBadTextOnEveryRoute(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			b := setupEngineAPI(t, dialect, engineOpts{secret: testWebhookSecret})
			build := b.createBuild(t, b.projectA.ID, b.adminKey, map[string]any{"platform": "mac"})
			project := "/projects/" + b.projectA.ID
			type call struct {
				method, path string
				body         any
				headers      []string
			}
			var calls []call
			for _, bad := range []string{"%00", "%FF%FE", "%C0%AF", "a%00b", "build_01hqz0000000000000000%00z"} {
				calls = append(calls, []call{
					{http.MethodGet, "/projects/" + bad, nil, nil},
					{http.MethodPatch, "/projects/" + bad, map[string]any{"author": "x"}, nil},
					{http.MethodDelete, "/projects/" + bad, nil, nil},
					{http.MethodGet, "/projects/" + bad + "/builds", nil, nil},
					{http.MethodPost, "/projects/" + bad + "/builds", map[string]any{"platform": "mac"}, nil},
					{http.MethodGet, "/builds/" + bad, nil, nil},
					{http.MethodGet, "/builds/" + bad + "/logs", nil, nil},
					{http.MethodPost, "/builds/" + bad + "/cancel", nil, nil},
					{http.MethodPost, "/builds/" + bad + "/retry", nil, nil},
					{http.MethodGet, "/builds/" + bad + "/download", nil, nil},
					{http.MethodGet, "/builds/" + build + "/artifacts/" + bad, nil, nil},
					{http.MethodDelete, "/apikeys/" + bad, nil, nil},
					{http.MethodGet, "/" + bad, nil, nil},
					{http.MethodGet, "/projects?cursor=" + bad + "&limit=" + bad, nil, nil},
					{http.MethodGet, project + "/builds?version=" + bad, nil, nil},
					{http.MethodGet, project + "/builds?status=" + bad + "&platform=" + bad + "&arch=" + bad, nil, nil},
					{http.MethodGet, project + "/builds?cursor=" + bad, nil, nil},
					{http.MethodGet, "/builds/" + build + "/logs?after=" + bad + "&level=" + bad + "&format=" + bad, nil, nil},
					{http.MethodGet, "/apikeys?projectId=" + bad, nil, nil},
					{http.MethodGet, "/projects?" + bad + "=1", nil, nil},
					{http.MethodGet, "/webhooks/" + bad, nil, nil},
					{http.MethodDelete, "/webhooks/" + bad, nil, nil},
					{http.MethodGet, "/webhooks/" + bad + "/deliveries", nil, nil},
					{http.MethodGet, "/webhooks?cursor=" + bad + "&projectId=" + bad, nil, nil},
					{http.MethodGet, "/builds/" + bad + "/events", nil, nil},
					{http.MethodGet, "/projects/" + bad + "/events", nil, nil},
				}...)
			}
			for _, text := range []string{"\x00", "a\x00b", "\xff\xfe", "\xc0\xaf"} {
				quoted := jsonString(text)
				calls = append(calls, []call{
					{http.MethodPost, "/projects", []byte(`{"name":` + quoted + `,"url":"https://x.example","platforms":["mac"]}`), nil},
					{http.MethodPost, "/projects", []byte(`{"name":"N","repository":"acme/app","ref":` + quoted + `,"platforms":["mac"]}`), nil},
					{http.MethodPost, "/projects", []byte(`{"name":"N","url":` + quoted + `,"platforms":["mac"]}`), nil},
					{http.MethodPost, "/projects", []byte(`{"name":"N","url":"https://x.example","appId":` + quoted + `,"platforms":[` + quoted + `]}`), nil},
					{http.MethodPatch, project, []byte(`{"author":` + quoted + `,"version":` + quoted + `}`), nil},
					{http.MethodPost, project + "/builds", []byte(`{"platform":"mac","version":` + quoted + `}`), nil},
					{http.MethodPost, project + "/builds", []byte(`{"platform":` + quoted + `}`), nil},
					{http.MethodPost, "/apikeys", []byte(`{"name":` + quoted + `}`), nil},
					{http.MethodPost, "/apikeys", []byte(`{"projectId":` + quoted + `}`), nil},
					{http.MethodPost, "/apikeys", []byte(`{"name":"k","role":` + quoted + `}`), nil},
					{http.MethodPost, "/webhooks", []byte(`{"url":` + quoted + `,"events":["build.*"]}`), nil},
					{http.MethodPost, "/webhooks", []byte(`{"url":"https://hooks.example.com/x","events":[` + quoted + `],"description":` + quoted + `}`), nil},
				}...)
			}
			// Headers: net/http refuses NUL in a header, not bytes >= 0x80.
			for _, h := range []string{"Idempotency-Key", "X-Request-Id", "Content-Type"} {
				calls = append(calls, call{http.MethodPost, project + "/builds", map[string]any{"platform": "mac"}, []string{h, "\xff\xfe"}})
			}
			calls = append(calls, call{http.MethodGet, "/projects", nil, []string{"Authorization", "Bearer df_\xff\xfe"}})

			for _, c := range calls {
				key := b.adminKey
				if len(c.headers) > 0 && c.headers[0] == "Authorization" {
					key = ""
				}
				r := b.do(t, c.method, c.path, key, c.body, c.headers...)
				require.Less(t, r.status, 500, "%s %q %v: %s", c.method, c.path, c.headers, r.body)
				if r.status >= 400 {
					r.errorOf(t)
				}
			}

			// Signed webhooks with NUL in the fields the engine keeps.
			for i, c := range poisonedPayloads(t) {
				r := b.webhook(t, c.event, fmt.Sprintf("poison-%d", i), c.body, testWebhookSecret)
				require.Equal(t, http.StatusAccepted, r.status, "%s: %s", c.name, r.body)
			}
			for _, h := range []string{"X-GitHub-Delivery", "X-GitHub-Hook-ID", "X-GitHub-Event"} {
				body := payload(t, "webhook-workflow-job-queued-2")
				r := b.do(t, http.MethodPost, "/webhooks/github", "", body, "X-GitHub-Event", "workflow_job",
					"X-GitHub-Delivery", guid(), "X-Hub-Signature-256", sign(testWebhookSecret, body), h, "\xff\xfe")
				require.Equal(t, http.StatusBadRequest, r.status, "%s: %s", h, r.body)
				_, field := r.errorOf(t)
				require.Equal(t, h, field)
			}
		})
	}
}

func jsonString(s string) string {
	if !strings.Contains(s, "\x00") {
		return `"` + s + `"` // raw bytes, invalid UTF-8 included
	}
	data, _ := json.Marshal(s)
	return string(data)
}

type poisoned struct {
	name, event string
	body        []byte
}

// poisonedPayloads are real deliveries with a NUL character in each field
// the engine keeps (display_title, status, repository.full_name, labels).
func poisonedPayloads(t testing.TB) []poisoned {
	t.Helper()
	edit := func(file string, change func(v map[string]any)) []byte {
		var v map[string]any
		require.NoError(t, json.Unmarshal(payload(t, file), &v))
		change(v)
		data, err := json.Marshal(v)
		require.NoError(t, err)
		require.Contains(t, string(data), `\u0000`)
		return data
	}
	run := "webhook-workflow-run-completed-1"
	job := "webhook-workflow-job-in-progress-1"
	return []poisoned{
		{"display_title", "workflow_run", edit(run, func(v map[string]any) {
			v["workflow_run"].(map[string]any)["display_title"] = "deskforge build_x\x00"
		})},
		{"status", "workflow_run", edit(run, func(v map[string]any) { v["workflow_run"].(map[string]any)["status"] = "completed\x00" })},
		{"repository.full_name", "workflow_run", edit(run, func(v map[string]any) {
			v["repository"].(map[string]any)["full_name"] = "acme/\x00app"
		})},
		{"labels", "workflow_job", edit(job, func(v map[string]any) {
			v["workflow_job"].(map[string]any)["labels"] = []any{"ubuntu-latest\x00"}
		})},
	}
}

// TestPoisonedWebhookBatch: 4 deliveries with NUL characters among 40
// concurrent ones. Deliveries used to be committed in shared batches, so
// the bad ones made 15-29 of the 36 clean ones fail with 500 on
// PostgreSQL. Every clean delivery must be accepted, and the bad ones must
// not be 5xx either.
func TestPoisonedWebhookBatch(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			b := setupEngineAPI(t, dialect, engineOpts{secret: testWebhookSecret})
			bad := poisonedPayloads(t)
			clean := payload(t, "webhook-workflow-job-in-progress-1")
			type result struct {
				poisoned bool
				status   int
				body     string
				err      error
			}
			results := make(chan result, 40)
			var wg sync.WaitGroup
			for i := range 40 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					event, body, isBad := "workflow_job", clean, false
					if i%10 == 3 {
						p := bad[i/10]
						event, body, isBad = p.event, p.body, true
					}
					req, err := http.NewRequestWithContext(b.ctx, http.MethodPost, b.url+"/webhooks/github", bytes.NewReader(body))
					if err != nil {
						results <- result{err: err}
						return
					}
					req.Header.Set("X-GitHub-Event", event)
					req.Header.Set("X-GitHub-Delivery", guid())
					req.Header.Set("X-Hub-Signature-256", sign(testWebhookSecret, body))
					resp, err := b.client.Do(req)
					if err != nil {
						results <- result{err: err}
						return
					}
					data, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					results <- result{poisoned: isBad, status: resp.StatusCode, body: string(data)}
				}()
			}
			wg.Wait()
			close(results)
			for r := range results {
				require.NoError(t, r.err)
				if r.poisoned {
					require.Less(t, r.status, 500, "a poisoned delivery: %s", r.body)
					continue
				}
				require.Equal(t, http.StatusAccepted, r.status, "a clean delivery: %s", r.body)
			}
			require.Equal(t, int64(40), b.count(t, "webhook_deliveries"))
			require.Equal(t, int64(40), b.jobs(t, workflows.ApplyEventArgs{}.Kind()))
		})
	}
}

// TestIDsCheckedBeforeTheDatabase: ids of the wrong shape answer 404
// without a query (the database is closed here), a 100 KB id answers 414
// in the envelope, and the access log never holds a long path whole.
func TestIDsCheckedBeforeTheDatabase(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	b := startAPI(t, models.DialectSQLite, nil, workflows.Options{}, testServerOptions(&logs))
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/projects", b.adminKey, nil).status) // caches the key
	require.NoError(t, b.db.SQL.Close())

	long := strings.Repeat("x", 4000)
	for _, path := range []string{
		"/builds/x", "/builds/%00", "/builds/build_" + long, "/builds/build_01HQZ00000000000000000000Z/logs",
		"/projects/%FF%FE", "/projects/proj_" + long + "/builds", "/projects/build_01hqz00000000000000000000z",
	} {
		r := b.do(t, http.MethodGet, path, b.adminKey, nil)
		require.Equal(t, http.StatusNotFound, r.status, "%.80s: %s", path, r.body)
		code, _ := r.errorOf(t)
		require.Equal(t, "not_found", code)
		require.Less(t, len(r.body), 1000, "the message quotes the path clipped")
	}
	r := b.do(t, http.MethodDelete, "/apikeys/key_"+long, b.adminKey, nil)
	require.Equal(t, http.StatusNotFound, r.status)

	r = b.do(t, http.MethodGet, "/builds/build_"+strings.Repeat("x", 100_000), b.adminKey, nil)
	require.Equal(t, http.StatusRequestURITooLong, r.status)
	code, _ := r.errorOf(t)
	require.Equal(t, "uri_too_long", code)

	out := logs.String()
	require.Contains(t, out, "bytes)", "long paths are logged clipped, with their length")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		require.Less(t, len(line), 2000, "a log line holds no long path: %.200s", line)
	}
}

// TestOverlongRequestsGetTheEnvelope: an over-long URL or header answers
// 414/431 in the error envelope, not net/http's plain-text 431.
func TestOverlongRequestsGetTheEnvelope(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, models.DialectSQLite)
	r := b.do(t, http.MethodGet, "/projects?cursor="+strings.Repeat("c", 1_100_000), b.adminKey, nil)
	require.Equal(t, http.StatusRequestURITooLong, r.status)
	code, _ := r.errorOf(t)
	require.Equal(t, "uri_too_long", code)

	r = b.do(t, http.MethodGet, "/projects", b.adminKey, nil, "X-Padding", strings.Repeat("p", 100_000))
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, r.status)
	code, _ = r.errorOf(t)
	require.Equal(t, "headers_too_large", code)

	r = b.do(t, http.MethodGet, "/healthz", "", nil, "X-Padding", strings.Repeat("p", 100_000))
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, r.status, "unauthenticated routes too")
}

// rawExchange opens a TCP connection to base, writes head, then keeps
// dribbling one byte of body every 50 ms (a slow sender), and returns what
// the server answered and how long until it closed the connection.
func rawExchange(t *testing.T, base, head string) (string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	start := time.Now()
	_, err = io.WriteString(conn, head)
	require.NoError(t, err)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if _, err := conn.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	// Bounded wait, generous for a loaded machine: the server's timeouts in
	// these tests are a second at most.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(60*time.Second)))
	answer, err := io.ReadAll(bufio.NewReader(conn))
	// A close while the sender still writes may arrive as a reset: closed
	// all the same. Only the read deadline means the server kept it open.
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		require.NoError(t, err, "the server must close the connection (got %q)", answer)
	}
	return string(answer), time.Since(start)
}

// TestSlowSendersAreDisconnected: a body dribbled byte by byte (or headers
// that never end) is cut at the route's read timeout: 408 in the envelope,
// connection closed. 10 of 10 slow webhook senders and 5 of 5 slow trigger
// senders were still connected after minutes before.
func TestSlowSendersAreDisconnected(t *testing.T) {
	t.Parallel()
	so := testServerOptions(nil)
	so.WebhookSecret = []byte(testWebhookSecret)
	b := startAPI(t, models.DialectSQLite, nil, workflows.Options{}, so)
	sig := "sha256=" + strings.Repeat("0", 64)
	tests := []struct {
		name, head string
		status     string
	}{
		{"Webhook", "POST /webhooks/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: workflow_job\r\nX-GitHub-Delivery: slow-1\r\n" +
			"X-Hub-Signature-256: " + sig + "\r\nContent-Length: 100000\r\n\r\n{", "408"},
		{"TriggerBuild", "POST /projects/" + b.projectA.ID + "/builds HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b.adminKey +
			"\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", "408"},
		{"UnknownRoute", "POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{", "404"},
		{"Headers", "GET /projects HTTP/1.1\r\nHost: x\r\nX-Slow: ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			answer, took := rawExchange(t, b.url, tt.head)
			if tt.status != "" {
				require.True(t, strings.HasPrefix(answer, "HTTP/1.1 "+tt.status), "answer %q", answer)
				require.Contains(t, answer, `"error"`)
			}
			t.Logf("%s: connection closed after %s", tt.name, took)
		})
	}
}

// testServerOptions are server options with short timeouts for tests (and
// the access log into logs, when given).
func testServerOptions(logs io.Writer) server.Options {
	so := server.Options{
		ReadHeaderTimeout:  500 * time.Millisecond,
		BodyReadTimeout:    500 * time.Millisecond,
		WebhookReadTimeout: time.Second,
		KeyCacheTTL:        time.Hour,
	}
	if logs != nil {
		so.Log = slog.New(slog.NewJSONHandler(logs, nil))
	}
	return so
}

// rawRequest writes head on a fresh TCP connection (no body follows) and
// reads the status line and headers of the answer.
func rawRequest(t *testing.T, base, head string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = io.WriteString(conn, head)
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(60*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "an answer before the body was sent")
	return resp
}

// TestWebhookRefusedBeforeTheBody: what can be refused from the headers is
// refused before a byte of the body is read (these requests never send
// theirs), and the bytes in flight across deliveries are capped.
func TestWebhookRefusedBeforeTheBody(t *testing.T) {
	t.Parallel()
	so := testServerOptions(nil)
	so.WebhookSecret = []byte(testWebhookSecret)
	so.WebhookReadTimeout = time.Minute // the first request below holds its reservation
	so.WebhookBytesInFlight = 1         // raised to the minimum, server.MaxWebhookBytes
	b := startAPI(t, models.DialectSQLite, nil, workflows.Options{}, so)
	sig := "X-Hub-Signature-256: sha256=" + strings.Repeat("ab", 32) + "\r\n"
	head := func(headers string, length int) string {
		return fmt.Sprintf("POST /webhooks/github HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n", headers, length)
	}
	tests := []struct {
		name, head string
		status     int
	}{
		{"NoSignature", head("X-GitHub-Event: workflow_job\r\nX-GitHub-Delivery: d1\r\n", 10<<20), http.StatusUnauthorized},
		{"MalformedSignature", head("X-GitHub-Event: workflow_job\r\nX-GitHub-Delivery: d2\r\nX-Hub-Signature-256: sha256=zz\r\n", 10<<20), http.StatusUnauthorized},
		{"SHA1Signature", head("X-GitHub-Event: workflow_job\r\nX-GitHub-Delivery: d3\r\nX-Hub-Signature-256: sha1="+strings.Repeat("0", 40)+"\r\n", 10<<20), http.StatusUnauthorized},
		{"NoDelivery", head("X-GitHub-Event: workflow_job\r\n"+sig, 10<<20), http.StatusBadRequest},
		{"TooLarge", head("X-GitHub-Event: workflow_job\r\nX-GitHub-Delivery: d4\r\n"+sig, server.MaxWebhookBytes+1), http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		resp := rawRequest(t, b.url, tt.head)
		require.Equal(t, tt.status, resp.StatusCode, tt.name)
	}

	// 20 MiB declared and not sent holds 20 of the 25 MiB budget (the
	// minimum: one delivery of the largest size), so 10 MiB more is refused
	// (once the server has read the first request's headers).
	conn, err := net.Dial("tcp", strings.TrimPrefix(b.url, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, head("X-GitHub-Event: workflow_job\r\nX-GitHub-Delivery: d5\r\n"+sig, 20<<20))
	require.NoError(t, err)
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequest(http.MethodPost, b.url+"/webhooks/github", io.LimitReader(zeroes{}, 10<<20))
		require.NoError(t, err)
		req.ContentLength = 10 << 20
		req.Header.Set("X-GitHub-Event", "workflow_job")
		req.Header.Set("X-GitHub-Delivery", guid())
		req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("ab", 32))
		resp, err := b.client.Do(req)
		if err == nil && resp.StatusCode == http.StatusServiceUnavailable {
			require.NotEmpty(t, resp.Header.Get("Retry-After"))
			var body struct{ Error struct{ Code string } }
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			resp.Body.Close()
			require.Equal(t, "unavailable", body.Error.Code)
			break
		}
		if err == nil {
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "read (the budget was still free) and refused")
			resp.Body.Close()
		}
		require.True(t, time.Now().Before(deadline), "a delivery past the in-flight budget answers 503")
		time.Sleep(20 * time.Millisecond)
	}
}

// zeroes is an endless reader of 'a' bytes that allocates nothing.
type zeroes struct{}

func (zeroes) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

// TestWebhookFloodKeepsMemoryBounded: 16 clients keep posting deliveries
// of 16 MiB with well-formed but wrong signatures (the HMAC can only be
// checked on the whole body) until theirs is read. Before, each body was buffered whole at once: 16
// connections took RSS from 40 to 711 MiB. Now the bytes in flight are
// capped (25 MiB here), so the heap grows by a bounded amount and the
// deliveries past the cap answer 503.
//
// Not parallel: it measures the process's heap, so nothing else may run.
func TestWebhookFloodKeepsMemoryBounded(t *testing.T) {
	const (
		clients = 16
		bodyLen = 16 << 20
		bound   = 96 << 20 // generous: the cap, garbage not yet collected, the test itself
	)
	srv := server.New(server.Options{Engine: recordingEngine{}, WebhookSecret: []byte(testWebhookSecret), WebhookBytesInFlight: 1})
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = srv.HTTPServer()
	ts.Start()
	defer ts.Close()

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
			}
		}
	}()

	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		cut      int // connections the server closed while the client was sending
		wg       sync.WaitGroup
	)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Like a determined attacker, try again until the body is read.
			for range 200 {
				req, err := http.NewRequest(http.MethodPost, ts.URL+"/webhooks/github", io.LimitReader(zeroes{}, bodyLen))
				if err != nil {
					panic(err)
				}
				req.ContentLength = bodyLen
				req.Header.Set("X-GitHub-Event", "workflow_job")
				req.Header.Set("X-GitHub-Delivery", guid())
				req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
				resp, err := ts.Client().Do(req)
				status := 0
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body) // the answer is drained, not read
					resp.Body.Close()
					status = resp.StatusCode
				}
				mu.Lock()
				if err != nil {
					cut++
				} else {
					statuses[status]++
				}
				mu.Unlock()
				if status == http.StatusUnauthorized {
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled

	t.Logf("statuses %v, cut %d; heap in use %d MiB before, peak %d MiB", statuses, cut, before.HeapInuse>>20, peak.Load()>>20)
	for status := range statuses {
		require.Contains(t, []int{http.StatusUnauthorized, http.StatusServiceUnavailable}, status)
	}
	require.Equal(t, clients, statuses[http.StatusUnauthorized], "every client's delivery was read in the end and refused for its signature")
	require.Positive(t, statuses[http.StatusServiceUnavailable]+cut, "some deliveries were refused for the in-flight cap")
	require.Less(t, peak.Load()-min(peak.Load(), before.HeapInuse), uint64(bound), "heap growth during the flood")
}
