package client_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/client"
)

func newClient(t *testing.T, h http.Handler, strict bool) *client.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := client.New(client.Options{BaseURL: srv.URL + "/", APIKey: "df_test", Strict: strict})
	require.NoError(t, err)
	return c
}

func TestRequestsUnderABasePathWithEscapedIDs(t *testing.T) {
	t.Parallel()
	var got []string
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.EscapedPath()+"?"+r.URL.RawQuery)
		w.Write([]byte(`{"builds":[],"total":0,"nextCursor":null}`))
	}), false)
	base, err := client.New(client.Options{BaseURL: c.BaseURL() + "/deskforge/", APIKey: "k"})
	require.NoError(t, err)
	_, err = base.ListBuilds(t.Context(), "proj/1", client.BuildFilter{Status: "failed", Limit: 5, Cursor: "build_a"})
	require.NoError(t, err)
	require.Equal(t, []string{"/deskforge/projects/proj%2F1/builds?cursor=build_a&limit=5&status=failed"}, got)
}

func TestNewRefusesARelativeURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "localhost:8080", "ftp://x", "/builds"} {
		_, err := client.New(client.Options{BaseURL: u})
		require.ErrorContains(t, err, "not an absolute http(s) URL", u)
	}
}

func TestAPIError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		header map[string]string
		body   string
		want   client.APIError
	}{
		{"Envelope", 400, nil, `{"error":{"code":"invalid_request","message":"platform must be one of mac, windows, linux","field":"platform"},"requestId":"req_1"}`,
			client.APIError{Status: 400, Code: "invalid_request", Message: "platform must be one of mac, windows, linux", Field: "platform", RequestID: "req_1"}},
		{"RetryAfter", 429, map[string]string{"Retry-After": "7"}, `{"error":{"code":"rate_limited","message":"slow down"},"requestId":"req_2"}`,
			client.APIError{Status: 429, Code: "rate_limited", Message: "slow down", RequestID: "req_2", RetryAfter: 7 * time.Second}},
		{"NotTheEnvelope", 502, map[string]string{"X-Request-Id": "req_3"}, `<html>Bad Gateway</html>`,
			client.APIError{Status: 502, Message: "unexpected answer: <html>Bad Gateway</html>", RequestID: "req_3"}},
		{"Empty", 503, nil, ``, client.APIError{Status: 503, Message: "unexpected answer: Service Unavailable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				require.Equal(t, "Bearer df_test", r.Header.Get("Authorization"))
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}), false)
			_, err := c.GetBuild(t.Context(), "build_x")
			var ae *client.APIError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, tt.want, *ae)
			require.Equal(t, tt.status >= 429, client.IsTransient(err))
		})
	}
}

func TestStrictRefusesUnknownFields(t *testing.T) {
	t.Parallel()
	body := `{"id":"build_x","projectId":"proj_x","version":"1.0.0","platform":"mac","arch":"arm64","status":"queued",` +
		`"createdAt":"2024-01-20T10:00:00Z","startedAt":null,"completedAt":null,"duration":null,"artifactUrl":null,` +
		`"artifactSize":null,"buildLog":"http://x/builds/build_x/logs","surprise":1}`
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) })
	_, err := newClient(t, h, true).GetBuild(t.Context(), "build_x")
	require.ErrorContains(t, err, `unknown field "surprise"`)
	envelope := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error":{"code":"not_found","message":"no","hint":"x"},"requestId":"req_1"}`))
	})
	_, err = newClient(t, envelope, true).GetBuild(t.Context(), "build_x")
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	require.Empty(t, ae.Code, "an envelope with an unknown field is not taken for the envelope")
	require.Contains(t, ae.Message, `"hint":"x"`)
	b, err := newClient(t, h, false).GetBuild(t.Context(), "build_x")
	require.NoError(t, err)
	require.Equal(t, time.Date(2024, 1, 20, 10, 0, 0, 0, time.UTC), b.CreatedAt)
	require.Nil(t, b.Error)
	require.Nil(t, b.Progress)
}

// cuttingServer serves content with Range support, but the first cuts
// answers stop after half their bytes and drop the connection.
type cuttingServer struct {
	content []byte
	cuts    atomic.Int32
	mu      sync.Mutex
	ranges  []string
}

func (s *cuttingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	s.mu.Unlock()
	sum := sha256.Sum256(s.content)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
	w.Header().Set("Content-Disposition", `attachment; filename="app-1.0.0-mac-arm64.dmg"`)
	if s.cuts.Add(-1) >= 0 {
		start := int64(0)
		_, _ = fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-", &start)
		rest := s.content[start:]
		w.Header().Set("Content-Length", fmt.Sprint(len(rest)))
		if start > 0 {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(s.content)-1, len(s.content)))
			w.WriteHeader(http.StatusPartialContent)
		}
		w.Write(rest[:len(rest)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection drops midway
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(s.content))
}

func TestDownloadFileResumesACutTransfer(t *testing.T) {
	t.Parallel()
	content := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	srv := &cuttingServer{content: content}
	srv.cuts.Store(2)
	c := newClient(t, srv, false)
	path := filepath.Join(t.TempDir(), "app.dmg")
	var retries []int64
	var last int64
	res, err := c.DownloadFile(t.Context(), "build_x", path, client.DownloadOptions{
		RetryDelay: time.Millisecond,
		OnRetry:    func(done int64, err error) { retries = append(retries, done) },
		Progress:   func(done, total int64) { require.GreaterOrEqual(t, done, last); last = done },
	})
	require.NoError(t, err)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, content, got)
	sum := sha256.Sum256(content)
	require.Equal(t, hex.EncodeToString(sum[:]), res.SHA256)
	require.Equal(t, int64(len(content)), res.Size)
	half := int64(len(content) / 2)
	require.Equal(t, []int64{half, half + half/2}, retries)
	require.Equal(t, []string{"", fmt.Sprintf("bytes=%d-", half), fmt.Sprintf("bytes=%d-", half+half/2)}, srv.ranges)
	require.NoFileExists(t, path+client.PartialSuffix)
}

func TestDownloadFileResumesAPartFileLeftBehind(t *testing.T) {
	t.Parallel()
	content := bytes.Repeat([]byte("deskforge "), 10000)
	srv := &cuttingServer{content: content}
	srv.cuts.Store(1)
	c := newClient(t, srv, false)
	path := filepath.Join(t.TempDir(), "app.dmg")
	// The first run gives up after the cut (no retries): the .part stays.
	_, err := c.DownloadFile(t.Context(), "build_x", path, client.DownloadOptions{Retries: -1})
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.ErrorContains(t, err, "transfer interrupted")
	part, err := os.ReadFile(path + client.PartialSuffix)
	require.NoError(t, err)
	require.Len(t, part, len(content)/2)
	// The next run resumes it.
	res, err := c.DownloadFile(t.Context(), "build_x", path, client.DownloadOptions{})
	require.NoError(t, err)
	require.True(t, res.Resumed)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, content, got)
	require.Equal(t, fmt.Sprintf("bytes=%d-", len(content)/2), srv.ranges[1])
}

func TestDownloadFileRefusesAWrongDigest(t *testing.T) {
	t.Parallel()
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"`+strings.Repeat("0", 64)+`"`)
		w.Write([]byte("not what was announced"))
	}), false)
	path := filepath.Join(t.TempDir(), "app.dmg")
	_, err := c.DownloadFile(t.Context(), "build_x", path, client.DownloadOptions{})
	require.ErrorContains(t, err, "SHA-256 of")
	require.NoFileExists(t, path)
}

func TestDownloadNotReady(t *testing.T) {
	t.Parallel()
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusConflict)
		w.Write([]byte(`{"error":{"code":"not_ready","message":"build build_x is building"},"requestId":"req_1"}`))
	}), false)
	_, err := c.DownloadFile(t.Context(), "build_x", filepath.Join(t.TempDir(), "a"), client.DownloadOptions{RetryDelay: time.Millisecond})
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "not_ready", ae.Code)
}

// TestWatchSurvivesTransientFailures: a 503 between polls is retried, and
// every log entry is delivered once, in order.
func TestWatchSurvivesTransientFailures(t *testing.T) {
	t.Parallel()
	var polls atomic.Int32
	entries := []string{"Build queued", "Dispatched", "Job started", "Step 1", "Build completed successfully"}
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(polls.Load())
		if strings.HasSuffix(r.URL.Path, "/logs") {
			after := 0
			_, _ = fmt.Sscan(r.URL.Query().Get("after"), &after)
			visible := min(n+1, len(entries))
			var logs []string
			for i := after; i < visible; i++ {
				logs = append(logs, fmt.Sprintf(`{"timestamp":"2024-01-20T10:00:0%dZ","level":"info","message":%q}`, i, entries[i]))
			}
			fmt.Fprintf(w, `{"buildId":"build_x","logs":[%s],"nextAfter":%d}`, strings.Join(logs, ","), max(after, visible))
			return
		}
		if polls.Add(1) == 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		status := "building"
		if n >= len(entries)-1 {
			status = "success"
		}
		fmt.Fprintf(w, `{"id":"build_x","status":%q,"createdAt":"2024-01-20T10:00:00Z"}`, status)
	}), false)
	var got []string
	var statuses []string
	b, err := c.Watch(t.Context(), "build_x", client.WatchOptions{Logs: true, Interval: time.Millisecond}, func(u client.Update) error {
		if u.Build != nil {
			statuses = append(statuses, u.Build.Status)
		}
		for _, e := range u.Logs {
			got = append(got, e.Message)
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, "success", b.Status)
	require.Equal(t, entries, got)
	require.Equal(t, []string{"building", "success"}, statuses)
}

// TestDownloadRedirectKeepsTheKeyHome: a download redirected to another
// origin on the same host name (a forge, a store on another port) gets
// the bytes without the API key; a redirect within the server keeps it.
func TestDownloadRedirectKeepsTheKeyHome(t *testing.T) {
	t.Parallel()
	var foreignAuth atomic.Value
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		foreignAuth.Store(r.Header.Get("Authorization"))
		w.Write([]byte("installer bytes"))
	}))
	t.Cleanup(foreign.Close)
	var homeAuth []string
	var mu sync.Mutex
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		homeAuth = append(homeAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		if r.URL.Path == "/builds/build_x/download" {
			http.Redirect(w, r, "/builds/build_x/artifacts/app.dmg", http.StatusFound)
			return
		}
		http.Redirect(w, r, foreign.URL+"/asset", http.StatusFound)
	}), false)
	a, err := c.OpenArtifact(t.Context(), "build_x", 0)
	require.NoError(t, err)
	body, err := io.ReadAll(a.Body)
	a.Body.Close()
	require.NoError(t, err)
	require.Equal(t, "installer bytes", string(body))
	require.Equal(t, []string{"Bearer df_test", "Bearer df_test"}, homeAuth, "the server's own redirect keeps the key")
	require.Equal(t, "", foreignAuth.Load(), "another origin never sees the key")
}
