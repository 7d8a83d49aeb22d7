package server

import (
	"io/fs"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/deskforge/deskforge/server/ui"
)

// dashboardCSP lets the dashboard's pages load and call only this server.
const dashboardCSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// registerDashboardRoutes serves the web dashboard (server/ui): its page at
// /, its files under /ui/, and /ui-download/:id, the build download for a
// browser navigation, authenticated like event streams by ?token= (a
// navigation cannot send the Authorization header, and fetch cannot follow
// the redirect to GitHub across origins).
func (s *Server) registerDashboardRoutes(r *gin.Engine) {
	files := http.StripPrefix("/ui/", http.FileServer(http.FS(ui.FS())))
	index, err := fs.ReadFile(ui.FS(), "index.html")
	if err != nil {
		panic(err) // embedded at build time
	}
	getAndHead(r, "/", func(c *gin.Context) {
		dashboardHeaders(c)
		c.Data(http.StatusOK, "text/html; charset=utf-8", index)
	})
	getAndHead(r, "/ui/*file", func(c *gin.Context) {
		dashboardHeaders(c)
		files.ServeHTTP(c.Writer, c.Request)
	})
	getAndHead(r.Group("/", s.authenticateStream), "/ui-download/:id", s.downloadBuild)
}

func dashboardHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", dashboardCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
}
