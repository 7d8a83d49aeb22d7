package server

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/deskforge/deskforge/models"
)

// Event streams (Server-Sent Events).
//
// GET /builds/:id/events sends `log` events (one per log entry, the entry's
// sequence number as the SSE id), `status` events (the build's JSON as GET
// /builds/:id answers it, whenever it changes) and `progress` events (the
// step running), and closes after the terminal status. A client resumes with
// Last-Event-ID (or ?lastEventId=): log entries continue after that number,
// status and progress are sent again as they are now. GET /projects/:id/events
// sends a `status` event when a build of the project changes status (the SSE
// id is that transition's number), and never closes on its own.
//
// Streams read from the database, not from memory: a change wakes them
// through the ChangeFeed (PostgreSQL NOTIFY across replicas, in-process on
// SQLite) and each reads what is new since what it sent. A slow client
// therefore only delays its own stream: nothing is queued for it but what
// the socket holds, and a client that has not taken a batch within
// Options.EventWriteTimeout is disconnected (it resumes by id). Writers of
// builds never wait for streams: a wake-up is a non-blocking send.

// Defaults of the event stream options.
const (
	DefaultEventHeartbeat    = 15 * time.Second
	DefaultEventWriteTimeout = 30 * time.Second
)

// eventTokenTTL is how long a token from POST /events/token is valid.
const eventTokenTTL = 5 * time.Minute

// eventTokenSetting is the settings key of the secret signing event tokens,
// shared by every replica.
const eventTokenSetting = "events.token_secret"

// logEventChunk bounds the log entries read per query.
const logEventChunk = 500

// Subscriber wakes event streams when a build (or a build of a project)
// may have changed; models.Outbox implements it. The channel receives at
// least one value after each change committed after the subscription.
type Subscriber interface {
	Subscribe(f models.EventFilter) (<-chan struct{}, func())
}

// projectLookback is how far back a project stream re-reads events: on
// PostgreSQL, transactions about different builds may commit out of event
// id order (models.ListEvents).
const projectLookback = 5 * time.Second

// eventStreams holds the event streams' settings and the token secret.
type eventStreams struct {
	changes      Subscriber
	feeds        *buildFeeds
	heartbeat    time.Duration
	writeTimeout time.Duration

	mu     sync.Mutex
	secret []byte // loaded on first use unless configured
}

func newEventStreams(opts Options) *eventStreams {
	changes := opts.Changes
	if changes == nil && opts.Store != nil {
		changes = opts.Store.DB().Outbox()
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &eventStreams{
		changes:      changes,
		feeds:        &buildFeeds{store: opts.Store, changes: changes, log: log, feeds: map[string]*buildFeed{}},
		heartbeat:    cmp.Or(opts.EventHeartbeat, DefaultEventHeartbeat),
		writeTimeout: cmp.Or(opts.EventWriteTimeout, DefaultEventWriteTimeout),
		secret:       opts.EventTokenSecret,
	}
}

// registerEventRoutes adds the event streams and POST /events/token.
func (s *Server) registerEventRoutes(r *gin.Engine, api *gin.RouterGroup) {
	api.POST("/events/token", s.createEventToken)
	streams := r.Group("/", s.authenticateStream, s.checkPathID, s.rateLimitByKey, s.loadSigningKey)
	getAndHead(streams, "/builds/:id/events", s.buildEvents)
	getAndHead(streams, "/projects/:id/events", s.projectEvents)
}

// eventTokenResponse is POST /events/token's answer.
type eventTokenResponse struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expiresAt"`
}

// createEventToken answers a short-lived token standing for the caller's
// key in ?token= of an event stream (browsers' EventSource cannot send
// headers).
func (s *Server) createEventToken(c *gin.Context) {
	exp := time.Now().Add(eventTokenTTL).Truncate(time.Second)
	tok, err := s.signEventToken(c.Request.Context(), callerOf(c).ID, exp)
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusCreated, eventTokenResponse{Token: tok, ExpiresAt: formatTime(exp)})
}

// tokenSecret returns the secret of event tokens: the configured one, else
// the one stored in the database (created by the first replica needing it).
func (s *Server) tokenSecret(ctx context.Context) ([]byte, error) {
	e := s.events
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.secret != nil {
		return e.secret, nil
	}
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("event token secret: %w", err)
	}
	stored, err := s.store.SettingOrCreate(ctx, eventTokenSetting, hex.EncodeToString(fresh), time.Now())
	if err != nil {
		return nil, fmt.Errorf("event token secret: %w", err)
	}
	secret, err := hex.DecodeString(stored)
	if err != nil || len(secret) == 0 {
		return nil, fmt.Errorf("event token secret: the setting %s is not hex", eventTokenSetting)
	}
	e.secret = secret
	return secret, nil
}

// signEventToken returns "<key id>.<expiry unix>.<HMAC-SHA256 of both>".
func (s *Server) signEventToken(ctx context.Context, keyID string, exp time.Time) (string, error) {
	secret, err := s.tokenSecret(ctx)
	if err != nil {
		return "", err
	}
	payload := keyID + "." + strconv.FormatInt(exp.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(payload))
	return payload + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)), nil
}

// errBadEventToken is why a ?token= was refused.
var errBadEventToken = errors.New("the event token is invalid or expired: get a new one with POST /events/token")

// verifyEventToken returns the key an event token stands for, if the token
// is authentic, unexpired, and the key not revoked.
func (s *Server) verifyEventToken(ctx context.Context, tok string) (models.APIKey, error) {
	keyID, rest, ok1 := strings.Cut(tok, ".")
	expRaw, _, ok2 := strings.Cut(rest, ".")
	exp, err := strconv.ParseInt(expRaw, 10, 64)
	if !ok1 || !ok2 || err != nil || time.Now().After(time.Unix(exp, 0)) {
		return models.APIKey{}, errBadEventToken
	}
	want, err := s.signEventToken(ctx, keyID, time.Unix(exp, 0))
	if err != nil {
		return models.APIKey{}, err
	}
	if !hmac.Equal([]byte(want), []byte(tok)) {
		return models.APIKey{}, errBadEventToken
	}
	k, err := s.store.GetAPIKey(ctx, keyID)
	if errors.Is(err, models.ErrNotFound) || (err == nil && k.RevokedAt != nil) {
		return models.APIKey{}, errBadEventToken
	}
	return k, err
}

// authenticateStream accepts the Authorization header, or an event token in
// ?token=.
func (s *Server) authenticateStream(c *gin.Context) {
	tok := c.Query("token")
	if tok == "" {
		s.authenticate(c)
		return
	}
	k, err := s.verifyEventToken(c.Request.Context(), tok)
	if errors.Is(err, errBadEventToken) {
		s.renderError(c, &apiError{http.StatusUnauthorized, codeUnauthorized, err.Error(), "token"})
		return
	}
	if err != nil {
		s.renderError(c, fmt.Errorf("authenticate: %w", err))
		return
	}
	c.Set(ctxCaller, k)
	c.Next()
}

// lastEventID reads Last-Event-ID (or ?lastEventId=): 0 when absent.
func lastEventID(c *gin.Context) (int64, error) {
	raw := cmp.Or(c.GetHeader("Last-Event-ID"), c.Query("lastEventId"))
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 {
		return 0, invalid("Last-Event-ID", "Last-Event-ID must be the id of an event of this stream (an integer ≥ 0)")
	}
	return n, nil
}

// sseWriter batches events and writes them to the client with a deadline.
type sseWriter struct {
	w       gin.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	buf     bytes.Buffer
}

func startSSE(c *gin.Context, timeout time.Duration) *sseWriter {
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	c.Status(http.StatusOK)
	w := &sseWriter{w: c.Writer, rc: http.NewResponseController(c.Writer), timeout: timeout}
	w.buf.WriteString("retry: 2000\n\n")
	return w
}

// event adds an event; id may be "" (the client's last id is kept).
func (w *sseWriter) event(id, name string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", name, err)
	}
	if id != "" {
		w.buf.WriteString("id: " + id + "\n")
	}
	w.buf.WriteString("event: " + name + "\ndata: ")
	w.buf.Write(raw)
	w.buf.WriteString("\n\n")
	return nil
}

// flush sends what was added. It fails when the client is gone or has not
// taken the batch within the write timeout.
func (w *sseWriter) flush() error {
	if w.buf.Len() == 0 {
		return nil
	}
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	if _, err := w.w.Write(w.buf.Bytes()); err != nil {
		return err
	}
	w.buf.Reset()
	return w.rc.Flush()
}

// logEvent adds a `log` event for e.
func (w *sseWriter) logEvent(e models.BuildLogEntry) error {
	return w.event(strconv.FormatInt(e.Seq, 10), "log", logEventData{
		Seq: e.Seq, Timestamp: formatTime(e.Timestamp), Level: e.Level, Message: e.Message,
	})
}

// logEventData is a `log` event.
type logEventData struct {
	Seq       int64  `json:"seq"`
	Timestamp string `json:"timestamp"`
	Level     string `json:"level"`
	Message   string `json:"message"`
}

// buildStream is what a build's stream has sent.
type buildStream struct {
	logSeq   int64
	status   []byte // the last status sent, without progress
	progress []byte
}

func (s *Server) buildEvents(c *gin.Context) {
	ctx := c.Request.Context()
	id := c.Param("id")
	after, err := lastEventID(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	// Join before the first read: no change can fall between them.
	updates, leave := s.events.feeds.join(id)
	defer leave()
	b, err := s.store.GetBuildSummary(ctx, id)
	if err == nil && !canSeeProject(c, b.ProjectID) {
		err = fmt.Errorf("build %s: %w", id, models.ErrNotFound)
	}
	if err != nil {
		s.renderError(c, err)
		return
	}
	w := startSSE(c, s.events.writeTimeout)
	if c.Request.Method == http.MethodHead {
		return // the stream's headers, no events
	}
	st := buildStream{logSeq: after}
	heartbeat := time.NewTicker(s.events.heartbeat)
	defer heartbeat.Stop()
	done, err := s.sendBuildUpdates(ctx, w, b, &st)
	for err == nil && !done {
		select {
		case <-ctx.Done():
			return
		case <-heartbeat.C:
			w.buf.WriteString(": heartbeat\n\n")
			err = w.flush()
		case u, ok := <-updates:
			if !ok {
				err = errors.New("the client fell behind: closed so that it resumes by Last-Event-ID")
				break
			}
			done, err = s.sendUpdate(ctx, w, u, &st)
		}
	}
	if err != nil {
		s.logFor(c).DebugContext(ctx, "build event stream closed", "build_id", id, "err", err)
	}
}

// sendUpdate sends what a feed update brings that the stream has not sent,
// reading the log from the database only if the stream is behind the
// update's entries.
func (s *Server) sendUpdate(ctx context.Context, w *sseWriter, u *buildUpdate, st *buildStream) (bool, error) {
	if st.logSeq < u.build.LogSeq && (len(u.entries) == 0 || u.entries[0].Seq > st.logSeq+1) {
		return s.sendBuildUpdates(ctx, w, u.build, st)
	}
	for _, e := range u.entries {
		if e.Seq > st.logSeq {
			if err := w.logEvent(e); err != nil {
				return false, err
			}
			st.logSeq = e.Seq
		}
	}
	return s.sendState(w, u.build, st)
}

// sendBuildUpdates sends b's log entries not sent yet (up to b.LogSeq, so
// that a status follows the entry recording it), then its status and
// progress if they changed. It reports whether the stream is complete.
func (s *Server) sendBuildUpdates(ctx context.Context, w *sseWriter, b models.Build, st *buildStream) (bool, error) {
	for st.logSeq < b.LogSeq {
		entries, err := s.store.ReadLog(ctx, models.LogQuery{BuildID: b.ID, After: st.logSeq, Limit: logEventChunk})
		if err != nil {
			return false, err
		}
		if len(entries) == 0 {
			break
		}
		for _, e := range entries {
			if e.Seq > b.LogSeq {
				break
			}
			if err := w.logEvent(e); err != nil {
				return false, err
			}
			st.logSeq = e.Seq
		}
		if err := w.flush(); err != nil {
			return false, err
		}
	}
	return s.sendState(w, b, st)
}

// sendState sends b's status and progress if they changed, and reports
// whether the stream is complete (final status, whole log sent).
func (s *Server) sendState(w *sseWriter, b models.Build, st *buildStream) (bool, error) {
	r := s.buildJSON(b)
	progress, _ := json.Marshal(r.Progress)
	withoutProgress := r
	withoutProgress.Progress = nil
	status, _ := json.Marshal(withoutProgress)
	if !bytes.Equal(progress, st.progress) {
		if err := w.event("", "progress", r.Progress); err != nil {
			return false, err
		}
		st.progress = progress
	}
	if !bytes.Equal(status, st.status) {
		if err := w.event("", "status", r); err != nil {
			return false, err
		}
		st.status = status
	}
	if err := w.flush(); err != nil {
		return false, err
	}
	return models.IsTerminal(b.Status) && st.logSeq >= b.LogSeq, nil
}

func (s *Server) projectEvents(c *gin.Context) {
	ctx := c.Request.Context()
	id := c.Param("id")
	after := cmp.Or(c.GetHeader("Last-Event-ID"), c.Query("lastEventId"))
	if after != "" && !strings.HasPrefix(after, "evt_") {
		s.renderError(c, invalid("Last-Event-ID", "Last-Event-ID must be the id of an event of this stream (evt_…)"))
		return
	}
	wake, stop := s.events.changes.Subscribe(models.EventFilter{ProjectID: id})
	defer stop()
	if err := s.requireProjectForCaller(c, id); err != nil {
		s.renderError(c, err)
		return
	}
	if after == "" {
		after = models.EventCursorAt(time.Now())
	}
	st := projectStream{last: after, floor: after, seen: map[string]time.Time{}}
	w := startSSE(c, s.events.writeTimeout)
	if c.Request.Method == http.MethodHead {
		return // the stream's headers, no events
	}
	heartbeat := time.NewTicker(s.events.heartbeat)
	defer heartbeat.Stop()
	for {
		err := s.sendProjectUpdates(ctx, w, id, &st)
		if err == nil {
			err = w.flush()
		}
		if err != nil {
			s.logFor(c).DebugContext(ctx, "project event stream closed", "project_id", id, "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-heartbeat.C:
			w.buf.WriteString(": heartbeat\n\n")
			if w.flush() != nil {
				return
			}
		case <-wake:
		}
	}
}

// projectStream is what a project's stream has sent: the last event id,
// the ids sent lately (within twice projectLookback), and the floor below
// which nothing is sent (where the client started or resumed).
type projectStream struct {
	last  string
	floor string
	seen  map[string]time.Time
}

// sendProjectUpdates sends a status event (the event's build JSON, the
// event id as SSE id) for each build event of the project not sent yet,
// re-reading projectLookback back for events that committed late.
func (s *Server) sendProjectUpdates(ctx context.Context, w *sseWriter, projectID string, st *projectStream) error {
	now := time.Now()
	after := min(st.last, models.EventCursorAt(now.Add(-projectLookback)))
	for sent, at := range st.seen {
		if now.Sub(at) > 2*projectLookback {
			delete(st.seen, sent)
		}
	}
	for {
		evs, err := s.store.ListEvents(ctx, models.EventFilter{ProjectID: projectID}, after, logEventChunk)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			after = ev.ID
			if _, dup := st.seen[ev.ID]; dup || ev.ResourceKind != models.ResourceBuild || ev.ID <= st.floor {
				continue
			}
			if err := w.event(ev.ID, "status", json.RawMessage(ev.Data)); err != nil {
				return err
			}
			st.seen[ev.ID] = now
			st.last = max(st.last, ev.ID)
		}
		if len(evs) < logEventChunk {
			return nil
		}
	}
}
