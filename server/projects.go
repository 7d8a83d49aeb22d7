package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/deskforge/deskforge/models"
)

// projectResponse is a project as the API shows it. Optional strings that
// are not set are null.
type projectResponse struct {
	ID         string           `json:"id"`
	Name       string           `json:"name"`
	URL        *string          `json:"url"`
	Author     *string          `json:"author"`
	Version    *string          `json:"version"`
	AppID      *string          `json:"appId"`
	Platforms  []string         `json:"platforms"`
	Window     windowResponse   `json:"window"`
	Features   featuresResponse `json:"features"`
	Repository *string          `json:"repository"`
	Workflow   *string          `json:"workflow"`
	Ref        *string          `json:"ref"`
	CreatedAt  string           `json:"createdAt"`
	UpdatedAt  string           `json:"updatedAt"`
}

type windowResponse struct {
	Width     int  `json:"width"`
	Height    int  `json:"height"`
	Resizable bool `json:"resizable"`
}

type featuresResponse struct {
	AutoUpdate bool `json:"autoUpdate"`
	Tray       bool `json:"tray"`
	MenuBar    bool `json:"menuBar"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// ProjectJSON renders a project in the API's shape (also used by the
// command line's project subcommand).
func ProjectJSON(p models.Project) any { return projectJSON(p) }

func projectJSON(p models.Project) projectResponse {
	platforms := p.PlatformList()
	if platforms == nil {
		platforms = []string{}
	}
	return projectResponse{
		ID:         p.ID,
		Name:       p.Name,
		URL:        nullable(p.URL),
		Author:     nullable(p.Author),
		Version:    nullable(p.Version),
		AppID:      nullable(p.AppID),
		Platforms:  platforms,
		Window:     windowResponse{Width: p.WindowWidth, Height: p.WindowHeight, Resizable: p.WindowResizable},
		Features:   featuresResponse{AutoUpdate: p.FeatureAutoUpdate, Tray: p.FeatureTray, MenuBar: p.FeatureMenuBar},
		Repository: nullable(p.Repository),
		Workflow:   nullable(p.Workflow),
		Ref:        nullable(p.Ref),
		CreatedAt:  formatTime(p.CreatedAt),
		UpdatedAt:  formatTime(p.UpdatedAt),
	}
}

// ProjectInput is the body of POST /projects and PATCH /projects/:id: every
// field optional; on PATCH only the fields present change (window and
// features merge field by field). It is exported for the command line.
type ProjectInput struct {
	Name       *string        `json:"name"`
	URL        *string        `json:"url"`
	Author     *string        `json:"author"`
	Version    *string        `json:"version"`
	AppID      *string        `json:"appId"`
	Platforms  *[]string      `json:"platforms"`
	Window     *WindowInput   `json:"window"`
	Features   *FeaturesInput `json:"features"`
	Repository *string        `json:"repository"`
	Workflow   *string        `json:"workflow"`
	Ref        *string        `json:"ref"`
}

// WindowInput is the window part of ProjectInput.
type WindowInput struct {
	Width     *int  `json:"width"`
	Height    *int  `json:"height"`
	Resizable *bool `json:"resizable"`
}

// FeaturesInput is the features part of ProjectInput.
type FeaturesInput struct {
	AutoUpdate *bool `json:"autoUpdate"`
	Tray       *bool `json:"tray"`
	MenuBar    *bool `json:"menuBar"`
}

// Apply copies the fields present in in onto p.
func (in ProjectInput) Apply(p *models.Project) error {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&p.Name, in.Name)
	set(&p.URL, in.URL)
	set(&p.Author, in.Author)
	set(&p.Version, in.Version)
	set(&p.AppID, in.AppID)
	set(&p.Repository, in.Repository)
	set(&p.Workflow, in.Workflow)
	set(&p.Ref, in.Ref)
	if in.Platforms != nil {
		joined, err := models.JoinPlatforms(*in.Platforms)
		if err != nil {
			return err
		}
		p.Platforms = joined
	}
	if w := in.Window; w != nil {
		// Checked here, not only by ValidateProject: a 0 given here would
		// otherwise be taken for an absent size and get the default.
		if w.Width != nil {
			if err := models.CheckWindowSize("window.width", *w.Width); err != nil {
				return err
			}
			p.WindowWidth = *w.Width
		}
		if w.Height != nil {
			if err := models.CheckWindowSize("window.height", *w.Height); err != nil {
				return err
			}
			p.WindowHeight = *w.Height
		}
		if w.Resizable != nil {
			p.WindowResizable = *w.Resizable
		}
	}
	if f := in.Features; f != nil {
		if f.AutoUpdate != nil {
			p.FeatureAutoUpdate = *f.AutoUpdate
		}
		if f.Tray != nil {
			p.FeatureTray = *f.Tray
		}
		if f.MenuBar != nil {
			p.FeatureMenuBar = *f.MenuBar
		}
	}
	return nil
}

// NewProject returns the project a create request describes, with the
// defaults of a new project (resizable window).
func (in ProjectInput) NewProject() (models.Project, error) {
	p := models.Project{WindowResizable: true}
	if in.Platforms == nil {
		return p, models.Invalid("platforms", "platforms is required: a list of mac, windows, linux")
	}
	err := in.Apply(&p)
	return p, err
}

type projectListResponse struct {
	Projects   []projectResponse `json:"projects"`
	Total      int64             `json:"total"`
	NextCursor *string           `json:"nextCursor"`
}

func (s *Server) listProjects(c *gin.Context) {
	limit, err := pageSize(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	f := models.ProjectFilter{Limit: limit, Cursor: c.Query("cursor")}
	if f.Cursor != "" && !models.IsID("proj", f.Cursor) {
		s.renderError(c, invalid("cursor", "cursor must be the nextCursor of a previous page"))
		return
	}
	if !isAdmin(c) {
		// A project key sees its own project only.
		f.ID = *callerOf(c).ProjectID
	}
	ctx := c.Request.Context()
	projects, next, err := s.store.ListProjects(ctx, f)
	if err != nil {
		s.renderError(c, err)
		return
	}
	total, err := s.store.CountProjects(ctx, f)
	if err != nil {
		s.renderError(c, err)
		return
	}
	resp := projectListResponse{Projects: make([]projectResponse, len(projects)), Total: total}
	for i, p := range projects {
		resp.Projects[i] = projectJSON(p)
	}
	if next != "" {
		resp.NextCursor = &next
	}
	c.JSON(http.StatusOK, resp)
}

func (s *Server) getProject(c *gin.Context) {
	p, err := s.projectForCaller(c, c.Param("id"))
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusOK, projectJSON(p))
}

func (s *Server) createProject(c *gin.Context) {
	var in ProjectInput
	if err := decodeJSON(c, &in); err != nil {
		s.renderError(c, err)
		return
	}
	p, err := in.NewProject()
	if err != nil {
		s.renderError(c, err)
		return
	}
	if err := s.store.CreateProject(c.Request.Context(), &p); err != nil {
		s.renderError(c, err)
		return
	}
	s.logFor(c).InfoContext(c.Request.Context(), "project created", "project_id", p.ID)
	c.Header("Location", s.publicURL+"/projects/"+p.ID)
	c.JSON(http.StatusCreated, projectJSON(p))
}

func (s *Server) updateProject(c *gin.Context) {
	var in ProjectInput
	if err := decodeJSON(c, &in); err != nil {
		s.renderError(c, err)
		return
	}
	p, err := s.store.UpdateProject(c.Request.Context(), c.Param("id"), in.Apply)
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.JSON(http.StatusOK, projectJSON(p))
}

func (s *Server) deleteProject(c *gin.Context) {
	id := c.Param("id")
	if err := s.store.DeleteProject(c.Request.Context(), id); err != nil {
		s.renderError(c, err)
		return
	}
	s.keys.forget(func(cached models.APIKey) bool { return cached.ProjectID != nil && *cached.ProjectID == id })
	s.logFor(c).InfoContext(c.Request.Context(), "project deleted", "project_id", id)
	c.Status(http.StatusNoContent)
}
