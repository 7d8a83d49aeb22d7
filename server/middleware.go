package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

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
		slog.String("path", c.Request.URL.Path),
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
