package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/workflows"
	"github.com/deskforge/deskforge/workflows/joblog"
)

// The answers in testdata/gitea were recorded from a real Gitea 1.27.3 with
// gitea-runner v1.0.8 (host mode), set up by ../shared/gitea/start.sh on
// http://127.0.0.1:3014: the smoke build (run 1, success), a failing build
// (run 2, config.fail), a run no runner can take (run 3, queued), a slow
// build cancelled through the web route (run 4), a draft release with an
// asset (v9.0.0), and every webhook delivery of those runs (hooks/).

const (
	giteaRecordedHost = "http://127.0.0.1:3014"
	giteaToken        = "0123456789abcdef0123456789abcdef01234567"
	giteaRepo         = "acme/builder"
)

// giteaBundle is a test server answering recorded Gitea answers: the API
// under /api/v1/, the web routes at the root.
type giteaBundle struct {
	t      *testing.T
	server *httptest.Server
	api    *http.ServeMux // paths relative to /api/v1
	web    *http.ServeMux
	client *Gitea
}

func setupGitea(t *testing.T, opts GiteaOptions) *giteaBundle {
	t.Helper()
	b := &giteaBundle{t: t, api: http.NewServeMux(), web: http.NewServeMux()}
	root := http.NewServeMux()
	root.Handle("/api/v1/", http.StripPrefix("/api/v1", b.api))
	root.Handle("/", b.web)
	b.server = httptest.NewServer(root)
	t.Cleanup(b.server.Close)
	opts.BaseURL = b.server.URL + "/api/v1/"
	opts.Token = giteaToken
	opts.ReadsPerSecond = 1000
	opts.ReadBurst = 1000
	c, err := NewGitea(context.Background(), opts)
	require.NoError(t, err)
	b.client = c
	return b
}

// recorded reads a recorded answer, its host replaced by the test server's.
func (b *giteaBundle) recorded(name string) string {
	b.t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "gitea", name))
	require.NoError(b.t, err)
	return strings.ReplaceAll(string(data), giteaRecordedHost, b.server.URL)
}

// answer registers a GET handler answering a recorded file; check, when not
// nil, looks at the request first.
func (b *giteaBundle) answer(path, file string, check func(r *http.Request)) {
	b.api.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		testMethod(b.t, r, http.MethodGet)
		testGiteaAuth(b.t, r)
		if check != nil {
			check(r)
		}
		writeJSON(w, http.StatusOK, b.recorded(file))
	})
}

func testGiteaAuth(t *testing.T, r *http.Request) {
	t.Helper()
	if got := r.Header.Get("Authorization"); got != "Bearer "+giteaToken {
		t.Errorf("Authorization = %q, want the token", got)
	}
}

// giteaNotFound is Gitea's 404 body.
func giteaNotFound(w http.ResponseWriter, message string) {
	writeJSON(w, http.StatusNotFound, fmt.Sprintf(`{"message":%q,"url":"http://127.0.0.1:3014/api/swagger"}`, message))
}

func TestGiteaDispatchAsksRunDetailsInTheQuery(t *testing.T) {
	t.Parallel()
	b := setupGitea(t, GiteaOptions{})
	var body map[string]any
	b.api.HandleFunc("/repos/acme/builder/actions/workflows/deskforge.yml/dispatches", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodPost)
		testGiteaAuth(t, r)
		testQuery(t, r, map[string]string{"return_run_details": "true"})
		require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		writeJSON(w, http.StatusOK, b.recorded("dispatch-fail.json"))
	})
	res, err := b.client.DispatchWorkflow(context.Background(), workflows.DispatchRequest{
		Repo: giteaRepo, Workflow: "deskforge.yml", Ref: "main",
		Inputs: map[string]string{"build_id": "build_01failfail", "runner": "ubuntu-24.04"},
	})
	require.NoError(t, err)
	require.Equal(t, workflows.DispatchResult{RunID: 2, RunURL: b.server.URL + "/api/v1/repos/acme/builder/actions/runs/2",
		HTMLURL: b.server.URL + "/acme/builder/actions/runs/2"}, res)
	require.Equal(t, map[string]any{"ref": "main", "inputs": map[string]any{"build_id": "build_01failfail", "runner": "ubuntu-24.04"}}, body,
		"the body carries no return_run_details (Gitea ignores it there)")
}

func TestGiteaDispatchWithoutRunDetails(t *testing.T) {
	t.Parallel()
	b := setupGitea(t, GiteaOptions{})
	b.api.HandleFunc("/repos/acme/builder/actions/workflows/deskforge.yml/dispatches", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent) // what Gitea answers without the query parameter
	})
	res, err := b.client.DispatchWorkflow(context.Background(), workflows.DispatchRequest{Repo: giteaRepo, Workflow: "deskforge.yml", Ref: "main"})
	require.NoError(t, err)
	require.Zero(t, res.RunID, "no run named: the engine finds it by its title")
}

func TestGiteaGetRun(t *testing.T) {
	t.Parallel()
	b := setupGitea(t, GiteaOptions{})
	files := map[string]string{"1": "run-completed-success.json", "2": "run-completed-failure.json", "3": "run-queued.json",
		"4": "run-in-progress.json", "5": "run-completed-cancelled.json"}
	b.api.HandleFunc("/repos/acme/builder/actions/runs/{id}", func(w http.ResponseWriter, r *http.Request) {
		testGiteaAuth(t, r)
		require.Empty(t, r.Header.Get("If-None-Match"), "Gitea sends no ETag: no conditional request")
		if f, ok := files[r.PathValue("id")]; ok {
			writeJSON(w, http.StatusOK, b.recorded(f))
			return
		}
		giteaNotFound(w, "run with id 999: resource does not exist")
	})
	ctx := context.Background()

	queued, err := b.client.GetRun(ctx, giteaRepo, 3)
	require.NoError(t, err)
	require.Equal(t, workflows.Run{ID: 3, Repo: giteaRepo, DisplayTitle: "deskforge build_01queued linux-x64 v3.0.0",
		Event: "workflow_dispatch", Status: "queued", RunAttempt: 1, HTMLURL: b.server.URL + "/acme/builder/actions/runs/3"}, queued,
		"started_at 1970-01-01 and completed_at mean not yet; no conclusion while not completed")

	running, err := b.client.GetRun(ctx, giteaRepo, 4)
	require.NoError(t, err)
	require.Equal(t, "in_progress", running.Status)
	require.Empty(t, running.Conclusion, "conclusion is absent until completed")
	require.False(t, running.CreatedAt.IsZero(), "started_at stands for the creation time")
	require.Equal(t, running.CreatedAt, running.UpdatedAt)

	for id, want := range map[int64]string{1: "success", 2: "failure", 5: "cancelled"} {
		run, err := b.client.GetRun(ctx, giteaRepo, id)
		require.NoError(t, err)
		require.Equal(t, "completed", run.Status)
		require.Equal(t, want, run.Conclusion)
		require.True(t, run.UpdatedAt.After(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), "completed_at: %v", run.UpdatedAt)
		require.False(t, run.UpdatedAt.Before(run.CreatedAt))
	}

	_, err = b.client.GetRun(ctx, giteaRepo, 999)
	require.ErrorIs(t, err, workflows.ErrNotFound)
}

func TestGiteaListJobsNumbersStepsFromOne(t *testing.T) {
	t.Parallel()
	b := setupGitea(t, GiteaOptions{})
	files := map[string]string{"2": "jobs-completed-failure.json", "3": "jobs-queued.json", "4": "jobs-in-progress.json"}
	b.api.HandleFunc("/repos/acme/builder/actions/runs/{id}/jobs", func(w http.ResponseWriter, r *http.Request) {
		testGiteaAuth(t, r)
		testQuery(t, r, map[string]string{"limit": "50"})
		writeJSON(w, http.StatusOK, b.recorded(files[r.PathValue("id")]))
	})
	ctx := context.Background()

	jobs, err := b.client.ListJobs(ctx, giteaRepo, 4)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	j := jobs[0]
	require.Equal(t, int64(4), j.RunID)
	require.Equal(t, "in_progress", j.Status)
	require.Equal(t, []string{"ubuntu-24.04"}, j.Labels)
	require.NotEmpty(t, j.RunnerName)
	var steps []string
	for _, s := range j.Steps {
		steps = append(steps, fmt.Sprintf("%d %s %s", s.Number, s.Name, s.Status))
	}
	require.Equal(t, []string{"1 Show inputs completed", "2 Build installer in_progress", "3 Upload to release queued"}, steps)

	jobs, err = b.client.ListJobs(ctx, giteaRepo, 2)
	require.NoError(t, err)
	require.Equal(t, "failure", jobs[0].Conclusion)
	require.Equal(t, workflows.Step{Number: 2, Name: "Build installer", Status: "completed", Conclusion: "failure",
		StartedAt: jobs[0].Steps[1].StartedAt, CompletedAt: jobs[0].Steps[1].CompletedAt}, jobs[0].Steps[1])
	require.False(t, jobs[0].Steps[1].StartedAt.IsZero())

	jobs, err = b.client.ListJobs(ctx, giteaRepo, 3)
	require.NoError(t, err)
	require.Equal(t, "queued", jobs[0].Status)
	require.Empty(t, jobs[0].RunnerName)
	require.Empty(t, jobs[0].Steps)
}

func TestGiteaListDispatchRunsPagesWithLimit(t *testing.T) {
	t.Parallel()
	b := setupGitea(t, GiteaOptions{})
	var pages []string
	var mu sync.Mutex
	b.api.HandleFunc("/repos/acme/builder/actions/workflows/deskforge.yml/runs", func(w http.ResponseWriter, r *http.Request) {
		testGiteaAuth(t, r)
		q := r.URL.Query()
		assert.Equal(t, "workflow_dispatch", q.Get("event"))
		assert.Equal(t, "50", q.Get("limit"), "Gitea reads limit, not per_page")
		assert.Empty(t, q.Get("per_page"))
		assert.Empty(t, q.Get("created"), "Gitea ignores created")
		page := q.Get("page")
		mu.Lock()
		pages = append(pages, page)
		mu.Unlock()
		// As recorded with limit=1: two runs, one a page, Link to the next.
		if page == "" || page == "1" {
			w.Header().Set("Link", fmt.Sprintf(`<%s/api/v1/repos/acme/builder/actions/workflows/deskforge.yml/runs?event=workflow_dispatch&limit=50&page=2>; rel="next"`, b.server.URL))
			writeJSON(w, http.StatusOK, b.recorded("runs-list-page1.json"))
			return
		}
		writeJSON(w, http.StatusOK, b.recorded("runs-list-page2.json"))
	})
	runs, err := b.client.ListDispatchRuns(context.Background(), giteaRepo, "deskforge.yml", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Equal(t, []string{"", "2"}, pages)
	var titles []string
	for _, r := range runs {
		titles = append(titles, r.DisplayTitle)
		require.Equal(t, giteaRepo, r.Repo)
	}
	require.Len(t, titles, 2)
	require.Contains(t, titles, "deskforge build_01failfail linux-x64 v2.0.0")
}

func TestGiteaListDispatchRunsStopsAfterItsPageBound(t *testing.T) {
	t.Parallel()
	b := setupGitea(t, GiteaOptions{})
	var requests atomic.Int32
	b.api.HandleFunc("/repos/acme/builder/actions/workflows/deskforge.yml/runs", func(w http.ResponseWriter, r *http.Request) {
		n := requests.Add(1)
		w.Header().Set("Link", fmt.Sprintf(`<%s/api/v1/repos/acme/builder/actions/workflows/deskforge.yml/runs?limit=50&page=%d>; rel="next"`, b.server.URL, n+1))
		writeJSON(w, http.StatusOK, b.recorded("runs-list-page1.json"))
	})
	runs, err := b.client.ListDispatchRuns(context.Background(), giteaRepo, "deskforge.yml", time.Now())
	require.NoError(t, err)
	require.Equal(t, int32(giteaRunPages), requests.Load(), "a long history is not read to its end")
	require.Len(t, runs, giteaRunPages)
}

func TestGiteaJobLogsAnsweredDirectly(t *testing.T) {
	t.Parallel()
	b := setupGitea(t, GiteaOptions{})
	b.api.HandleFunc("/repos/acme/builder/actions/jobs/{id}/logs", func(w http.ResponseWriter, r *http.Request) {
		testGiteaAuth(t, r)
		switch r.PathValue("id") {
		case "2":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, b.recorded("job-failure.log"))
		default:
			giteaNotFound(w, "job not started") // recorded for a queued job
		}
	})
	ctx := context.Background()
	rc, err := b.client.JobLogs(ctx, giteaRepo, 2)
	require.NoError(t, err, "a 200 with the text is the log (GitHub would redirect)")
	defer rc.Close()

	// The engine's parser reads it: the job's own ::error:: first.
	p := joblog.NewParser(rc)
	var errorsSeen []string
	lines := 0
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		lines++
		if e.Level == models.LevelError {
			errorsSeen = append(errorsSeen, e.Message)
		}
	}
	require.Greater(t, lines, 20)
	require.Equal(t, []string{"build failed on purpose (config.fail)", "Process completed with exit code 1."}, errorsSeen)

	_, err = b.client.JobLogs(ctx, giteaRepo, 3)
	require.ErrorIs(t, err, workflows.ErrNotFound, "no log before the job started")
}

func TestGiteaCancelWithoutSignInIsUnsupported(t *testing.T) {
	t.Parallel()
	b := setupGitea(t, GiteaOptions{})
	b.api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("no request expected: %s %s", r.Method, r.URL)
	})
	require.False(t, b.client.CanCancel())
	err := b.client.CancelRun(context.Background(), giteaRepo, 4)
	var invalid *workflows.InvalidError
	require.ErrorAs(t, err, &invalid)
	require.Contains(t, invalid.Message, "cancel unsupported on this forge")
	require.Contains(t, invalid.Message, "DESKFORGE_GITEA_USERNAME")
}

// giteaWebServer plays Gitea's sign-in and cancel routes as recorded:
// sign-in 303 with a session cookie (200 and the form again for a wrong
// password); cancel 200 {"ok":true} with a session, 404 without one (the
// route needs write access) and for an unknown run.
type giteaWebServer struct {
	mu        sync.Mutex
	sessions  map[string]bool
	signIns   int
	cancelled []string
}

func (s *giteaWebServer) register(t *testing.T, mux *http.ServeMux) {
	mux.HandleFunc("POST /user/login", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		s.mu.Lock()
		defer s.mu.Unlock()
		s.signIns++
		if r.PostForm.Get("user_name") != "forgeadmin" || r.PostForm.Get("password") != "secret" {
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, "<html>Username or password is incorrect.</html>")
			return
		}
		id := fmt.Sprintf("session%d", s.signIns)
		s.sessions[id] = true
		http.SetCookie(w, &http.Cookie{Name: "i_like_gitea", Value: id, Path: "/", HttpOnly: true})
		w.Header().Set("Location", "/")
		w.WriteHeader(http.StatusSeeOther)
	})
	mux.HandleFunc("POST /{owner}/{repo}/actions/runs/{run}/cancel", func(w http.ResponseWriter, r *http.Request) {
		assert.Empty(t, r.Header.Get("Authorization"), "the token is not sent to the web route")
		s.mu.Lock()
		defer s.mu.Unlock()
		c, err := r.Cookie("i_like_gitea")
		if err != nil || !s.sessions[c.Value] || r.PathValue("run") == "999" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, "Not found.\n")
			return
		}
		s.cancelled = append(s.cancelled, r.PathValue("owner")+"/"+r.PathValue("repo")+"#"+r.PathValue("run"))
		writeJSON(w, http.StatusOK, `{"ok":true}`)
	})
}

func TestGiteaCancelThroughTheWebRoute(t *testing.T) {
	t.Parallel()
	b := setupGitea(t, GiteaOptions{WebUser: "forgeadmin", WebPassword: "secret"})
	web := &giteaWebServer{sessions: map[string]bool{}}
	web.register(t, b.web)
	ctx := context.Background()
	require.True(t, b.client.CanCancel())

	require.NoError(t, b.client.CancelRun(ctx, giteaRepo, 4))
	require.NoError(t, b.client.CancelRun(ctx, giteaRepo, 4), "cancelling a completed run is no error")
	require.Equal(t, 1, web.signIns, "the session is kept")

	// The session expires: Gitea answers 404 as to anyone; DeskForge signs in again.
	web.mu.Lock()
	clear(web.sessions)
	web.mu.Unlock()
	require.NoError(t, b.client.CancelRun(ctx, giteaRepo, 5))
	require.Equal(t, 2, web.signIns)
	require.Equal(t, []string{"acme/builder#4", "acme/builder#4", "acme/builder#5"}, web.cancelled)

	err := b.client.CancelRun(ctx, giteaRepo, 999)
	require.ErrorIs(t, err, workflows.ErrNotFound, "404 with a fresh session: no such run")
}

func TestGiteaCancelWithAWrongPassword(t *testing.T) {
	t.Parallel()
	b := setupGitea(t, GiteaOptions{WebUser: "forgeadmin", WebPassword: "wrong"})
	web := &giteaWebServer{sessions: map[string]bool{}}
	web.register(t, b.web)
	err := b.client.CancelRun(context.Background(), giteaRepo, 4)
	var invalid *workflows.InvalidError
	require.ErrorAs(t, err, &invalid)
	require.Contains(t, invalid.Message, "refused the web sign-in of forgeadmin")
	require.Empty(t, web.cancelled)
}

func TestGiteaReleaseAssets(t *testing.T) {
	t.Parallel()
	b := setupGitea(t, GiteaOptions{})
	b.answer("/repos/acme/builder/releases", "releases-list.json", nil)
	b.api.HandleFunc("/repos/acme/builder/releases/{id}/assets", func(w http.ResponseWriter, r *http.Request) {
		// The assets of one release, from the recorded list.
		var releases []struct {
			ID     json.Number     `json:"id"`
			Assets json.RawMessage `json:"assets"`
		}
		require.NoError(t, json.Unmarshal([]byte(b.recorded("releases-list.json")), &releases))
		for _, rel := range releases {
			if rel.ID.String() == r.PathValue("id") {
				writeJSON(w, http.StatusOK, string(rel.Assets))
				return
			}
		}
		giteaNotFound(w, "release does not exist")
	})
	var rangeSeen atomic.Value
	b.web.HandleFunc("GET /acme/builder/releases/download/{tag}/{name}", func(w http.ResponseWriter, r *http.Request) {
		// A draft's asset needs the token (recorded: 404 without).
		if r.Header.Get("Authorization") != "Bearer "+giteaToken {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		rangeSeen.Store(r.Header.Get("Range"))
		http.ServeContent(w, r, "app.AppImage", time.Time{}, strings.NewReader("draft asset bytes\n"))
	})
	ctx := context.Background()

	a, err := b.client.FindReleaseAsset(ctx, giteaRepo, "v9.0.0", "app-9.0.0-linux-x64.AppImage")
	require.NoError(t, err)
	require.Equal(t, workflows.Asset{ID: 3, Name: "app-9.0.0-linux-x64.AppImage", Size: 18, Draft: true,
		BrowserDownloadURL: b.server.URL + "/acme/builder/releases/download/v9.0.0/app-9.0.0-linux-x64.AppImage"}, a,
		"Gitea's assets have no label, state, content type or digest")
	published, err := b.client.FindReleaseAsset(ctx, giteaRepo, "v1.2.3", "acme-notes-1.2.3-linux-x64.AppImage")
	require.NoError(t, err)
	require.False(t, published.Draft)
	require.Equal(t, b.server.URL+"/acme/builder/releases/download/v1.2.3/acme-notes-1.2.3-linux-x64.AppImage", published.BrowserDownloadURL)
	_, err = b.client.FindReleaseAsset(ctx, giteaRepo, "v1.2.3", "missing.AppImage")
	require.ErrorIs(t, err, workflows.ErrNotFound)

	_, err = b.client.AssetDownloadURL(ctx, giteaRepo, 3)
	require.ErrorIs(t, err, workflows.ErrAssetStreamed, "no signed URLs on Gitea: stream through OpenAsset")

	resp, err := b.client.OpenAsset(ctx, giteaRepo, 3, http.Header{})
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "draft asset bytes\n", string(body))

	resp, err = b.client.OpenAsset(ctx, giteaRepo, 3, http.Header{"Range": {"bytes=0-4"}})
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	require.Equal(t, "draft", string(body))
	require.Equal(t, "bytes=0-4", rangeSeen.Load())

	_, err = b.client.OpenAsset(ctx, giteaRepo, 77, http.Header{})
	require.ErrorIs(t, err, workflows.ErrNotFound)
}

func TestGiteaOpenAssetKeepsTheTokenOnTheServer(t *testing.T) {
	t.Parallel()
	b := setupGitea(t, GiteaOptions{})
	b.api.HandleFunc("/repos/acme/builder/releases", func(w http.ResponseWriter, r *http.Request) {
		// An asset whose browser_download_url points elsewhere.
		writeJSON(w, http.StatusOK, strings.ReplaceAll(b.recorded("releases-list.json"), b.server.URL+"/acme/", "http://elsewhere.example/acme/"))
	})
	_, err := b.client.OpenAsset(context.Background(), giteaRepo, 3, http.Header{})
	var invalid *workflows.InvalidError
	require.ErrorAs(t, err, &invalid)
	require.Contains(t, invalid.Message, "the token is not sent there")
}

func TestGiteaCheckAccessWithoutRateLimitRoute(t *testing.T) {
	t.Parallel()
	b := setupGitea(t, GiteaOptions{})
	b.api.HandleFunc("/rate_limit", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "404 page not found", http.StatusNotFound) // as recorded
	})
	b.answer("/user", "user.json", nil)
	b.answer("/repos/acme/builder", "repo.json", nil)
	require.NoError(t, b.client.CheckAccess(context.Background(), giteaRepo))
	private, err := b.client.RepositoryPrivate(context.Background(), giteaRepo)
	require.NoError(t, err)
	require.False(t, private)
}

func TestGiteaDoesNotLabelAssets(t *testing.T) {
	t.Parallel()
	var forge workflows.Forge = setupGitea(t, GiteaOptions{}).client
	l, ok := forge.(workflows.AssetLabeller)
	require.True(t, ok)
	require.False(t, l.LabelsAssets())
	_, ok = workflows.Forge(&Client{}).(workflows.AssetLabeller)
	require.False(t, ok, "the GitHub client keeps checking labels")
}

// giteaDelivery is one recorded webhook delivery.
type giteaDelivery struct {
	file, event, id, signature string
	body                       []byte
}

func recordedGiteaDeliveries(t *testing.T) []giteaDelivery {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "gitea", "hooks", "*.json"))
	require.NoError(t, err)
	sort.Strings(files)
	var out []giteaDelivery
	for _, f := range files {
		body, err := os.ReadFile(f)
		require.NoError(t, err)
		headers, err := os.ReadFile(strings.TrimSuffix(f, ".json") + ".headers.txt")
		require.NoError(t, err)
		d := giteaDelivery{file: filepath.Base(f), body: body}
		for _, line := range strings.Split(string(headers), "\n") {
			k, v, _ := strings.Cut(line, ": ")
			switch k {
			case "X-GitHub-Event":
				d.event = v
			case "X-GitHub-Delivery":
				d.id = v
			case "X-Hub-Signature-256":
				d.signature = v
			}
		}
		out = append(out, d)
	}
	require.Len(t, out, 21)
	return out
}

func TestParseGiteaWebhookRecordedDeliveries(t *testing.T) {
	t.Parallel()
	secret, err := os.ReadFile(filepath.Join("testdata", "gitea", "hooks", "secret.txt"))
	require.NoError(t, err)
	completed := map[int64][]string{} // job id -> delivery ids of its completed events
	for _, d := range recordedGiteaDeliveries(t) {
		require.NoError(t, ValidateWebhook(d.signature, d.body, secret), d.file)
		ev, err := ParseGiteaWebhook(d.event, d.body)
		require.NoError(t, err, d.file)
		require.Equal(t, giteaRepo, ev.Repo, d.file)
		switch d.event {
		case "workflow_run":
			var raw struct {
				Workflow struct {
					ID any `json:"id"`
				} `json:"workflow"`
			}
			require.NoError(t, json.Unmarshal(d.body, &raw))
			require.IsType(t, "", raw.Workflow.ID, "%s: Gitea's workflow.id is the file name", d.file)
			require.NotNil(t, ev.Run, d.file)
			require.Contains(t, ev.Run.DisplayTitle, "deskforge build_", d.file)
			if ev.Action == "completed" {
				require.Equal(t, "completed", ev.Run.Status, d.file)
				require.NotEmpty(t, ev.Run.Conclusion, d.file)
				require.False(t, ev.Run.UpdatedAt.IsZero(), "%s: completed_at stands for updated_at", d.file)
			} else {
				require.Empty(t, ev.Run.Conclusion, d.file)
			}
			// GitHub's parser reads the same payload, without the times.
			plain, err := ParseWebhook(d.event, d.body)
			require.NoError(t, err)
			require.Equal(t, ev.Run.ID, plain.Run.ID)
		case "workflow_job":
			require.NotNil(t, ev.Job, d.file)
			for i, s := range ev.Job.Steps {
				require.Equal(t, i+1, s.Number, "%s: steps numbered from 1", d.file)
			}
			if ev.Action == "completed" {
				completed[ev.Job.ID] = append(completed[ev.Job.ID], d.id)
			}
		default:
			t.Fatalf("%s: unexpected event %s", d.file, d.event)
		}
	}
	// Recorded: the cancelled job (4) was delivered completed twice, under
	// two delivery ids (so the receiver's dedupe does not catch it: the
	// engine's transitions must be idempotent).
	require.Len(t, completed[4], 2)
	require.NotEqual(t, completed[4][0], completed[4][1])
	require.Len(t, completed[1], 1)
}

// TestGiteaTemplateInstallOperations covers what `deskforge template
// install` asks of Gitea where its API differs from GitHub's (recorded on
// acme/third after an install opened pull request #1).
func TestGiteaTemplateInstallOperations(t *testing.T) {
	t.Parallel()
	b := setupGitea(t, GiteaOptions{})
	b.api.HandleFunc("GET /repos/acme/third/branches/{branch...}", func(w http.ResponseWriter, r *http.Request) {
		testGiteaAuth(t, r)
		if r.PathValue("branch") != "main" {
			giteaNotFound(w, "not found")
			return
		}
		writeJSON(w, http.StatusOK, b.recorded("branch-main.json"))
	})
	var created map[string]string
	b.api.HandleFunc("POST /repos/acme/third/branches", func(w http.ResponseWriter, r *http.Request) {
		testGiteaAuth(t, r)
		require.NoError(t, json.NewDecoder(r.Body).Decode(&created))
		if created["new_branch_name"] == "exists" {
			writeJSON(w, http.StatusConflict, `{"message":"The branch already exists.","url":"http://127.0.0.1:3014/api/swagger"}`)
			return
		}
		writeJSON(w, http.StatusCreated, b.recorded("branch-created.json"))
	})
	var put map[string]string
	b.api.HandleFunc("POST /repos/acme/third/contents/.github/workflows/rec.yml", func(w http.ResponseWriter, r *http.Request) {
		testGiteaAuth(t, r)
		require.NoError(t, json.NewDecoder(r.Body).Decode(&put))
		writeJSON(w, http.StatusCreated, b.recorded("contents-created.json"))
	})
	b.answer("/repos/acme/third/pulls", "pulls-open.json", func(r *http.Request) {
		testQuery(t, r, map[string]string{"state": "open", "limit": "50"})
	})
	ctx := context.Background()

	sha, err := b.client.BranchSHA(ctx, "acme/third", "main")
	require.NoError(t, err)
	require.Equal(t, "b9518aee69769539df12ee28f167cfb61ee1ceda", sha)
	_, err = b.client.BranchSHA(ctx, "acme/third", "deskforge/install-x")
	require.ErrorIs(t, err, workflows.ErrNotFound)

	require.NoError(t, b.client.CreateBranch(ctx, "acme/third", "deskforge/rec", sha))
	require.Equal(t, map[string]string{"new_branch_name": "deskforge/rec", "old_ref_name": sha}, created)
	err = b.client.CreateBranch(ctx, "acme/third", "exists", sha)
	var invalid *workflows.InvalidError
	require.ErrorAs(t, err, &invalid)
	require.Equal(t, http.StatusConflict, invalid.Status)

	commit, err := b.client.PutFile(ctx, "acme/third", PutFileRequest{Path: ".github/workflows/rec.yml", Branch: "deskforge/rec", Message: "add", Content: []byte("name: x\n")})
	require.NoError(t, err)
	require.Equal(t, FileCommit{SHA: "c0841c1fc974d1fbccaeb87bae270eaea0d9d1d6", HTMLURL: b.server.URL + "/acme/third/commit/c0841c1fc974d1fbccaeb87bae270eaea0d9d1d6"}, commit)
	require.Equal(t, map[string]string{"branch": "deskforge/rec", "message": "add", "content": "bmFtZTogeAo="}, put, "a new file is POSTed (Gitea's PUT updates)")

	pr, err := b.client.FindOpenPullRequest(ctx, "acme/third", "deskforge/install-webapp-a57b94b989", "main")
	require.NoError(t, err)
	require.Equal(t, PullRequest{Number: 1, HTMLURL: b.server.URL + "/acme/third/pulls/1", Head: "deskforge/install-webapp-a57b94b989", Base: "main"}, pr)
	_, err = b.client.FindOpenPullRequest(ctx, "acme/third", "deskforge/install-other", "main")
	require.ErrorIs(t, err, workflows.ErrNotFound)
}

func TestGiteaPacesItsReads(t *testing.T) {
	t.Parallel()
	b := setupGitea(t, GiteaOptions{})
	var requests atomic.Int32
	b.api.HandleFunc("/repos/acme/builder/actions/runs/{id}", func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		writeJSON(w, http.StatusOK, b.recorded("run-completed-success.json"))
	})
	// One read a thousand seconds, burst one: the first read goes out, the
	// second would wait past its deadline and fails without calling Gitea.
	b.client.reads.SetLimit(0.001)
	b.client.reads.SetBurst(1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := b.client.GetRun(ctx, giteaRepo, 1)
	require.NoError(t, err)
	_, err = b.client.GetRun(ctx, giteaRepo, 1)
	require.ErrorContains(t, err, "pace gitea reads")
	require.Equal(t, int32(1), requests.Load())
}
