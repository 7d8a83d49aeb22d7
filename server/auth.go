package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/deskforge/deskforge/models"
)

// authenticate requires a valid, unrevoked API key in
// "Authorization: Bearer df_…" and stores it as the request's caller.
// Missing, unknown and revoked keys answer 401 with WWW-Authenticate.
func (s *Server) authenticate(c *gin.Context) {
	header := c.GetHeader("Authorization")
	scheme, key, ok := strings.Cut(header, " ")
	if header == "" || !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
		c.Header("WWW-Authenticate", `Bearer realm="deskforge"`)
		s.renderError(c, &apiError{http.StatusUnauthorized, codeUnauthorized,
			"missing API key: send the header Authorization: Bearer df_…", ""})
		return
	}
	k, err := s.store.AuthenticateAPIKey(c.Request.Context(), strings.TrimSpace(key))
	if errors.Is(err, models.ErrNotFound) {
		c.Header("WWW-Authenticate", `Bearer realm="deskforge", error="invalid_token"`)
		s.renderError(c, &apiError{http.StatusUnauthorized, codeUnauthorized,
			"the API key is unknown or revoked", ""})
		return
	}
	if err != nil {
		s.renderError(c, fmt.Errorf("authenticate: %w", err))
		return
	}
	c.Set(ctxCaller, k)
	c.Next()
}

// callerOf returns the authenticated key of the request.
func callerOf(c *gin.Context) models.APIKey {
	k, _ := c.Get(ctxCaller)
	key, _ := k.(models.APIKey)
	return key
}

// isAdmin reports whether the caller holds an admin key.
func isAdmin(c *gin.Context) bool { return callerOf(c).Role == models.RoleAdmin }

// canSeeProject reports whether the caller may see project id: admins see
// every project, a project key only its own.
func canSeeProject(c *gin.Context, projectID string) bool {
	k := callerOf(c)
	if k.Role == models.RoleAdmin {
		return true
	}
	return k.Role == models.RoleProject && k.ProjectID != nil && *k.ProjectID == projectID
}

// requireAdmin answers 403 unless the caller holds an admin key.
func (s *Server) requireAdmin(c *gin.Context) {
	if !isAdmin(c) {
		s.renderError(c, &apiError{http.StatusForbidden, codeForbidden,
			"this endpoint needs an admin API key", ""})
		return
	}
	c.Next()
}

// projectForCaller reads a project the caller may see; models.ErrNotFound
// for an unknown project or another project's.
func (s *Server) projectForCaller(c *gin.Context, id string) (models.Project, error) {
	if !canSeeProject(c, id) {
		return models.Project{}, fmt.Errorf("project %s: %w", id, models.ErrNotFound)
	}
	return s.store.GetProject(c.Request.Context(), id)
}

// buildForCaller reads a build the caller may see; models.ErrNotFound for an
// unknown build or another project's.
func (s *Server) buildForCaller(c *gin.Context, id string) (models.Build, error) {
	b, err := s.store.GetBuild(c.Request.Context(), id)
	if err != nil {
		return models.Build{}, err
	}
	if !canSeeProject(c, b.ProjectID) {
		return models.Build{}, fmt.Errorf("build %s: %w", id, models.ErrNotFound)
	}
	return b, nil
}
