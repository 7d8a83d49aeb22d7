package server

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/workflows"
)

var releaseIDRe = regexp.MustCompile(`^rel_[0-9a-z]{26}$`)

// releaseResponse is a release as the API shows it (GET /releases/:id, each
// item of the list, release.* events' data).
type releaseResponse struct {
	ID          string                 `json:"id"`
	ProjectID   string                 `json:"projectId"`
	Version     string                 `json:"version"`
	Targets     []string               `json:"targets"`
	Notes       string                 `json:"notes"`
	Status      string                 `json:"status"`
	CreatedAt   string                 `json:"createdAt"`
	CompletedAt *string                `json:"completedAt"`
	PublishedAt *string                `json:"publishedAt"`
	ReleaseURL  *string                `json:"releaseUrl"`
	Builds      []releaseBuildResponse `json:"builds"`
	Assets      []releaseAssetResponse `json:"assets"`
}

// releaseBuildResponse is one build of a release: its targets' current
// builds (a retry replaces the target's earlier build).
type releaseBuildResponse struct {
	ID       string `json:"id"`
	Platform string `json:"platform"`
	Arch     string `json:"arch"`
	Status   string `json:"status"`
}

// releaseAssetResponse is one file of a release: an installer, SHA256SUMS
// or an update manifest.
type releaseAssetResponse struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"` // installer, checksums, manifest, updater
	Size   *int64 `json:"size"`
	SHA256 string `json:"sha256"`
	URL    string `json:"url"`
}

type releaseListResponse struct {
	Releases   []releaseResponse `json:"releases"`
	Total      int64             `json:"total"`
	NextCursor *string           `json:"nextCursor"`
}

// createReleaseRequest is POST /projects/:id/releases' body.
type createReleaseRequest struct {
	Version *string  `json:"version"`
	Targets []string `json:"targets"`
	Notes   string   `json:"notes"`
}

func (s *Server) registerReleaseRoutes(root *gin.Engine, api *gin.RouterGroup) {
	getAndHead(api, "/projects/:id/releases", s.listReleases)
	api.POST("/projects/:id/releases", s.createRelease)
	getAndHead(api, "/releases/:id", s.getRelease)
	getAndHead(api, "/releases/:id/files/:name", s.downloadReleaseFile)
	getAndHead(root, "/signed/:expires/:signature/releases/:id/files/:name",
		s.rateLimitByAddress, s.loadSigningKey, s.downloadSignedReleaseFile)
	api.POST("/releases/:id/cancel", s.cancelRelease)
	api.POST("/releases/:id/retry", s.retryRelease)
}

// releaseJSON renders a release with its targets' current builds and its
// assets: the builds' installers, then the files recorded at publication
// (SHA256SUMS, manifests, updater artifacts), each with a signed link.
func (s *Server) releaseJSON(r models.Release, builds []models.Build, files []models.ReleaseFile) releaseResponse {
	resp := releaseResponse{
		ID: r.ID, ProjectID: r.ProjectID, Version: r.Version, Targets: r.TargetList(), Notes: r.Notes,
		Status: r.Status, CreatedAt: formatTime(r.CreatedAt), CompletedAt: formatTimePtr(r.CompletedAt),
		PublishedAt: formatTimePtr(r.PublishedAt),
		Builds:      []releaseBuildResponse{}, Assets: []releaseAssetResponse{},
	}
	if resp.Targets == nil {
		resp.Targets = []string{}
	}
	if r.ReleaseURL != "" {
		u := r.ReleaseURL
		resp.ReleaseURL = &u
	}
	for _, b := range models.CurrentBuilds(builds) {
		resp.Builds = append(resp.Builds, releaseBuildResponse{ID: b.ID, Platform: b.Platform, Arch: b.Arch, Status: b.Status})
		if bj := s.buildJSON(b); bj.ArtifactURL != nil {
			resp.Assets = append(resp.Assets, releaseAssetResponse{
				Name: b.ArtifactName, Kind: "installer", Size: b.ArtifactSize, SHA256: b.ArtifactSHA256, URL: *bj.ArtifactURL,
			})
		}
	}
	for _, f := range files {
		size := f.Size
		resp.Assets = append(resp.Assets, releaseAssetResponse{
			Name: f.Name, Kind: f.Kind, Size: &size, SHA256: f.SHA256, URL: s.publicURL + s.links.sign(releaseFilePath(r.ID, f.Name)),
		})
	}
	return resp
}

// releaseFiles returns a release's recorded files. Reading them back from
// GitHub the first time may fail: the release is then shown without them
// (logged), and the next read tries again.
func (s *Server) releaseFiles(c *gin.Context, r models.Release) []models.ReleaseFile {
	files, err := s.engine.ReleaseFiles(c.Request.Context(), r)
	if err != nil {
		s.logFor(c).WarnContext(c.Request.Context(), "release files not listed", "release_id", r.ID, "err", err)
		return nil
	}
	return files
}

// releaseForCaller reads a release the caller may see (404 otherwise).
func (s *Server) releaseForCaller(c *gin.Context, id string) (models.Release, error) {
	if !releaseIDRe.MatchString(id) {
		return models.Release{}, fmt.Errorf("release %s: %w", id, models.ErrNotFound)
	}
	r, err := s.store.GetRelease(c.Request.Context(), id)
	if err == nil && !canSeeProject(c, r.ProjectID) {
		err = fmt.Errorf("release %s: %w", id, models.ErrNotFound)
	}
	return r, err
}

func (s *Server) renderRelease(c *gin.Context, status int, r models.Release) {
	builds, err := s.store.ReleaseBuilds(c.Request.Context(), r.ID)
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(status, s.releaseJSON(r, builds, s.releaseFiles(c, r)))
}

// createRelease is POST /projects/:id/releases: 201 with the release and a
// Location header; Idempotency-Key replays answer the first release.
func (s *Server) createRelease(c *gin.Context) {
	projectID := c.Param("id")
	if !canSeeProject(c, projectID) {
		s.renderError(c, fmt.Errorf("project %s: %w", projectID, models.ErrNotFound))
		return
	}
	var body createReleaseRequest
	if err := decodeJSON(c, &body); err != nil {
		s.renderError(c, err)
		return
	}
	req := workflows.CreateReleaseRequest{ProjectID: projectID, Targets: body.Targets, Notes: body.Notes,
		IdempotencyKey: c.GetHeader("Idempotency-Key")}
	if body.Version != nil {
		if *body.Version == "" {
			s.renderError(c, invalid("version", "version must be a semantic version such as 1.0.0 (or omitted for the project's version)"))
			return
		}
		req.Version = *body.Version
	}
	r, err := s.engine.CreateRelease(c.Request.Context(), req)
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.Header("Location", s.publicURL+"/releases/"+r.ID)
	s.renderRelease(c, http.StatusCreated, r)
}

func (s *Server) getRelease(c *gin.Context) {
	r, err := s.releaseForCaller(c, c.Param("id"))
	if err != nil {
		s.renderError(c, err)
		return
	}
	s.renderRelease(c, http.StatusOK, r)
}

// listReleases is GET /projects/:id/releases: newest first, keyset pages.
func (s *Server) listReleases(c *gin.Context) {
	projectID := c.Param("id")
	if err := s.requireProjectForCaller(c, projectID); err != nil {
		s.renderError(c, err)
		return
	}
	limit, err := pageSize(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	cursor := c.Query("cursor")
	if cursor != "" && !releaseIDRe.MatchString(cursor) {
		s.renderError(c, invalid("cursor", "cursor must be the nextCursor of a previous page"))
		return
	}
	ctx := c.Request.Context()
	rels, next, err := s.store.ListReleases(ctx, projectID, cursor, limit)
	if err != nil {
		s.renderError(c, err)
		return
	}
	total, err := s.store.CountReleases(ctx, projectID)
	if err != nil {
		s.renderError(c, err)
		return
	}
	resp := releaseListResponse{Releases: make([]releaseResponse, len(rels)), Total: total}
	for i, r := range rels {
		builds, err := s.store.ReleaseBuilds(ctx, r.ID)
		if err != nil {
			s.renderError(c, err)
			return
		}
		resp.Releases[i] = s.releaseJSON(r, builds, s.releaseFiles(c, r))
	}
	if next != "" {
		resp.NextCursor = &next
	}
	c.JSON(http.StatusOK, resp)
}

// cancelRelease is POST /releases/:id/cancel: 202 with the release, whose
// running builds are being cancelled; 409 release_not_running otherwise.
func (s *Server) cancelRelease(c *gin.Context) {
	r, err := s.releaseForCaller(c, c.Param("id"))
	if err == nil {
		r, err = s.engine.CancelRelease(c.Request.Context(), r.ID)
	}
	if err != nil {
		s.renderError(c, err)
		return
	}
	s.renderRelease(c, http.StatusAccepted, r)
}

// retryRelease is POST /releases/:id/retry: 202 with the release building
// again (new builds for its failed and cancelled targets); 409
// release_not_retryable unless it failed or was cancelled.
func (s *Server) retryRelease(c *gin.Context) {
	r, err := s.releaseForCaller(c, c.Param("id"))
	if err == nil {
		r, err = s.engine.RetryRelease(c.Request.Context(), r.ID)
	}
	if err != nil {
		s.renderError(c, err)
		return
	}
	s.renderRelease(c, http.StatusAccepted, r)
}

// downloadReleaseFile is GET /releases/:id/files/:name: a file of a
// published release (SHA256SUMS, latest.json, …), with an API key.
func (s *Server) downloadReleaseFile(c *gin.Context) {
	r, err := s.releaseForCaller(c, c.Param("id"))
	if err != nil {
		s.renderError(c, err)
		return
	}
	s.serveReleaseFile(c, r, c.Param("name"))
}

// downloadSignedReleaseFile is the signed form of downloadReleaseFile
// (signing.go): no API key.
func (s *Server) downloadSignedReleaseFile(c *gin.Context) {
	id, name := c.Param("id"), c.Param("name")
	if !s.checkSignedLink(c, releaseFilePath(id, name)) {
		return
	}
	r, err := s.store.GetRelease(c.Request.Context(), id)
	if err != nil {
		s.renderError(c, err)
		return
	}
	s.serveReleaseFile(c, r, name)
}

// serveReleaseFile answers a release file: SHA256SUMS and manifests from
// their recorded content (ETag, Range), updater artifacts like installers
// (a redirect to GitHub, or streamed in proxy mode). 404 when the release
// has no such file (or is not published).
func (s *Server) serveReleaseFile(c *gin.Context, r models.Release, name string) {
	files, err := s.engine.ReleaseFiles(c.Request.Context(), r)
	if err != nil {
		s.renderError(c, err)
		return
	}
	i := slices.IndexFunc(files, func(f models.ReleaseFile) bool { return f.Name == name })
	if i < 0 {
		s.renderError(c, &apiError{http.StatusNotFound, codeNotFound,
			"release " + r.ID + " has no file named " + strconv.Quote(name) + " (files are listed in its assets once it is published)", ""})
		return
	}
	f := files[i]
	if f.Kind != models.FileUpdater {
		c.Header("ETag", `"`+f.SHA256+`"`)
		c.Header("Content-Type", releaseFileContentType(f.Name))
		http.ServeContent(c.Writer, c.Request, "", r.UpdatedAt, strings.NewReader(f.Content))
		return
	}
	if s.engine.Options().DownloadMode != workflows.DownloadProxy {
		u, err := s.engine.ReleaseFileURL(c.Request.Context(), f)
		if err == nil {
			c.Header("Cache-Control", "no-store")
			c.Redirect(http.StatusFound, u)
			return
		}
		if !errors.Is(err, workflows.ErrAssetStreamed) {
			s.renderError(c, err)
			return
		}
	}
	header := http.Header{}
	if rg := c.GetHeader("Range"); rg != "" {
		header.Set("Range", rg)
	}
	resp, err := s.engine.OpenReleaseFile(c.Request.Context(), f, header)
	if err != nil {
		s.renderError(c, err)
		return
	}
	defer resp.Body.Close()
	h := c.Writer.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.Name}))
	for _, k := range []string{"Content-Length", "Content-Range", "Accept-Ranges"} {
		if v := resp.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	c.Status(resp.StatusCode)
	if c.Request.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(c.Writer, resp.Body); err != nil {
		s.logFor(c).WarnContext(c.Request.Context(), "release file stream interrupted", "release_id", r.ID, "file", f.Name, "err", err)
	}
}

// releaseFileContentType is the media type of a recorded release file.
func releaseFileContentType(name string) string {
	switch {
	case strings.HasSuffix(name, ".json"):
		return "application/json"
	case strings.HasSuffix(name, ".yml"):
		return "application/yaml"
	}
	return "text/plain; charset=utf-8"
}
