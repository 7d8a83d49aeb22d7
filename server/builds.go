package server

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/templates"
	"github.com/deskforge/deskforge/workflows"
)

// Page sizes of list endpoints.
const (
	defaultPageSize = 50
	maxPageSize     = 200
)

// timeFormat is RFC 3339 UTC to the second, as in the API contract.
const timeFormat = "2006-01-02T15:04:05Z"

// statuses a build may have, for the status filter.
var statuses = []string{models.StatusQueued, models.StatusBuilding, models.StatusSuccess, models.StatusFailed, models.StatusCancelled}

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func formatTimePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := formatTime(*t)
	return &s
}

// buildResponse is a build as the API shows it (Get Build, and each item of
// List Builds). Fields not known yet are null, never missing; retryOf is an
// extension present only on a retry.
type buildResponse struct {
	ID           string  `json:"id"`
	ProjectID    string  `json:"projectId"`
	Version      string  `json:"version"`
	Platform     string  `json:"platform"`
	Arch         string  `json:"arch"`
	Status       string  `json:"status"`
	CreatedAt    string  `json:"createdAt"`
	StartedAt    *string `json:"startedAt"`
	CompletedAt  *string `json:"completedAt"`
	Duration     *int64  `json:"duration"`
	ArtifactURL  *string `json:"artifactUrl"`
	ArtifactSize *int64  `json:"artifactSize"`
	BuildLog     string  `json:"buildLog"`
	RetryOf      *string `json:"retryOf,omitempty"`
	// Progress is an extension: the job step running, null when unknown.
	Progress *progressResponse `json:"progress"`
	// Error says why a failed build failed; null otherwise.
	Error *buildError `json:"error"`
}

// buildError is a failed build's error: a stable code (the workflows
// package's Error* constants), the message (the failure reason, with the
// first compiler error when the log had one) and the failed step, if known.
type buildError struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Step    *string `json:"step"`
}

// failureOf is a failed build's error.
func failureOf(b *models.Build) buildError {
	e := buildError{Code: cmp.Or(b.ErrorCode, "failed"), Message: cmp.Or(b.FailureReason, "the build failed")}
	if b.ErrorStep != "" {
		step := b.ErrorStep
		e.Step = &step
	}
	return e
}

// progressResponse is a building build's step: step Step of Steps, Name.
type progressResponse struct {
	Step  int    `json:"step"`
	Steps int    `json:"steps"`
	Name  string `json:"name"`
}

// buildJSON renders a build in the Get Build shape. duration is the whole
// seconds from startedAt to completedAt; artifactUrl is set once a
// successful build's artifact is known.
func (s *Server) buildJSON(b models.Build) buildResponse {
	r := buildResponse{
		ID:          b.ID,
		ProjectID:   b.ProjectID,
		Version:     b.Version,
		Platform:    b.Platform,
		Arch:        b.Arch,
		Status:      b.Status,
		CreatedAt:   formatTime(b.CreatedAt),
		StartedAt:   formatTimePtr(b.StartedAt),
		CompletedAt: formatTimePtr(b.CompletedAt),
		BuildLog:    s.publicURL + "/builds/" + b.ID + "/logs",
		RetryOf:     b.RetryOf,
	}
	if b.Status == models.StatusFailed {
		e := failureOf(&b)
		r.Error = &e
	}
	if b.ProgressSteps > 0 {
		r.Progress = &progressResponse{Step: b.ProgressStep, Steps: b.ProgressSteps, Name: b.ProgressName}
	}
	if b.StartedAt != nil && b.CompletedAt != nil {
		d := int64(b.CompletedAt.Truncate(time.Second).Sub(b.StartedAt.Truncate(time.Second)) / time.Second)
		r.Duration = &d
	}
	if b.Status == models.StatusSuccess && b.ArtifactName != "" {
		u := s.publicURL + s.links.sign(artifactPath(b.ID, b.ArtifactName))
		r.ArtifactURL = &u
		r.ArtifactSize = b.ArtifactSize
	}
	return r
}

// buildListResponse is List Builds: the seed's builds and total, plus the
// cursor of the next page (null on the last page). The handler writes it
// with appendBuildList; the struct documents the shape and tests it.
type buildListResponse struct {
	Builds     []buildResponse `json:"builds"`
	Total      int64           `json:"total"`
	NextCursor *string         `json:"nextCursor"`
}

// createBuildResponse is exactly the seed's Trigger Build answer.
type createBuildResponse struct {
	ID        string `json:"id"`
	ProjectID string `json:"projectId"`
	Platform  string `json:"platform"`
	Arch      string `json:"arch"`
	Version   string `json:"version"`
	Status    string `json:"status"`
	CreatedAt string `json:"createdAt"`
	Message   string `json:"message"`
}

// createBuildRequest is the Trigger Build body. Pointers tell an absent
// field (default) from an empty one (invalid).
type createBuildRequest struct {
	Platform *string `json:"platform"`
	Arch     *string `json:"arch"`
	Version  *string `json:"version"`
}

func (s *Server) getBuild(c *gin.Context) {
	id := c.Param("id")
	b, err := s.store.GetBuildSummary(c.Request.Context(), id)
	if err == nil && !canSeeProject(c, b.ProjectID) {
		err = fmt.Errorf("build %s: %w", id, models.ErrNotFound)
	}
	if err != nil {
		s.renderError(c, err)
		return
	}
	s.renderBuild(c, http.StatusOK, &b)
}

func (s *Server) createBuild(c *gin.Context) {
	projectID := c.Param("id")
	if !canSeeProject(c, projectID) {
		s.renderError(c, fmt.Errorf("project %s: %w", projectID, models.ErrNotFound))
		return
	}
	var body createBuildRequest
	if err := decodeJSON(c, &body); err != nil {
		s.renderError(c, err)
		return
	}
	req := workflows.CreateBuildRequest{
		ProjectID:      projectID,
		IdempotencyKey: c.GetHeader("Idempotency-Key"),
	}
	if body.Platform != nil {
		req.Platform = *body.Platform
	}
	if body.Arch != nil {
		if *body.Arch == "" {
			s.renderError(c, invalid("arch", "arch must be one of %s (or omitted for x64)", strings.Join(templates.Arches, ", ")))
			return
		}
		req.Arch = *body.Arch
	}
	if body.Version != nil {
		if *body.Version == "" {
			s.renderError(c, invalid("version", "version must be a semantic version such as 1.0.0 (or omitted for the project's version)"))
			return
		}
		req.Version = *body.Version
	}
	b, err := s.engine.CreateBuild(c.Request.Context(), req)
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.Header("Location", s.publicURL+"/builds/"+b.ID)
	// A replayed request answers with the body of the first one, hence the
	// fixed status: the build was queued by that request.
	c.JSON(http.StatusCreated, createBuildResponse{
		ID:        b.ID,
		ProjectID: b.ProjectID,
		Platform:  b.Platform,
		Arch:      b.Arch,
		Version:   b.Version,
		Status:    models.StatusQueued,
		CreatedAt: formatTime(b.CreatedAt),
		Message:   "Build queued successfully",
	})
}

func (s *Server) listBuilds(c *gin.Context) {
	projectID := c.Param("id")
	if !canSeeProject(c, projectID) {
		s.renderError(c, fmt.Errorf("project %s: %w", projectID, models.ErrNotFound))
		return
	}
	s.renderBuildList(c, projectID)
}

// listAllBuilds is GET /builds: every project's builds for an admin key,
// the key's own project's for a project key (the list it may see, rather
// than a 403), with the filters and paging of GET /projects/:id/builds.
func (s *Server) listAllBuilds(c *gin.Context) {
	projectID := ""
	if k := callerOf(c); k.Role != models.RoleAdmin {
		if k.ProjectID == nil {
			s.renderError(c, &apiError{http.StatusForbidden, codeForbidden, "this API key sees no project", ""})
			return
		}
		projectID = *k.ProjectID
	}
	s.renderBuildList(c, projectID)
}

// renderBuildList answers a page of the builds of projectID ("" = every
// project) selected by the query's filters; 404 when projectID does not
// exist, whatever the filters.
func (s *Server) renderBuildList(c *gin.Context, projectID string) {
	f, err := buildFilterFromQuery(c, projectID)
	if err != nil {
		if projectID != "" {
			if missing := s.requireProjectForCaller(c, projectID); missing != nil {
				err = missing
			}
		}
		s.renderError(c, err)
		return
	}
	// The page, its total and the project's existence are one read: one
	// round trip on PostgreSQL.
	page, err := s.store.ReadBuildPage(c.Request.Context(), f)
	if err == nil && !page.ProjectExists {
		err = fmt.Errorf("project %s: %w", projectID, models.ErrNotFound)
	}
	if err != nil {
		s.renderError(c, err)
		return
	}
	writeJSON(c, http.StatusOK, func(dst []byte) []byte {
		return s.appendBuildList(dst, page.Builds, page.Total, page.Next)
	})
}

// buildFilterFromQuery reads limit, cursor and the filters status, platform,
// arch and version.
func buildFilterFromQuery(c *gin.Context, projectID string) (models.BuildFilter, error) {
	f := models.BuildFilter{
		ProjectID: projectID,
		Status:    c.Query("status"),
		Platform:  c.Query("platform"),
		Arch:      c.Query("arch"),
		Version:   c.Query("version"),
		Cursor:    c.Query("cursor"),
	}
	limit, err := pageSize(c)
	if err != nil {
		return f, err
	}
	f.Limit = limit
	if f.Cursor != "" && !models.IsID("build", f.Cursor) {
		return f, invalid("cursor", "cursor must be the nextCursor of a previous page")
	}
	if f.Status != "" && !slices.Contains(statuses, f.Status) {
		return f, invalid("status", "status must be one of %s", strings.Join(statuses, ", "))
	}
	if f.Platform != "" && !slices.Contains(templates.Platforms, f.Platform) {
		return f, invalid("platform", "platform must be one of %s", strings.Join(templates.Platforms, ", "))
	}
	if f.Arch != "" && !slices.Contains(templates.Arches, f.Arch) {
		return f, invalid("arch", "arch must be one of %s", strings.Join(templates.Arches, ", "))
	}
	if len(f.Version) > 100 {
		return f, invalid("version", "version must be at most 100 characters")
	}
	return f, nil
}

// pageSize reads ?limit= (default 50, 1 to 200).
func pageSize(c *gin.Context) (int, error) {
	raw, ok := c.GetQuery("limit")
	if !ok {
		return defaultPageSize, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > maxPageSize {
		return 0, invalid("limit", "limit must be an integer from 1 to %d", maxPageSize)
	}
	return n, nil
}
