package server

import (
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/deskforge/deskforge/models"
)

// Outbound webhook endpoints (/webhooks, /webhooks/:id/…). An admin key
// manages every endpoint; a project key only those of its project (others
// answer 404). POST /webhooks/github, GitHub's inbound deliveries, is a
// static route beside these and unaffected.

var (
	webhookIDRe  = regexp.MustCompile(`^wh_[0-9a-z]{26}$`)
	deliveryIDRe = regexp.MustCompile(`^dlv_[0-9a-z]{26}$`)
)

func (s *Server) registerHookRoutes(api *gin.RouterGroup) {
	api.POST("/webhooks", s.createHook)
	getAndHead(api, "/webhooks", s.listHooks)
	getAndHead(api, "/webhooks/:id", s.getHook)
	api.PATCH("/webhooks/:id", s.updateHook)
	api.DELETE("/webhooks/:id", s.deleteHook)
	api.POST("/webhooks/:id/rotate-secret", s.rotateHookSecret)
	api.POST("/webhooks/:id/ping", s.pingHook)
	getAndHead(api, "/webhooks/:id/deliveries", s.listHookDeliveries)
	api.POST("/webhooks/:id/deliveries/:deliveryId/redeliver", s.redeliverHook)
}

// hookResponse is a webhook endpoint as the API shows it. Secret is set only
// when it is new (create, rotate-secret): it is shown once.
type hookResponse struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	ProjectID   *string  `json:"projectId"`
	Description *string  `json:"description"`
	Enabled     bool     `json:"enabled"`
	// DisabledReason says why DeskForge disabled the endpoint.
	DisabledReason *string `json:"disabledReason"`
	// FailingSince is the first failed attempt since the last delivered one.
	FailingSince *string `json:"failingSince"`
	// PreviousSecretExpiresAt: until then the rotated-out secret signs too.
	PreviousSecretExpiresAt *string `json:"previousSecretExpiresAt"`
	CreatedAt               string  `json:"createdAt"`
	UpdatedAt               string  `json:"updatedAt"`
	Secret                  string  `json:"secret,omitempty"`
}

// HookJSON renders a webhook endpoint in the API's shape (also used by the
// command line), with its secret when withSecret (it has just been created
// or rotated: shown once).
func HookJSON(w models.Webhook, withSecret bool) any {
	r := hookJSON(w, time.Now())
	if withSecret {
		r.Secret = w.Secret
	}
	return r
}

func hookJSON(w models.Webhook, now time.Time) hookResponse {
	r := hookResponse{
		ID: w.ID, URL: w.URL, Events: w.EventList(), ProjectID: w.ProjectID, Description: nullable(w.Description),
		Enabled: w.Enabled, DisabledReason: nullable(w.DisabledReason), FailingSince: formatTimePtr(w.FailingSince),
		CreatedAt: formatTime(w.CreatedAt), UpdatedAt: formatTime(w.UpdatedAt),
	}
	if w.PreviousSecretUntil != nil && now.Before(*w.PreviousSecretUntil) {
		r.PreviousSecretExpiresAt = formatTimePtr(w.PreviousSecretUntil)
	}
	return r
}

// hookDeliveryResponse is one delivery of an endpoint.
type hookDeliveryResponse struct {
	ID             string  `json:"id"`
	EventID        string  `json:"eventId"`
	EventType      string  `json:"eventType"`
	Status         string  `json:"status"`
	Attempts       int     `json:"attempts"`
	LastStatusCode *int    `json:"lastStatusCode"`
	LastError      *string `json:"lastError"`
	LastResponse   *string `json:"lastResponse"`
	LastAttemptAt  *string `json:"lastAttemptAt"`
	NextAttemptAt  *string `json:"nextAttemptAt"`
	DeliveredAt    *string `json:"deliveredAt"`
	CreatedAt      string  `json:"createdAt"`
}

// HookDeliveryJSON renders a delivery in the API's shape (also used by the
// command line).
func HookDeliveryJSON(d models.EventDelivery) any { return hookDeliveryJSON(d) }

func hookDeliveryJSON(d models.EventDelivery) hookDeliveryResponse {
	return hookDeliveryResponse{
		ID: d.ID, EventID: d.EventID, EventType: d.EventType, Status: d.Status, Attempts: d.Attempts,
		LastStatusCode: d.LastStatusCode, LastError: nullable(d.LastError), LastResponse: nullable(d.LastResponse),
		LastAttemptAt: formatTimePtr(d.LastAttemptAt), NextAttemptAt: formatTimePtr(d.NextAttemptAt),
		DeliveredAt: formatTimePtr(d.DeliveredAt), CreatedAt: formatTime(d.CreatedAt),
	}
}

type hookListResponse struct {
	Webhooks   []hookResponse `json:"webhooks"`
	Total      int64          `json:"total"`
	NextCursor *string        `json:"nextCursor"`
}

type hookDeliveryListResponse struct {
	Deliveries []hookDeliveryResponse `json:"deliveries"`
	NextCursor *string                `json:"nextCursor"`
}

// createHookRequest is POST /webhooks's body.
type createHookRequest struct {
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	ProjectID   *string  `json:"projectId"`
	Description string   `json:"description"`
}

// updateHookRequest is PATCH /webhooks/:id's body: absent fields are kept.
type updateHookRequest struct {
	URL         *string   `json:"url"`
	Events      *[]string `json:"events"`
	Description *string   `json:"description"`
	Enabled     *bool     `json:"enabled"`
}

// hookForCaller reads an endpoint the caller may manage: an admin any, a
// project key those of its project; models.ErrNotFound otherwise.
func (s *Server) hookForCaller(c *gin.Context) (models.Webhook, error) {
	id := c.Param("id")
	notFound := fmt.Errorf("webhook %s: %w", id, models.ErrNotFound)
	if !webhookIDRe.MatchString(id) {
		return models.Webhook{}, notFound
	}
	w, err := s.store.GetWebhook(c.Request.Context(), id)
	if err != nil {
		return models.Webhook{}, err
	}
	if !isAdmin(c) && (w.ProjectID == nil || !canSeeProject(c, *w.ProjectID)) {
		return models.Webhook{}, notFound
	}
	return w, nil
}

func (s *Server) createHook(c *gin.Context) {
	var body createHookRequest
	if err := decodeJSON(c, &body); err != nil {
		s.renderError(c, err)
		return
	}
	p := models.NewWebhookParams{URL: body.URL, Events: body.Events, Description: body.Description}
	switch {
	case body.ProjectID != nil:
		if !canSeeProject(c, *body.ProjectID) {
			s.renderError(c, fmt.Errorf("project %s: %w", *body.ProjectID, models.ErrNotFound))
			return
		}
		p.ProjectID = *body.ProjectID
	case !isAdmin(c):
		// A project key's endpoints belong to its project.
		p.ProjectID = *callerOf(c).ProjectID
	}
	w, err := s.store.CreateWebhook(c.Request.Context(), p)
	if err != nil {
		s.renderError(c, err)
		return
	}
	s.logFor(c).InfoContext(c.Request.Context(), "webhook created", "webhook_id", w.ID)
	c.Header("Location", s.publicURL+"/webhooks/"+w.ID)
	r := hookJSON(w, time.Now())
	r.Secret = w.Secret
	c.JSON(http.StatusCreated, r)
}

func (s *Server) listHooks(c *gin.Context) {
	limit, err := pageSize(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	f := models.WebhookFilter{Limit: limit, Cursor: c.Query("cursor"), ProjectID: c.Query("projectId")}
	if f.Cursor != "" && !webhookIDRe.MatchString(f.Cursor) {
		s.renderError(c, invalid("cursor", "cursor must be the nextCursor of a previous page"))
		return
	}
	if !isAdmin(c) {
		if f.ProjectID != "" && !canSeeProject(c, f.ProjectID) {
			s.renderError(c, fmt.Errorf("project %s: %w", f.ProjectID, models.ErrNotFound))
			return
		}
		f.ProjectID = *callerOf(c).ProjectID
	}
	hooks, next, total, err := s.store.ListWebhooks(c.Request.Context(), f)
	if err != nil {
		s.renderError(c, err)
		return
	}
	now := time.Now()
	resp := hookListResponse{Webhooks: make([]hookResponse, len(hooks)), Total: total}
	for i, w := range hooks {
		resp.Webhooks[i] = hookJSON(w, now)
	}
	if next != "" {
		resp.NextCursor = &next
	}
	c.JSON(http.StatusOK, resp)
}

func (s *Server) getHook(c *gin.Context) {
	w, err := s.hookForCaller(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusOK, hookJSON(w, time.Now()))
}

func (s *Server) updateHook(c *gin.Context) {
	w, err := s.hookForCaller(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	var body updateHookRequest
	if err := decodeJSON(c, &body); err != nil {
		s.renderError(c, err)
		return
	}
	w, err = s.store.UpdateWebhook(c.Request.Context(), w.ID, models.WebhookChange{
		URL: body.URL, Events: body.Events, Description: body.Description, Enabled: body.Enabled,
	})
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusOK, hookJSON(w, time.Now()))
}

func (s *Server) deleteHook(c *gin.Context) {
	w, err := s.hookForCaller(c)
	if err == nil {
		err = s.store.DeleteWebhook(c.Request.Context(), w.ID)
	}
	if err != nil {
		s.renderError(c, err)
		return
	}
	s.logFor(c).InfoContext(c.Request.Context(), "webhook deleted", "webhook_id", w.ID)
	c.Status(http.StatusNoContent)
}

func (s *Server) rotateHookSecret(c *gin.Context) {
	w, err := s.hookForCaller(c)
	if err == nil {
		w, err = s.store.RotateWebhookSecret(c.Request.Context(), w.ID, time.Now())
	}
	if err != nil {
		s.renderError(c, err)
		return
	}
	s.logFor(c).InfoContext(c.Request.Context(), "webhook secret rotated", "webhook_id", w.ID)
	r := hookJSON(w, time.Now())
	r.Secret = w.Secret
	c.JSON(http.StatusOK, r)
}

func (s *Server) pingHook(c *gin.Context) {
	w, err := s.hookForCaller(c)
	var d models.EventDelivery
	if err == nil {
		d, err = s.store.PingWebhook(c.Request.Context(), w.ID)
	}
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusAccepted, hookDeliveryJSON(d))
}

func (s *Server) listHookDeliveries(c *gin.Context) {
	w, err := s.hookForCaller(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	limit, err := pageSize(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	f := models.DeliveryFilter{WebhookID: w.ID, Limit: limit, Cursor: c.Query("cursor")}
	if f.Cursor != "" && !deliveryIDRe.MatchString(f.Cursor) {
		s.renderError(c, invalid("cursor", "cursor must be the nextCursor of a previous page"))
		return
	}
	ds, next, err := s.store.ListDeliveries(c.Request.Context(), f)
	if err != nil {
		s.renderError(c, err)
		return
	}
	resp := hookDeliveryListResponse{Deliveries: make([]hookDeliveryResponse, len(ds))}
	for i, d := range ds {
		resp.Deliveries[i] = hookDeliveryJSON(d)
	}
	if next != "" {
		resp.NextCursor = &next
	}
	c.JSON(http.StatusOK, resp)
}

func (s *Server) redeliverHook(c *gin.Context) {
	w, err := s.hookForCaller(c)
	var d models.EventDelivery
	if err == nil {
		d, err = s.store.Redeliver(c.Request.Context(), w.ID, c.Param("deliveryId"))
	}
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusAccepted, hookDeliveryJSON(d))
}
