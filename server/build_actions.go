package server

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/workflows"
)

// codeNotReady answers a download of a build that has not succeeded.
const codeNotReady = "not_ready"

// cancelBuild is POST /builds/:id/cancel: 202 with the build (cancelled at
// once when it was not dispatched yet; otherwise it turns cancelled when
// GitHub confirms); 409 for a finished build.
func (s *Server) cancelBuild(c *gin.Context) {
	b, err := s.buildForCaller(c, c.Param("id"))
	if err != nil {
		s.renderError(c, err)
		return
	}
	b, err = s.engine.CancelBuild(c.Request.Context(), b.ID)
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusAccepted, s.buildJSON(b))
}

// retryBuild is POST /builds/:id/retry: 201 with a new build of the same
// project, platform, arch and version, whose retryOf names the original.
func (s *Server) retryBuild(c *gin.Context) {
	b, err := s.buildForCaller(c, c.Param("id"))
	if err != nil {
		s.renderError(c, err)
		return
	}
	retry, err := s.engine.RetryBuild(c.Request.Context(), b.ID)
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.Header("Location", s.publicURL+"/builds/"+retry.ID)
	c.JSON(http.StatusCreated, s.buildJSON(retry))
}

// downloadBuild is GET /builds/:id/download.
func (s *Server) downloadBuild(c *gin.Context) {
	b, err := s.buildForCaller(c, c.Param("id"))
	if err != nil {
		s.renderError(c, err)
		return
	}
	s.serveArtifact(c, b)
}

// downloadArtifact is GET /builds/:id/artifacts/:name (the artifactUrl).
func (s *Server) downloadArtifact(c *gin.Context) {
	b, err := s.buildForCaller(c, c.Param("id"))
	if err != nil {
		s.renderError(c, err)
		return
	}
	if b.Status == models.StatusSuccess && c.Param("name") != b.ArtifactName {
		s.renderError(c, &apiError{http.StatusNotFound, codeNotFound,
			"build " + b.ID + " has no artifact named " + strconv.Quote(c.Param("name")) + "; it has " + strconv.Quote(b.ArtifactName), ""})
		return
	}
	s.serveArtifact(c, b)
}

// downloadSignedArtifact is the signed form of GET
// /builds/:id/artifacts/:name (the artifactUrl): no API key, the link's
// signature instead (signing.go).
func (s *Server) downloadSignedArtifact(c *gin.Context) {
	id, name := c.Param("id"), c.Param("name")
	if !s.checkSignedLink(c, artifactPath(id, name)) {
		return
	}
	b, err := s.store.GetBuild(c.Request.Context(), id)
	if err != nil {
		s.renderError(c, err)
		return
	}
	s.serveArtifact(c, b)
}

// serveArtifact answers with a successful build's installer: a 302 to
// GitHub (browser_download_url for a public repository, the asset's
// short-lived signed URL for a private one), or in proxy mode the bytes,
// streamed with Content-Length, Content-Disposition, an ETag (the SHA-256)
// and Range support. 409 not_ready before the build succeeded.
func (s *Server) serveArtifact(c *gin.Context, b models.Build) {
	if b.Status != models.StatusSuccess {
		s.renderError(c, &apiError{http.StatusConflict, codeNotReady, notReadyMessage(b), ""})
		return
	}
	if s.engine.Options().DownloadMode != workflows.DownloadProxy {
		u, err := s.engine.ArtifactURL(c.Request.Context(), b)
		if errors.Is(err, workflows.ErrAssetStreamed) {
			// GitHub serves this asset's bytes itself: stream them.
			s.proxyArtifact(c, b)
			return
		}
		if err != nil {
			s.renderArtifactError(c, err)
			return
		}
		c.Header("Cache-Control", "no-store")
		c.Redirect(http.StatusFound, u)
		return
	}
	s.proxyArtifact(c, b)
}

// notReadyMessage says why a build that has not succeeded has no artifact
// to download.
func notReadyMessage(b models.Build) string {
	switch b.Status {
	case models.StatusFailed:
		return "build " + b.ID + " failed and has no artifact; its error and log say why (retry it with POST /builds/" + b.ID + "/retry)"
	case models.StatusCancelled:
		return "build " + b.ID + " was cancelled and has no artifact"
	}
	return "build " + b.ID + " is " + b.Status + "; its artifact can be downloaded once it has succeeded"
}

// proxyArtifact streams the installer through DeskForge.
func (s *Server) proxyArtifact(c *gin.Context, b models.Build) {
	etag := ""
	if b.ArtifactSHA256 != "" {
		etag = `"` + b.ArtifactSHA256 + `"`
	}
	if etag != "" && etagMatches(c.GetHeader("If-None-Match"), etag) {
		c.Header("ETag", etag)
		c.Status(http.StatusNotModified)
		return
	}
	header := http.Header{}
	if r := c.GetHeader("Range"); r != "" {
		// If-Range: a range only of the version the client has.
		if ir := c.GetHeader("If-Range"); ir == "" || (etag != "" && ir == etag) {
			header.Set("Range", r)
		}
	}
	resp, err := s.engine.OpenArtifact(c.Request.Context(), b, header)
	if err != nil {
		s.renderArtifactError(c, err)
		return
	}
	defer resp.Body.Close()
	h := c.Writer.Header()
	h.Set("Accept-Ranges", "bytes")
	if etag != "" {
		h.Set("ETag", etag)
	}
	contentType := b.ArtifactContentType
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": b.ArtifactName}))
	if cl := resp.Header.Get("Content-Length"); cl != "" {
		h.Set("Content-Length", cl)
	}
	if cr := resp.Header.Get("Content-Range"); cr != "" {
		h.Set("Content-Range", cr)
	}
	c.Status(resp.StatusCode)
	if c.Request.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(c.Writer, resp.Body); err != nil {
		s.logFor(c).WarnContext(c.Request.Context(), "artifact stream interrupted", "build_id", b.ID, "err", err)
	}
}

// renderArtifactError answers a failure to locate or fetch an artifact.
func (s *Server) renderArtifactError(c *gin.Context, err error) {
	if errors.Is(err, workflows.ErrNotReady) {
		s.renderError(c, &apiError{http.StatusConflict, codeNotReady, err.Error(), ""})
		return
	}
	s.renderError(c, err)
}

// etagMatches reports whether an If-None-Match header names etag.
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(t), "W/"))
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}
