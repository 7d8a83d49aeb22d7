package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/server"
	"github.com/deskforge/deskforge/workflows"
)

// sseEvent is one Server-Sent Event as a client sees it.
type sseEvent struct {
	ID    string
	Event string
	Data  string
}

// sseStream reads a stream's events in the background.
type sseStream struct {
	events     chan sseEvent
	heartbeats chan struct{}
	closed     chan struct{} // closed when the server ended the stream
	cancel     context.CancelFunc
}

// openStream connects to an event stream with key (as a bearer header,
// or ?token= when it has no "df_" prefix) and headers.
func openStream(t *testing.T, baseURL, path, key string, headers ...string) (*sseStream, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+path, nil)
	require.NoError(t, err)
	if strings.HasPrefix(key, "df_") {
		req.Header.Set("Authorization", "Bearer "+key)
	} else if key != "" {
		q := req.URL.Query()
		q.Set("token", key)
		req.URL.RawQuery = q.Encode()
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		cancel()
		return nil, resp
	}
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	s := &sseStream{events: make(chan sseEvent, 10000), heartbeats: make(chan struct{}, 100), closed: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(s.closed)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Event != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ": heartbeat"):
				select {
				case s.heartbeats <- struct{}{}:
				default:
				}
			case strings.HasPrefix(line, "id: "):
				ev.ID = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				ev.Event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.Data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return s, resp
}

// next returns the next event, failing after a generous wait.
func (s *sseStream) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev := <-s.events:
		return ev
	case <-s.closed:
		select {
		case ev := <-s.events:
			return ev
		default:
		}
		t.Fatal("the stream closed")
	case <-time.After(20 * time.Second):
		t.Fatal("no event within 20 s")
	}
	return sseEvent{}
}

// until collects events up to and including the first for which stop is true.
func (s *sseStream) until(t *testing.T, stop func(sseEvent) bool) []sseEvent {
	t.Helper()
	var out []sseEvent
	for {
		ev := s.next(t)
		out = append(out, ev)
		if stop(ev) {
			return out
		}
	}
}

// requireClosed waits for the server to end the stream, with no further event.
func (s *sseStream) requireClosed(t *testing.T) {
	t.Helper()
	select {
	case <-s.closed:
	case <-time.After(20 * time.Second):
		t.Fatal("the stream did not close")
	}
	require.Empty(t, s.events, "no event after the last one")
}

func statusOf(t *testing.T, ev sseEvent) string {
	t.Helper()
	var b map[string]any
	require.NoError(t, json.Unmarshal([]byte(ev.Data), &b))
	return b["status"].(string)
}

func isStatus(status string) func(sseEvent) bool {
	return func(ev sseEvent) bool {
		return ev.Event == "status" && strings.Contains(ev.Data, `"status":"`+status+`"`)
	}
}

// summarize renders events as "log 2 Job started", "status building",
// "progress 1/3 Set up job".
func summarize(t *testing.T, evs []sseEvent) []string {
	t.Helper()
	var out []string
	for _, ev := range evs {
		switch ev.Event {
		case "log":
			var l struct {
				Seq     int64
				Message string
			}
			require.NoError(t, json.Unmarshal([]byte(ev.Data), &l))
			require.Equal(t, strconv.FormatInt(l.Seq, 10), ev.ID, "a log event's id is its sequence number")
			out = append(out, fmt.Sprintf("log %d %s", l.Seq, l.Message))
		case "status":
			out = append(out, "status "+statusOf(t, ev))
		case "progress":
			var p *struct {
				Step, Steps int
				Name        string
			}
			require.NoError(t, json.Unmarshal([]byte(ev.Data), &p))
			if p == nil {
				out = append(out, "progress null")
			} else {
				out = append(out, fmt.Sprintf("progress %d/%d %s", p.Step, p.Steps, p.Name))
			}
		default:
			out = append(out, ev.Event)
		}
	}
	return out
}

// logSeqs returns the ids of the log events among evs.
func logSeqs(t *testing.T, evs []sseEvent) []int {
	t.Helper()
	var seqs []int
	for _, ev := range evs {
		if ev.Event == "log" {
			n, err := strconv.Atoi(ev.ID)
			require.NoError(t, err)
			seqs = append(seqs, n)
		}
	}
	return seqs
}

// seqRange returns from, from+1, …, to.
func seqRange(from, to int) []int {
	var out []int
	for n := from; n <= to; n++ {
		out = append(out, n)
	}
	return out
}

// buildWriter changes a build as the engine does, in transactions.
type buildWriter struct {
	t     *testing.T
	store *models.Store
	id    string
}

func (w buildWriter) tx(fn func(tx *gorm.DB, b *models.Build) error) {
	w.t.Helper()
	ctx := context.Background()
	require.NoError(w.t, w.store.Tx(ctx, func(tx *gorm.DB) error {
		b, err := w.store.LockBuildTx(ctx, tx, w.id)
		if err != nil {
			return err
		}
		return fn(tx, &b)
	}))
}

func (w buildWriter) transition(to, message string) {
	w.t.Helper()
	w.tx(func(tx *gorm.DB, b *models.Build) error {
		now := time.Now()
		fields := map[string]any{}
		if to == models.StatusBuilding {
			fields["started_at"] = now.UTC()
		} else {
			fields["completed_at"] = now.UTC()
		}
		_, err := models.TransitionBuildTx(context.Background(), tx, b, models.Transition{
			To: to, At: now, Level: models.LevelInfo, Message: message, Fields: fields}, now)
		return err
	})
}

func (w buildWriter) log(messages ...string) {
	w.t.Helper()
	w.tx(func(tx *gorm.DB, b *models.Build) error {
		lines := make([]models.LogLine, len(messages))
		for i, m := range messages {
			lines[i] = models.LogLine{Timestamp: time.Now(), Level: models.LevelInfo, Message: m}
		}
		return models.AppendLogTx(context.Background(), tx, b.ID, lines...)
	})
}

func (w buildWriter) step(n, total int, name string) {
	w.t.Helper()
	w.tx(func(tx *gorm.DB, b *models.Build) error {
		ctx := context.Background()
		if err := models.AppendLogTx(ctx, tx, b.ID, models.LogLine{Timestamp: time.Now(), Level: models.LevelInfo,
			Message: fmt.Sprintf("Step %d/%d started: %s", n, total, name)}); err != nil {
			return err
		}
		return models.UpdateBuildTx(ctx, tx, b.ID, time.Now(), map[string]any{"progress_step": n, "progress_steps": total, "progress_name": name})
	})
}

func TestBuildEventsFollowABuildToItsEnd(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		id := b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": "mac"})
		w := buildWriter{t, b.store, id}
		s, resp := openStream(t, b.url, "/builds/"+id+"/events", b.keyA)
		require.NotNil(t, s, "status %d", resp.StatusCode)
		require.Equal(t, []string{"log 1 Build queued", "progress null", "status queued"}, summarize(t, s.until(t, isStatus("queued"))))

		w.transition(models.StatusBuilding, "Job started on macos-15")
		require.Equal(t, []string{"log 2 Job started on macos-15", "status building"}, summarize(t, s.until(t, isStatus("building"))))
		w.step(1, 2, "Set up job")
		w.step(2, 2, "Build installer")
		w.log("Compiling app", "Linking app")
		w.transition(models.StatusSuccess, "Build completed successfully")
		got := summarize(t, s.until(t, isStatus("success")))
		require.Equal(t, []string{"log 3 Step 1/2 started: Set up job"}, got[:1])
		require.Equal(t, "status success", got[len(got)-1], "the terminal status comes last")
		logs := []string{}
		for _, g := range got {
			if strings.HasPrefix(g, "log ") {
				logs = append(logs, g)
			}
		}
		require.Equal(t, []string{"log 3 Step 1/2 started: Set up job", "log 4 Step 2/2 started: Build installer",
			"log 5 Compiling app", "log 6 Linking app", "log 7 Build completed successfully"}, logs, "every entry once, in order")
		require.Contains(t, got, "progress 2/2 Build installer")
		s.requireClosed(t)

		// The status event is the build exactly as GET /builds/:id shows it.
		last := b.do(t, http.MethodGet, "/builds/"+id, b.keyA, nil).json(t)
		s2, _ := openStream(t, b.url, "/builds/"+id+"/events", b.keyA, "Last-Event-ID", "7")
		evs := s2.until(t, isStatus("success"))
		require.Equal(t, []string{"progress 2/2 Build installer", "status success"}, summarize(t, evs), "nothing to resend but the state")
		var streamed map[string]any
		require.NoError(t, json.Unmarshal([]byte(evs[1].Data), &streamed))
		require.Equal(t, last, streamed)
		s2.requireClosed(t)
	})
}

func TestBuildEventsResumeWithoutGapsOrDuplicates(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		id := b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": "linux"})
		w := buildWriter{t, b.store, id}
		w.transition(models.StatusBuilding, "Job started")
		for i := range 5 {
			w.log(fmt.Sprintf("line %d.a", i), fmt.Sprintf("line %d.b", i))
		}
		s, _ := openStream(t, b.url, "/builds/"+id+"/events", b.keyA)
		var lastID string
		for {
			ev := s.next(t)
			if ev.Event == "log" {
				lastID = ev.ID
			}
			if lastID == "6" {
				break
			}
		}
		s.cancel() // the connection drops mid-stream
		for i := 5; i < 10; i++ {
			w.log(fmt.Sprintf("line %d.a", i), fmt.Sprintf("line %d.b", i))
		}
		w.transition(models.StatusFailed, "Build failed: boom")

		// EventSource reconnects with Last-Event-ID; a fresh page may pass it in the query.
		for _, resume := range [][]string{{"Last-Event-ID", lastID}, nil} {
			path := "/builds/" + id + "/events"
			if resume == nil {
				path += "?lastEventId=" + lastID
			}
			s2, resp := openStream(t, b.url, path, b.keyA, resume...)
			require.NotNil(t, s2, "status %d", resp.StatusCode)
			require.Equal(t, seqRange(7, 23), logSeqs(t, s2.until(t, isStatus("failed"))))
			s2.requireClosed(t)
		}

		r := b.do(t, http.MethodGet, "/builds/"+id+"/events", b.keyA, nil, "Last-Event-ID", "seven")
		require.Equal(t, http.StatusBadRequest, r.status)
		code, field := r.errorOf(t)
		require.Equal(t, "invalid_request", code)
		require.Equal(t, "Last-Event-ID", field)
	})
}

func TestEventStreamAuth(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, models.DialectSQLite)
	idA := b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": "mac"})
	path := "/builds/" + idA + "/events"

	r := b.do(t, http.MethodGet, path, "", nil)
	require.Equal(t, http.StatusUnauthorized, r.status)
	r = b.do(t, http.MethodGet, path, b.keyB, nil)
	require.Equal(t, http.StatusNotFound, r.status, "another project's build")
	r = b.do(t, http.MethodGet, "/projects/"+b.projectA.ID+"/events", b.keyB, nil)
	require.Equal(t, http.StatusNotFound, r.status)

	r = b.do(t, http.MethodPost, "/events/token", b.keyA, nil)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	tok := r.json(t)["token"].(string)
	exp, err := time.Parse(time.RFC3339, r.json(t)["expiresAt"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(5*time.Minute), exp, time.Minute)
	require.NotContains(t, tok, b.keyA)

	s, resp := openStream(t, b.url, path, tok)
	require.NotNil(t, s, "status %d", resp.StatusCode)
	require.Equal(t, "log", s.next(t).Event)
	s.cancel()

	// The token stands for project A's key: B's builds stay invisible.
	idB := b.createBuild(t, b.projectB.ID, b.keyB, map[string]any{"platform": "linux", "version": "1.0.0"})
	_, resp = openStream(t, b.url, "/builds/"+idB+"/events", tok)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	for name, bad := range map[string]string{
		"tampered":  strings.Replace(tok, ".", ".9", 1),
		"garbage":   "nonsense",
		"other key": strings.Replace(tok, strings.Split(tok, ".")[0], "key_01hzzzzzzzzzzzzzzzzzzzzzzz", 1),
	} {
		r := b.do(t, http.MethodGet, path+"?token="+url.QueryEscape(bad), "", nil)
		require.Equal(t, http.StatusUnauthorized, r.status, name)
		code, field := r.errorOf(t)
		require.Equal(t, "unauthorized", code, name)
		require.Equal(t, "token", field, name)
	}
}

func TestProjectEventsSendEachStatusChange(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		s, resp := openStream(t, b.url, "/projects/"+b.projectA.ID+"/events", b.adminKey)
		require.NotNil(t, s, "status %d", resp.StatusCode)
		id := b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": "mac"})
		first := s.next(t)
		require.Equal(t, "status queued", summarize(t, []sseEvent{first})[0])
		require.Contains(t, first.Data, id)

		w := buildWriter{t, b.store, id}
		w.log("not a status change")
		w.transition(models.StatusBuilding, "Job started")
		building := s.until(t, isStatus("building"))
		require.Len(t, building, 1)
		w.transition(models.StatusSuccess, "done")
		success := s.until(t, isStatus("success"))
		require.Len(t, success, 1)
		s.cancel()

		// Resuming after "queued" replays the later changes, once each.
		s2, _ := openStream(t, b.url, "/projects/"+b.projectA.ID+"/events", b.keyA, "Last-Event-ID", first.ID)
		replayed := []sseEvent{s2.next(t), s2.next(t)}
		require.Equal(t, []string{"status building", "status success"}, summarize(t, replayed))
		require.Equal(t, building[0].ID, replayed[0].ID)
		require.Equal(t, success[0].ID, replayed[1].ID)
		require.True(t, first.ID < building[0].ID && building[0].ID < success[0].ID, "ids grow")
		select {
		case ev := <-s2.events:
			t.Fatalf("unexpected event %+v", ev)
		case <-time.After(200 * time.Millisecond):
		}
	})
}

func TestHeartbeats(t *testing.T) {
	t.Parallel()
	b := startAPI(t, models.DialectSQLite, nil, workflows.Options{}, server.Options{EventHeartbeat: 20 * time.Millisecond})
	id := b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": "mac"})
	s, _ := openStream(t, b.url, "/builds/"+id+"/events", b.keyA)
	for range 3 {
		select {
		case <-s.heartbeats:
		case <-time.After(20 * time.Second):
			t.Fatal("no heartbeat")
		}
	}
}

// The write timeout is generous: a reading client on a loaded machine (CI
// under -race) must not be taken for a stuck one; the stuck one is dropped
// 3 s after its socket buffers fill.
func TestClientThatNeverReadsDoesNotSlowTheBuild(t *testing.T) {
	t.Parallel()
	const writeTimeout = 3 * time.Second
	b := startAPI(t, models.DialectSQLite, nil, workflows.Options{}, server.Options{EventWriteTimeout: writeTimeout})
	id := b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": "mac"})
	w := buildWriter{t, b.store, id}

	// A client that sends its request and then never reads.
	u, err := url.Parse(b.url)
	require.NoError(t, err)
	stuck, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	defer stuck.Close()
	// A small receive buffer (no autotuning): the kernel cannot absorb the
	// megabytes below on the client's behalf, whatever the machine's load.
	require.NoError(t, stuck.(*net.TCPConn).SetReadBuffer(16<<10))
	_, err = fmt.Fprintf(stuck, "GET /builds/%s/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", id, u.Host, b.keyA)
	require.NoError(t, err)

	// Megabytes of log, far more than the socket buffers hold, written
	// while the client does not read: the writes never wait for it (were
	// they held up, this would hang until the test binary's timeout).
	w.transition(models.StatusBuilding, "Job started")
	line := strings.Repeat("x", 1000)
	batch := make([]string, 1000)
	for i := range batch {
		batch[i] = line
	}
	for range 8 {
		w.log(batch...)
	}
	w.transition(models.StatusSuccess, "Build completed successfully")

	// A reading client gets the whole log; the stuck one was dropped.
	s, _ := openStream(t, b.url, "/builds/"+id+"/events", b.keyA)
	n := 0
	for _, ev := range s.until(t, isStatus("success")) {
		if ev.Event == "log" {
			n++
		}
	}
	require.Equal(t, 8003, n)
	// The stuck stream's write has been blocked since its buffers filled,
	// long before the log ended; once the write timeout has passed since
	// then, the server has dropped it, and reading now cannot revive it.
	time.Sleep(writeTimeout + time.Second)
	require.NoError(t, stuck.SetReadDeadline(time.Now().Add(30*time.Second)))
	got, err := io.Copy(io.Discard, stuck)
	require.NoError(t, err, "the server closed the stuck stream (EOF), after %d bytes", got)
	require.Less(t, got, int64(8000*1000), "it was cut off, not served in full")
}

func TestEventsReachClientsOfAnotherReplica(t *testing.T) {
	t.Parallel()
	dbA, dbB := dbtest.OpenReplicas(t, models.DialectPostgres)
	start := func(db *models.DB) *httptest.Server {
		db.Outbox().SetRenderer(server.EventRenderer(testPublicURL))
		store := models.NewStore(db)
		engine := workflows.NewEngine(store, nil, nil, nil, workflows.Options{PublicURL: testPublicURL, BuilderRepo: "deskforge/builder"})
		ts := httptest.NewServer(contractHandler(t, server.New(server.Options{Store: store, Engine: engine, PublicURL: testPublicURL}).Handler()))
		t.Cleanup(ts.Close)
		return ts
	}
	a, bSrv := start(dbA), start(dbB)
	storeA := models.NewStore(dbA)
	ctx := context.Background()
	_, key, err := storeA.CreateAPIKey(ctx, models.NewAPIKeyParams{Name: "admin", Role: models.RoleAdmin})
	require.NoError(t, err)
	p := models.Project{Name: "App", URL: "https://example.com", Version: "1.0.0", Platforms: "mac"}
	require.NoError(t, storeA.CreateProject(ctx, &p))
	bundle := &apiBundle{ctx: ctx, url: a.URL, client: a.Client()}
	id := bundle.createBuild(t, p.ID, key, map[string]any{"platform": "mac"})

	// Token issued by A, used on B: the secret is shared through the database.
	r := bundle.do(t, http.MethodPost, "/events/token", key, nil)
	require.Equal(t, http.StatusCreated, r.status)
	s, resp := openStream(t, bSrv.URL, "/builds/"+id+"/events", r.json(t)["token"].(string))
	require.NotNil(t, s, "status %d", resp.StatusCode)
	ps, _ := openStream(t, bSrv.URL, "/projects/"+p.ID+"/events", key)
	s.until(t, isStatus("queued"))

	// Changes committed through A reach B's clients.
	w := buildWriter{t, storeA, id}
	w.transition(models.StatusBuilding, "Job started")
	require.Equal(t, []string{"log 2 Job started", "status building"}, summarize(t, s.until(t, isStatus("building"))))
	require.Equal(t, []string{"status building"}, summarize(t, ps.until(t, isStatus("building"))))
	w.log("compiling")
	w.transition(models.StatusSuccess, "Build completed successfully")
	require.Equal(t, []string{"log 3 compiling", "log 4 Build completed successfully", "status success"}, summarize(t, s.until(t, isStatus("success"))))
	s.requireClosed(t)
}

func TestStreamsOfOneBuildShareItsReadsAndEachGetsEverything(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, b *apiBundle) {
		id := b.createBuild(t, b.projectA.ID, b.keyA, map[string]any{"platform": "mac"})
		w := buildWriter{t, b.store, id}
		w.transition(models.StatusBuilding, "Job started")
		var streams []*sseStream
		for range 4 {
			s, _ := openStream(t, b.url, "/builds/"+id+"/events", b.keyA)
			streams = append(streams, s)
		}
		for i := range 30 {
			w.log(fmt.Sprintf("line %d", i))
			if i == 15 { // one more joins midway, from where another client left off
				s, _ := openStream(t, b.url, "/builds/"+id+"/events", b.keyA, "Last-Event-ID", "5")
				streams = append(streams, s)
			}
		}
		w.transition(models.StatusSuccess, "done")
		for i, s := range streams {
			first := 1
			if i == 4 {
				first = 6
			}
			require.Equal(t, seqRange(first, 33), logSeqs(t, s.until(t, isStatus("success"))), "stream %d", i)
			s.requireClosed(t)
		}
	})
}
