package server

import (
	"strings"

	"github.com/deskforge/deskforge/models"
)

// EventRenderer returns the renderer of events' data (models.Renderer):
// builds and projects exactly as GET /builds/:id and GET /projects/:id
// answer them, links built on publicURL (default http://localhost:8080).
// Install it with DB.Outbox().SetRenderer at start.
func EventRenderer(publicURL string) models.Renderer {
	// No signing key: events' data carry the links that take an API key.
	s := &Server{publicURL: strings.TrimSuffix(publicURL, "/"), links: newLinkSigner(nil, nil)}
	if s.publicURL == "" {
		s.publicURL = "http://localhost:8080"
	}
	return eventRenderer{s}
}

type eventRenderer struct{ s *Server }

// RenderBuild implements models.Renderer.
func (r eventRenderer) RenderBuild(b models.Build) any { return r.s.buildJSON(b) }

// RenderProject implements models.Renderer.
func (r eventRenderer) RenderProject(p models.Project) any { return projectJSON(p) }

// RenderRelease implements models.ReleaseRenderer.
func (r eventRenderer) RenderRelease(rel models.Release, builds []models.Build) any {
	return r.s.releaseJSON(rel, builds, nil)
}
