package server

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/deskforge/deskforge/models"
)

const (
	headerRequestID = "X-Request-Id"
	ctxRequestID    = "deskforge.request_id"
	ctxCaller       = "deskforge.caller"
)

// requestIDRe is what an incoming X-Request-Id must look like to be reused;
// anything else is replaced by a fresh id.
var requestIDRe = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestID reuses a well-formed X-Request-Id or generates one, and echoes
// it on the response.
func (s *Server) requestID(c *gin.Context) {
	id := c.GetHeader(headerRequestID)
	if !requestIDRe.MatchString(id) {
		id = models.NewID("req")
	}
	c.Set(ctxRequestID, id)
	c.Header(headerRequestID, id)
	c.Next()
}

func requestIDOf(c *gin.Context) string { return c.GetString(ctxRequestID) }

// logFor returns the server's logger with the request's id.
func (s *Server) logFor(c *gin.Context) *slog.Logger {
	return s.log.With("request_id", requestIDOf(c))
}

// accessLog logs every request once it is answered. It never logs headers
// (API keys travel in Authorization).
func (s *Server) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	status := c.Writer.Status()
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	ctx := c.Request.Context()
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", requestIDOf(c)),
		slog.String("method", c.Request.Method),
		slog.String("path", clip(c.Request.URL.Path)),
		slog.String("route", c.FullPath()),
		slog.Int("status", status),
		slog.Int("bytes", c.Writer.Size()),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		slog.String("client_ip", c.ClientIP()),
	}
	if k, ok := c.Get(ctxCaller); ok {
		attrs = append(attrs, slog.String("key_id", k.(models.APIKey).ID))
	}
	s.log.LogAttrs(ctx, level, "request", attrs...)
}

// recoverPanic turns a panic into a 500 in the envelope and logs its stack.
// http.ErrAbortHandler (a stream that must be cut) is passed on to net/http.
func (s *Server) recoverPanic(c *gin.Context) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if r == http.ErrAbortHandler {
			panic(r)
		}
		s.logFor(c).ErrorContext(c.Request.Context(), "panic serving request",
			"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		if c.Writer.Written() {
			panic(http.ErrAbortHandler)
		}
		s.renderError(c, &apiError{http.StatusInternalServerError, codeInternal,
			"internal server error; quote request id " + requestIDOf(c) + " when reporting it", ""})
	}()
	c.Next()
}

// limitBody caps request bodies at the server's limit: 413 at once when
// Content-Length says so, otherwise when the reader passes the limit.
func (s *Server) limitBody(c *gin.Context) {
	if c.Request.ContentLength > s.maxBodyBytes {
		s.renderError(c, &http.MaxBytesError{Limit: s.maxBodyBytes})
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.maxBodyBytes)
	c.Next()
}

// Request size limits checked by limitRequestSize: above them the answer is
// 414 or 431 in the error envelope. (net/http's own limit, MaxHeaderBytes,
// is larger, so only absurd requests get its plain-text 431.)
const (
	maxURLBytes    = 8 << 10
	maxHeaderBytes = 64 << 10
)

// Error codes of limitRequestSize and limitBodyReadTime.
const (
	codeURITooLong      = "uri_too_long"
	codeHeadersTooLarge = "headers_too_large"
	codeRequestTimeout  = "request_timeout"
)

// limitRequestSize answers 414 for a URL longer than maxURLBytes and 431
// for headers larger than maxHeaderBytes in all, before any other work.
func (s *Server) limitRequestSize(c *gin.Context) {
	if n := len(c.Request.RequestURI); n > maxURLBytes {
		s.renderError(c, &apiError{http.StatusRequestURITooLong, codeURITooLong,
			fmt.Sprintf("the URL is %d bytes long; at most %d are accepted", n, maxURLBytes), ""})
		return
	}
	size := 0
	for name, values := range c.Request.Header {
		for _, v := range values {
			size += len(name) + len(v) + 4 // ": " and CRLF
		}
	}
	if size > maxHeaderBytes {
		s.renderError(c, &apiError{http.StatusRequestHeaderFieldsTooLarge, codeHeadersTooLarge,
			fmt.Sprintf("the request headers are %d bytes; at most %d are accepted", size, maxHeaderBytes), ""})
		return
	}
	c.Next()
}

// refuseBadText answers 404 for a path and 400 for a query parameter that
// is not valid UTF-8 or holds a NUL byte: no resource has such a name, and
// the database would refuse such a value (PostgreSQL with SQLSTATE 22021).
func (s *Server) refuseBadText(c *gin.Context) {
	if !isCleanText(c.Request.URL.Path) {
		s.renderError(c, &apiError{http.StatusNotFound, codeNotFound,
			"no resource has this path: it is not valid UTF-8 or holds a NUL byte", ""})
		return
	}
	for name, values := range c.Request.URL.Query() {
		if !isCleanText(name) {
			s.renderError(c, invalid("query", "a query parameter name is not valid UTF-8 or holds a NUL byte"))
			return
		}
		for _, v := range values {
			if !isCleanText(v) {
				s.renderError(c, invalid(name, "%s must be valid UTF-8 without NUL bytes", name))
				return
			}
		}
	}
	c.Next()
}

// isCleanText reports whether s is valid UTF-8 without NUL bytes: text
// both databases can store.
func isCleanText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// maxLoggedPath is the longest request path written whole to the access
// log and to error messages.
const maxLoggedPath = 256

// clip shortens s to maxLoggedPath bytes (on a rune boundary), saying how
// long it was.
func clip(s string) string {
	if len(s) <= maxLoggedPath {
		return s
	}
	cut := maxLoggedPath
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:cut], len(s))
}

// limitBodyReadTime gives a request body bodyReadTimeout to arrive: past
// it, reads fail, the request answers 408 and net/http closes the
// connection, so a slow sender cannot hold it. Requests without a body get
// no deadline (nothing to read).
func (s *Server) limitBodyReadTime(c *gin.Context) {
	s.setBodyDeadline(c, s.bodyReadTimeout)
	c.Next()
}

// setBodyDeadline sets the connection's read deadline d from now, for the
// body only: it is lifted once the body has been read to its end, so that
// net/http's background read (it watches for the client going away) does
// not cancel a long answer, such as a log stream or a proxied installer.
func (s *Server) setBodyDeadline(c *gin.Context, d time.Duration) {
	body := c.Request.Body
	if body == nil || body == http.NoBody || c.Request.ContentLength == 0 {
		return
	}
	rc := http.NewResponseController(c.Writer)
	if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
		return // not a network connection (an in-process test)
	}
	if db, ok := body.(*deadlineBody); ok {
		body = db.ReadCloser
	}
	c.Request.Body = &deadlineBody{ReadCloser: body, rc: rc}
}

// deadlineBody lifts the connection's read deadline at the body's end.
type deadlineBody struct {
	io.ReadCloser
	rc *http.ResponseController
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// pathIDPrefixes maps the first segment of a route with an :id to the
// prefix of the ids it takes.
var pathIDPrefixes = map[string]string{"projects": "proj", "builds": "build", "apikeys": "key", "webhooks": "wh"}

// checkPathID answers 404 at once when a route's :id does not have the
// shape of its ids (models.IsID): such a request never reaches the
// database, whatever its length or bytes.
func (s *Server) checkPathID(c *gin.Context) {
	id, ok := c.Params.Get("id")
	first, _, _ := strings.Cut(strings.TrimPrefix(c.FullPath(), "/"), "/")
	if prefix, known := pathIDPrefixes[first]; ok && known && !models.IsID(prefix, id) {
		s.renderError(c, &apiError{http.StatusNotFound, codeNotFound,
			fmt.Sprintf("%s does not exist: an id here is %s_ and 26 lowercase letters and digits", clip(c.Request.URL.Path), prefix), ""})
		return
	}
	c.Next()
}
