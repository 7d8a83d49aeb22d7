package github

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/workflows"
)

const (
	testToken = "test-token"
	apiPrefix = "/api/v3"
)

// testBundle is what most tests need: a Client pointed at an httptest server
// whose mux the test fills, go-github style.
type testBundle struct {
	client *Client
	mux    *http.ServeMux
	server *httptest.Server
}

// setup starts a server and a Client on it with opts (BaseURL, Token and
// HTTPClient are filled in). The API lives under /api/v3/, as on GHES, to
// check that the base URL is used as given.
func setup(t *testing.T, opts Options) *testBundle {
	t.Helper()
	mux := http.NewServeMux()
	api := http.NewServeMux()
	api.Handle(apiPrefix+"/", http.StripPrefix(apiPrefix, mux))
	api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request outside the base URL: %s %s", r.Method, r.URL)
		http.Error(w, "outside base URL", http.StatusBadRequest)
	})
	server := httptest.NewServer(api)
	t.Cleanup(server.Close)

	opts.BaseURL = server.URL + apiPrefix + "/"
	if opts.Token == "" && opts.AppID == 0 {
		opts.Token = testToken
	}
	opts.HTTPClient = server.Client()
	client, err := New(context.Background(), opts)
	require.NoError(t, err)
	return &testBundle{client: client, mux: mux, server: server}
}

// testMethod fails the test when r does not use method.
func testMethod(t *testing.T, r *http.Request, method string) {
	t.Helper()
	if r.Method != method {
		t.Errorf("method = %s, want %s", r.Method, method)
	}
}

// testAuth fails the test when r does not carry the test token.
func testAuth(t *testing.T, r *http.Request) {
	t.Helper()
	if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
		t.Errorf("Authorization = %q, want the test token", got)
	}
}

// testQuery fails the test when r's query differs from want.
func testQuery(t *testing.T, r *http.Request, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for k, v := range r.URL.Query() {
		got[k] = strings.Join(v, ",")
	}
	assert.Equal(t, want, got, "query of %s", r.URL.Path)
}

// Helpers called from handlers use assert: require must not stop a
// handler goroutine.

// testJSONBody decodes r's body and fails the test when it differs from want.
func testJSONBody(t *testing.T, r *http.Request, want string) {
	t.Helper()
	body, err := io.ReadAll(r.Body)
	assert.NoError(t, err)
	assert.JSONEq(t, want, string(body))
}

// writeJSON answers status with body.
func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func TestNewRequiresCredentials(t *testing.T) {
	t.Parallel()
	_, err := New(context.Background(), Options{})
	require.ErrorContains(t, err, "set a token")

	_, err = New(context.Background(), Options{Token: "x", BaseURL: "ftp://example.com"})
	require.ErrorContains(t, err, "must be an http(s) URL")
}

func TestBaseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, baseURL, want string
	}{
		{"default", "", "https://api.github.com/"},
		{"ghes", "https://ghes.example.com/api/v3/", "https://ghes.example.com/api/v3/"},
		{"no trailing slash", "http://127.0.0.1:9999", "http://127.0.0.1:9999/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(context.Background(), Options{Token: "x", BaseURL: tt.baseURL})
			require.NoError(t, err)
			require.Equal(t, tt.want, c.BaseURL())
		})
	}
}

func TestGitHubAppAuthentication(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})

	var tokenRequests atomic.Int32
	b := setup(t, Options{AppID: 42, InstallationID: 7, AppPrivateKey: keyPEM})
	b.mux.HandleFunc("/app/installations/7/access_tokens", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodPost)
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ey") {
			t.Errorf("token request not signed with the app JWT: %q", r.Header.Get("Authorization"))
		}
		tokenRequests.Add(1)
		writeJSON(w, http.StatusCreated, fmt.Sprintf(`{"token":"ghs_installation","expires_at":%q}`,
			time.Now().Add(time.Hour).UTC().Format(time.RFC3339)))
	})
	b.mux.HandleFunc("/repos/o/r", func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "token ghs_installation" {
			t.Errorf("Authorization = %q, want the installation token", got)
		}
		writeJSON(w, http.StatusOK, `{"id":1,"full_name":"o/r","private":true}`)
	})

	for range 2 {
		private, err := b.client.RepositoryPrivate(context.Background(), "o/r")
		require.NoError(t, err)
		require.True(t, private)
	}
	require.Equal(t, int32(1), tokenRequests.Load(), "the installation token is reused")
}

func TestErrorTranslation(t *testing.T) {
	t.Parallel()
	reset := time.Now().Add(20 * time.Minute).Truncate(time.Second).UTC()
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter)
		check  func(t *testing.T, err error)
	}{
		{
			name: "404 is ErrNotFound",
			answer: func(w http.ResponseWriter) {
				writeJSON(w, http.StatusNotFound, `{"message":"Not Found"}`)
			},
			check: func(t *testing.T, err error) {
				require.ErrorIs(t, err, workflows.ErrNotFound)
				require.ErrorContains(t, err, "get run 5 of o/r")
			},
		},
		{
			name: "403 with remaining 0 is a primary rate limit until reset",
			answer: func(w http.ResponseWriter) {
				w.Header().Set("X-RateLimit-Limit", "5000")
				w.Header().Set("X-RateLimit-Remaining", "0")
				w.Header().Set("X-RateLimit-Reset", fmt.Sprint(reset.Unix()))
				writeJSON(w, http.StatusForbidden, `{"message":"API rate limit exceeded for user ID 1."}`)
			},
			check: func(t *testing.T, err error) {
				var rl *workflows.RateLimitError
				require.ErrorAs(t, err, &rl)
				require.False(t, rl.Secondary)
				require.True(t, rl.Until.Equal(reset), "until %s, want %s", rl.Until, reset)
				require.Contains(t, rl.Message, "API rate limit exceeded")
			},
		},
		{
			name: "403 secondary with retry-after",
			answer: func(w http.ResponseWriter) {
				w.Header().Set("Retry-After", "30")
				writeJSON(w, http.StatusForbidden, `{"message":"You have exceeded a secondary rate limit.",
					"documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`)
			},
			check: func(t *testing.T, err error) {
				var rl *workflows.RateLimitError
				require.ErrorAs(t, err, &rl)
				require.True(t, rl.Secondary)
				require.WithinDuration(t, time.Now().Add(30*time.Second), rl.Until, 3*time.Second)
			},
		},
		{
			name: "403 secondary without retry-after waits a minute",
			answer: func(w http.ResponseWriter) {
				writeJSON(w, http.StatusForbidden, `{"message":"You have exceeded a secondary rate limit.",
					"documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`)
			},
			check: func(t *testing.T, err error) {
				var rl *workflows.RateLimitError
				require.ErrorAs(t, err, &rl)
				require.True(t, rl.Secondary)
				require.WithinDuration(t, time.Now().Add(time.Minute), rl.Until, 3*time.Second)
			},
		},
		{
			name: "429 with retry-after",
			answer: func(w http.ResponseWriter) {
				w.Header().Set("Retry-After", "17")
				writeJSON(w, http.StatusTooManyRequests, `{"message":"Too many requests"}`)
			},
			check: func(t *testing.T, err error) {
				var rl *workflows.RateLimitError
				require.ErrorAs(t, err, &rl)
				require.True(t, rl.Secondary)
				require.WithinDuration(t, time.Now().Add(17*time.Second), rl.Until, 3*time.Second)
				require.Equal(t, "Too many requests", rl.Message)
			},
		},
		{
			name: "429 with remaining 0 waits until reset",
			answer: func(w http.ResponseWriter) {
				w.Header().Set("X-RateLimit-Remaining", "0")
				w.Header().Set("X-RateLimit-Reset", fmt.Sprint(reset.Unix()))
				writeJSON(w, http.StatusTooManyRequests, `{"message":"API rate limit exceeded"}`)
			},
			check: func(t *testing.T, err error) {
				var rl *workflows.RateLimitError
				require.ErrorAs(t, err, &rl)
				require.False(t, rl.Secondary)
				require.True(t, rl.Until.Equal(reset), "until %s, want %s", rl.Until, reset)
			},
		},
		{
			name: "429 without headers waits a minute",
			answer: func(w http.ResponseWriter) {
				w.WriteHeader(http.StatusTooManyRequests)
			},
			check: func(t *testing.T, err error) {
				var rl *workflows.RateLimitError
				require.ErrorAs(t, err, &rl)
				require.WithinDuration(t, time.Now().Add(time.Minute), rl.Until, 3*time.Second)
			},
		},
		{
			name: "500 is transient",
			answer: func(w http.ResponseWriter) {
				writeJSON(w, http.StatusInternalServerError, `{"message":"Server Error"}`)
			},
			check: func(t *testing.T, err error) {
				var te *workflows.TransientError
				require.ErrorAs(t, err, &te)
				require.Equal(t, http.StatusInternalServerError, te.Status)
				require.ErrorContains(t, err, "Server Error")
			},
		},
		{
			name: "502 without a body is transient",
			answer: func(w http.ResponseWriter) {
				w.WriteHeader(http.StatusBadGateway)
			},
			check: func(t *testing.T, err error) {
				var te *workflows.TransientError
				require.ErrorAs(t, err, &te)
				require.Equal(t, http.StatusBadGateway, te.Status)
			},
		},
		{
			name: "422 is invalid with GitHub's message and details",
			answer: func(w http.ResponseWriter) {
				writeJSON(w, http.StatusUnprocessableEntity, `{"message":"Validation Failed",
					"errors":[{"resource":"Run","field":"id","code":"invalid"},{"code":"custom","message":"run is too old"}]}`)
			},
			check: func(t *testing.T, err error) {
				var ie *workflows.InvalidError
				require.ErrorAs(t, err, &ie)
				require.Equal(t, http.StatusUnprocessableEntity, ie.Status)
				require.Equal(t, "Validation Failed: Run id invalid; run is too old", ie.Message)
			},
		},
		{
			name: "403 permission error is invalid, not a rate limit",
			answer: func(w http.ResponseWriter) {
				w.Header().Set("X-RateLimit-Remaining", "4999")
				writeJSON(w, http.StatusForbidden, `{"message":"Resource not accessible by integration"}`)
			},
			check: func(t *testing.T, err error) {
				var ie *workflows.InvalidError
				require.ErrorAs(t, err, &ie)
				require.Equal(t, http.StatusForbidden, ie.Status)
				require.Equal(t, "Resource not accessible by integration", ie.Message)
			},
		},
		{
			name: "undecodable 200 is transient",
			answer: func(w http.ResponseWriter) {
				writeJSON(w, http.StatusOK, `{"id":`)
			},
			check: func(t *testing.T, err error) {
				var te *workflows.TransientError
				require.ErrorAs(t, err, &te)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Options{})
			b.mux.HandleFunc("/repos/o/r/actions/runs/5", func(w http.ResponseWriter, r *http.Request) {
				tt.answer(w)
			})
			_, err := b.client.GetRun(context.Background(), "o/r", 5)
			require.Error(t, err)
			tt.check(t, err)
		})
	}
}

func TestNetworkErrorIsTransient(t *testing.T) {
	t.Parallel()
	server := httptest.NewServer(http.NotFoundHandler())
	baseURL := server.URL
	server.Close()

	c, err := New(context.Background(), Options{Token: testToken, BaseURL: baseURL})
	require.NoError(t, err)
	_, err = c.GetRun(context.Background(), "o/r", 1)
	var te *workflows.TransientError
	require.ErrorAs(t, err, &te)
	require.Zero(t, te.Status)
}

func TestCancelledContextIsNotTransient(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	b.mux.HandleFunc("/repos/o/r/actions/runs/1", func(w http.ResponseWriter, r *http.Request) {
		cancel()
		<-r.Context().Done()
	})
	_, err := b.client.GetRun(ctx, "o/r", 1)
	require.ErrorIs(t, err, context.Canceled)
	var te *workflows.TransientError
	require.False(t, errors.As(err, &te))
}

func TestInvalidRepository(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	for _, repo := range []string{"", "noslash", "/r", "o/", "o/r/x"} {
		_, err := b.client.GetRun(context.Background(), repo, 1)
		var ie *workflows.InvalidError
		require.ErrorAs(t, err, &ie, "repo %q", repo)
	}
}
