package server

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// healthz answers 200 while the process serves HTTP (liveness).
func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz answers 200 when the database answers within 2 s (readiness), else
// 503 in the error envelope.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.DB().Ping(ctx); err != nil {
		s.logFor(c).WarnContext(ctx, "not ready", "err", err)
		s.renderError(c, &apiError{http.StatusServiceUnavailable, codeUnavailable, "the database is not reachable", ""})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}
