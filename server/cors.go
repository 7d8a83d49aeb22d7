package server

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
)

// CORS answers of the API: what a browser app may send and read.
const (
	corsAllowMethods  = "GET, HEAD, POST, PATCH, DELETE"
	corsAllowHeaders  = "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, X-Request-Id"
	corsExposeHeaders = "Location, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, X-Request-Id"
	corsMaxAge        = "600"
)

// cors lets the browser apps of Options.CORSOrigins call the API. Keys
// travel in Authorization, never in cookies, so credentials are not
// allowed and "*" is safe. A preflight (OPTIONS with
// Access-Control-Request-Method) from an allowed origin answers 204 with the
// allowed methods and headers; from any other origin 403 forbidden. Simple
// requests from other origins are served without CORS headers, so the
// browser keeps their answer from the page.
func (s *Server) cors(c *gin.Context) {
	origin := c.GetHeader("Origin")
	if origin == "" {
		c.Next()
		return
	}
	allowed := slices.Contains(s.corsOrigins, "*") || slices.Contains(s.corsOrigins, strings.TrimSuffix(origin, "/"))
	h := c.Writer.Header()
	h.Add("Vary", "Origin")
	preflight := c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != ""
	if !allowed {
		if preflight {
			s.renderError(c, &apiError{http.StatusForbidden, codeForbidden,
				"origin " + origin + " may not call this API; add it to DESKFORGE_CORS_ORIGINS", ""})
			return
		}
		c.Next()
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if !preflight {
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		c.Next()
		return
	}
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	h.Set("Access-Control-Allow-Methods", corsAllowMethods)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
	c.AbortWithStatus(http.StatusNoContent)
}
