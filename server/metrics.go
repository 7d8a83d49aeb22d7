package server

import (
	"time"

	"github.com/gin-gonic/gin"
)

// RequestObserver records answered HTTP requests (the metrics package's
// Metrics.ObserveRequest): route is the router's pattern ("" when no route
// matched), so that ids do not multiply the series.
type RequestObserver interface {
	ObserveRequest(route, method string, status int, elapsed time.Duration)
}

// observeRequests tells the observer of every request once it is answered.
func (s *Server) observeRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	s.requests.ObserveRequest(c.FullPath(), c.Request.Method, c.Writer.Status(), time.Since(start))
}

// WebhookObserver counts GitHub webhook deliveries (the metrics package's
// Metrics.WebhookReceived) by event ("ping", "workflow_run",
// "workflow_job" or "other") and result ("accepted", "duplicate",
// "ignored", "pong", "rejected" for a 4xx answer, "error" for a 5xx).
type WebhookObserver interface {
	WebhookReceived(event, result string)
}
