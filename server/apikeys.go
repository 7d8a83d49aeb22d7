package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/deskforge/deskforge/models"
)

// apiKeyResponse is an API key as the API shows it; Key (the plaintext) is
// present only in the answer that created it.
type apiKeyResponse struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	Role       string  `json:"role"`
	ProjectID  *string `json:"projectId"`
	Prefix     string  `json:"prefix"`
	CreatedAt  string  `json:"createdAt"`
	LastUsedAt *string `json:"lastUsedAt"`
	RevokedAt  *string `json:"revokedAt"`
	Key        string  `json:"key,omitempty"`
}

// APIKeyJSON renders a key in the API's shape, without its plaintext (used
// by the command line's apikey list --json).
func APIKeyJSON(k models.APIKey) any { return apiKeyJSON(k, "") }

func apiKeyJSON(k models.APIKey, plaintext string) apiKeyResponse {
	return apiKeyResponse{
		ID:         k.ID,
		Name:       k.Name,
		Role:       k.Role,
		ProjectID:  k.ProjectID,
		Prefix:     k.Prefix,
		CreatedAt:  formatTime(k.CreatedAt),
		LastUsedAt: formatTimePtr(k.LastUsedAt),
		RevokedAt:  formatTimePtr(k.RevokedAt),
		Key:        plaintext,
	}
}

type apiKeyListResponse struct {
	APIKeys []apiKeyResponse `json:"apiKeys"`
	Total   int              `json:"total"`
}

// createAPIKeyRequest is the body of POST /apikeys. Role defaults to
// "project" when projectId is given, else "admin".
type createAPIKeyRequest struct {
	Name      *string `json:"name"`
	Role      *string `json:"role"`
	ProjectID *string `json:"projectId"`
}

func (s *Server) listAPIKeys(c *gin.Context) {
	projectID := c.Query("projectId")
	if projectID != "" && !models.IsID("proj", projectID) {
		s.renderError(c, invalid("projectId", "projectId must be a project id: proj_ and 26 lowercase letters and digits"))
		return
	}
	keys, err := s.store.ListAPIKeys(c.Request.Context(), projectID)
	if err != nil {
		s.renderError(c, err)
		return
	}
	resp := apiKeyListResponse{APIKeys: make([]apiKeyResponse, len(keys)), Total: len(keys)}
	for i, k := range keys {
		resp.APIKeys[i] = apiKeyJSON(k, "")
	}
	c.JSON(http.StatusOK, resp)
}

func (s *Server) createAPIKey(c *gin.Context) {
	var body createAPIKeyRequest
	if err := decodeJSON(c, &body); err != nil {
		s.renderError(c, err)
		return
	}
	p := models.NewAPIKeyParams{Role: models.RoleAdmin}
	if body.Name != nil {
		p.Name = *body.Name
	}
	if body.ProjectID != nil {
		p.ProjectID = *body.ProjectID
		p.Role = models.RoleProject
	}
	if body.Role != nil {
		p.Role = *body.Role
	}
	k, plaintext, err := s.store.CreateAPIKey(c.Request.Context(), p)
	if err != nil {
		s.renderError(c, err)
		return
	}
	s.logFor(c).InfoContext(c.Request.Context(), "api key created", "key_id", k.ID, "role", k.Role)
	c.Header("Location", s.publicURL+"/apikeys/"+k.ID)
	c.JSON(http.StatusCreated, apiKeyJSON(k, plaintext))
}

func (s *Server) revokeAPIKey(c *gin.Context) {
	k, err := s.store.RevokeAPIKey(c.Request.Context(), c.Param("id"))
	if err != nil {
		s.renderError(c, err)
		return
	}
	s.keys.forget(func(cached models.APIKey) bool { return cached.ID == k.ID })
	s.logFor(c).InfoContext(c.Request.Context(), "api key revoked", "key_id", k.ID)
	c.JSON(http.StatusOK, apiKeyJSON(k, ""))
}
