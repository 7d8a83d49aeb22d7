package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

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
		s.renderError(c, &apiError{http.StatusUnauthorized, codeUnauthorized, authHeaderProblem(header), ""})
		return
	}
	k, err := s.keys.authenticate(c.Request.Context(), s.store, strings.TrimSpace(key))
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

// authHeaderProblem says what is wrong with an Authorization header that
// does not carry "Bearer <key>". It never repeats the header (it may hold
// a key).
func authHeaderProblem(header string) string {
	const want = "send the header Authorization: Bearer df_…"
	scheme, _, _ := strings.Cut(strings.TrimSpace(header), " ")
	switch {
	case header == "":
		return "missing API key: " + want
	case strings.HasPrefix(header, models.APIKeyPrefix):
		return "malformed Authorization header: the key needs the Bearer scheme in front of it; " + want
	case !strings.EqualFold(scheme, "Bearer"):
		return "malformed Authorization header: only the Bearer scheme is accepted; " + want
	}
	return "malformed Authorization header: Bearer is not followed by a key; " + want
}

// keyCache remembers authenticated keys for a short time so that a request
// costs no key lookup. Revocations through this server (DELETE /apikeys/:id,
// DELETE /projects/:id) take effect at once; a key revoked elsewhere (the
// command line, another replica) stops working within the TTL. Unknown keys
// are never cached.
type keyCache struct {
	ttl     time.Duration
	mu      sync.Mutex
	entries map[string]cachedKey // by the key's SHA-256
}

type cachedKey struct {
	key     models.APIKey
	expires time.Time
}

// maxCachedKeys bounds the cache; when full it starts over.
const maxCachedKeys = 10000

func newKeyCache(ttl time.Duration) *keyCache {
	return &keyCache{ttl: ttl, entries: map[string]cachedKey{}}
}

func (kc *keyCache) authenticate(ctx context.Context, store *models.Store, plaintext string) (models.APIKey, error) {
	if kc.ttl <= 0 {
		return store.AuthenticateAPIKey(ctx, plaintext)
	}
	hash := models.HashAPIKey(plaintext)
	now := time.Now()
	kc.mu.Lock()
	e, ok := kc.entries[hash]
	kc.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.key, nil
	}
	k, err := store.AuthenticateAPIKey(ctx, plaintext)
	if err != nil {
		kc.mu.Lock()
		delete(kc.entries, hash)
		kc.mu.Unlock()
		return k, err
	}
	kc.mu.Lock()
	if len(kc.entries) >= maxCachedKeys {
		kc.entries = map[string]cachedKey{}
	}
	kc.entries[hash] = cachedKey{key: k, expires: now.Add(kc.ttl)}
	kc.mu.Unlock()
	return k, nil
}

// forget drops the cached keys for which drop is true.
func (kc *keyCache) forget(drop func(models.APIKey) bool) {
	kc.mu.Lock()
	defer kc.mu.Unlock()
	for h, e := range kc.entries {
		if drop(e.key) {
			delete(kc.entries, h)
		}
	}
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

// requireProjectForCaller checks that project id exists and the caller may
// see it; models.ErrNotFound otherwise.
func (s *Server) requireProjectForCaller(c *gin.Context, id string) error {
	if !canSeeProject(c, id) {
		return fmt.Errorf("project %s: %w", id, models.ErrNotFound)
	}
	ok, err := s.store.ProjectExists(c.Request.Context(), id)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("project %s: %w", id, models.ErrNotFound)
	}
	return nil
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
