package models

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/Masterminds/semver/v3"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/templates"
)

// Defaults applied to a new project by ApplyProjectDefaults.
const (
	DefaultWindowWidth  = 1200
	DefaultWindowHeight = 800
	DefaultWorkflow     = "deskforge.yml"
	DefaultRef          = "main"
)

// Limits of project fields.
const (
	MinWindowSize = 200
	MaxWindowSize = 10000
)

var (
	appIDRe      = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z0-9][A-Za-z0-9-]*)+$`)
	repositoryRe = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$`)
	workflowRe   = regexp.MustCompile(`^[A-Za-z0-9._-]+\.ya?ml$`)
)

// PlatformList returns the project's platforms in canonical order.
func (p Project) PlatformList() []string {
	if p.Platforms == "" {
		return nil
	}
	return strings.Split(p.Platforms, ",")
}

// HasPlatform reports whether the project builds for platform.
func (p Project) HasPlatform(platform string) bool {
	return slices.Contains(p.PlatformList(), platform)
}

// IsWebApp reports whether the project is built from the server's builder
// repository (it has no repository of its own).
func (p Project) IsWebApp() bool { return p.Repository == "" }

// JoinPlatforms validates platforms (each one of templates.Platforms, no
// duplicates, at least one) and returns them comma-separated in canonical
// order, as stored in Project.Platforms.
func JoinPlatforms(platforms []string) (string, error) {
	if len(platforms) == 0 {
		return "", Invalid("platforms", "platforms must list at least one of %s", strings.Join(templates.Platforms, ", "))
	}
	seen := map[string]bool{}
	for _, p := range platforms {
		if !slices.Contains(templates.Platforms, p) {
			return "", Invalid("platforms", "platforms must be a subset of %s; %q is not", strings.Join(templates.Platforms, ", "), p)
		}
		if seen[p] {
			return "", Invalid("platforms", "platforms lists %q twice", p)
		}
		seen[p] = true
	}
	var out []string
	for _, p := range templates.Platforms {
		if seen[p] {
			out = append(out, p)
		}
	}
	return strings.Join(out, ","), nil
}

// ApplyProjectDefaults fills the fields a new project may omit: window size
// 1200x800, and for a project with its own repository the workflow file
// (deskforge.yml) and ref (main).
func ApplyProjectDefaults(p *Project) {
	if p.WindowWidth == 0 {
		p.WindowWidth = DefaultWindowWidth
	}
	if p.WindowHeight == 0 {
		p.WindowHeight = DefaultWindowHeight
	}
	if p.Repository != "" {
		if p.Workflow == "" {
			p.Workflow = DefaultWorkflow
		}
		if p.Ref == "" {
			p.Ref = DefaultRef
		}
	}
}

// ValidateProject checks every field of p and returns a *FieldError naming
// the first bad one by its API name.
func ValidateProject(p *Project) error {
	if strings.TrimSpace(p.Name) == "" {
		return Invalid("name", "name is required")
	}
	if err := checkText("name", p.Name, 200); err != nil {
		return err
	}
	if err := checkText("author", p.Author, 200); err != nil {
		return err
	}
	switch {
	case p.URL == "" && p.Repository == "":
		return Invalid("url", "set url (a web app, built from the server's builder repository) or repository (owner/name of the app's own repository)")
	case p.URL != "" && p.Repository != "":
		return Invalid("repository", "set either url (a web app) or repository (an app with its own repository), not both")
	}
	if p.URL != "" {
		if len(p.URL) > 2048 {
			return Invalid("url", "url must be at most 2048 characters")
		}
		if !utf8.ValidString(p.URL) {
			return Invalid("url", "url must be valid UTF-8")
		}
		u, err := url.Parse(p.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Invalid("url", "url must be an absolute http or https URL, e.g. https://example.com")
		}
		if u.User != nil {
			// Not echoed back: the message must not repeat a password.
			return Invalid("url", "url must not hold a user name or password (user:password@host): the app's users would all see it")
		}
	}
	if p.Version != "" {
		if err := CheckVersion("version", p.Version); err != nil {
			return err
		}
	}
	if p.AppID != "" && (len(p.AppID) > 255 || !appIDRe.MatchString(p.AppID)) {
		return Invalid("appId", "appId must be a reverse-DNS identifier such as com.example.myapp")
	}
	if _, err := JoinPlatforms(p.PlatformList()); err != nil {
		return err
	}
	if err := CheckWindowSize("window.width", p.WindowWidth); err != nil {
		return err
	}
	if err := CheckWindowSize("window.height", p.WindowHeight); err != nil {
		return err
	}
	if p.Repository != "" {
		_, name, _ := strings.Cut(p.Repository, "/")
		if !repositoryRe.MatchString(p.Repository) || name == "." || name == ".." {
			return Invalid("repository", "repository must be owner/name, e.g. acme/my-app")
		}
	}
	if p.Workflow != "" && (len(p.Workflow) > 200 || !workflowRe.MatchString(p.Workflow)) {
		return Invalid("workflow", "workflow must be a workflow file name ending in .yml or .yaml, e.g. deskforge.yml")
	}
	if p.Ref != "" && (len(p.Ref) > 255 || !IsRefName(p.Ref)) {
		return Invalid("ref", "ref must be a branch or tag name as git check-ref-format allows, e.g. main or release/1.x")
	}
	if p.Repository == "" && (p.Workflow != "" || p.Ref != "") {
		field := "workflow"
		if p.Workflow == "" {
			field = "ref"
		}
		return Invalid(field, "%s applies only to a project with its own repository; web apps use the server's builder repository", field)
	}
	return nil
}

// CheckWindowSize checks a window dimension (MinWindowSize to
// MaxWindowSize); field names it in the error. An explicit 0 is refused
// like any other value out of range: only an absent size takes the default.
func CheckWindowSize(field string, v int) error {
	if v < MinWindowSize || v > MaxWindowSize {
		return Invalid(field, "%s must be between %d and %d", field, MinWindowSize, MaxWindowSize)
	}
	return nil
}

// IsRefName reports whether ref is a branch or tag name by the rules of
// git check-ref-format --allow-onelevel: no component starting with "." or
// ending in ".lock", no "..", "@{", "//", control characters, space, ~ ^ :
// ? * [ or backslash, not "@", not starting or ending with "/" nor ending
// with ".". It must also be valid UTF-8 (the databases store text).
func IsRefName(ref string) bool {
	if ref == "" || ref == "@" || !utf8.ValidString(ref) ||
		strings.HasPrefix(ref, "/") || strings.HasSuffix(ref, "/") || strings.HasSuffix(ref, ".") ||
		strings.Contains(ref, "..") || strings.Contains(ref, "@{") || strings.Contains(ref, "//") {
		return false
	}
	for _, r := range ref {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			return false
		}
	}
	for _, component := range strings.Split(ref, "/") {
		if strings.HasPrefix(component, ".") || strings.HasSuffix(component, ".lock") {
			return false
		}
	}
	return true
}

// CheckVersion checks that v is a semantic version 2.0 without a leading "v"
// (1.0.0, 2.1.0-beta.1); field names the field in the error.
func CheckVersion(field, v string) error {
	if len(v) > 100 {
		return Invalid(field, "%s must be at most 100 characters", field)
	}
	if _, err := semver.StrictNewVersion(v); err != nil {
		return Invalid(field, "%s must be a semantic version such as 1.0.0 (no leading v), got %q", field, v)
	}
	return nil
}

func checkText(field, s string, max int) error {
	if len(s) > max {
		return Invalid(field, "%s must be at most %d characters", field, max)
	}
	if !utf8.ValidString(s) {
		return Invalid(field, "%s must be valid UTF-8", field)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return Invalid(field, "%s must not contain control characters", field)
		}
	}
	return nil
}

// CreateProject validates p (after ApplyProjectDefaults), gives it an id and
// timestamps, and inserts it.
func (s *Store) CreateProject(ctx context.Context, p *Project) error {
	ApplyProjectDefaults(p)
	if err := ValidateProject(p); err != nil {
		return err
	}
	if p.ID == "" {
		p.ID = NewID("proj")
	}
	now := time.Now().UTC()
	p.CreatedAt, p.UpdatedAt = now, now
	return s.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(p).Error; err != nil {
			return translate(err, "create project")
		}
		return recordProjectEventTx(ctx, tx, EventProjectCreated, *p)
	})
}

// GetProject reads one project; ErrNotFound when it does not exist.
func (s *Store) GetProject(ctx context.Context, id string) (Project, error) {
	var p Project
	err := s.reader(ctx).Where("id = ?", id).Take(&p).Error
	return p, translate(err, "get project "+id)
}

// ProjectExists reports whether a project exists (one indexed lookup, for
// hot paths that need no more).
func (s *Store) ProjectExists(ctx context.Context, id string) (bool, error) {
	var one int
	err := s.db.getHot(ctx, "SELECT 1 FROM projects WHERE id = ?", []any{id}, func(row hotRows) error { return row.Scan(&one) })
	if errors.Is(err, errNoHotRow) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up project %s: %w", id, err)
	}
	return true, nil
}

// ProjectFilter selects projects for ListProjects and CountProjects.
type ProjectFilter struct {
	// ID restricts the list to one project (a project key's view); "" = all.
	ID string
	// Limit is the page size (ListProjects only; at least 1).
	Limit int
	// Cursor is the id of the last project of the previous page; "" = first page.
	Cursor string
}

// ListProjects returns a page of projects, newest first, and the cursor of
// the next page ("" when this is the last page).
func (s *Store) ListProjects(ctx context.Context, f ProjectFilter) ([]Project, string, error) {
	q := s.Gorm(ctx).Model(&Project{})
	if f.ID != "" {
		q = q.Where("id = ?", f.ID)
	}
	if f.Cursor != "" {
		q = q.Where("id < ?", f.Cursor)
	}
	var ps []Project
	if err := q.Order("id DESC").Limit(f.Limit + 1).Find(&ps).Error; err != nil {
		return nil, "", fmt.Errorf("list projects: %w", err)
	}
	next := ""
	if len(ps) > f.Limit {
		ps = ps[:f.Limit]
		next = ps[len(ps)-1].ID
	}
	return ps, next, nil
}

// CountProjects counts the projects f selects (Limit and Cursor ignored).
func (s *Store) CountProjects(ctx context.Context, f ProjectFilter) (int64, error) {
	q := s.Gorm(ctx).Model(&Project{})
	if f.ID != "" {
		q = q.Where("id = ?", f.ID)
	}
	var n int64
	if err := q.Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count projects: %w", err)
	}
	return n, nil
}

// UpdateProject applies change to project id in one transaction, validates
// the result and saves it. change may return an error (e.g. a *FieldError)
// to abort.
func (s *Store) UpdateProject(ctx context.Context, id string, change func(p *Project) error) (Project, error) {
	var p Project
	err := s.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("id = ?", id).Take(&p).Error; err != nil {
			return translate(err, "update project "+id)
		}
		if err := change(&p); err != nil {
			return err
		}
		p.ID = id
		if err := ValidateProject(&p); err != nil {
			return err
		}
		p.UpdatedAt = time.Now().UTC()
		if err := tx.Save(&p).Error; err != nil {
			return translate(err, "update project "+id)
		}
		return recordProjectEventTx(ctx, tx, EventProjectUpdated, p)
	})
	return p, err
}

// DeleteProject deletes a project that has no active (queued or building)
// builds, revoking its API keys and forgetting its idempotency keys. Its
// builds are kept. A project with active builds is a *StateError with code
// "project_has_active_builds".
func (s *Store) DeleteProject(ctx context.Context, id string) error {
	return s.Tx(ctx, func(tx *gorm.DB) error {
		var p Project
		if err := tx.Where("id = ?", id).Take(&p).Error; err != nil {
			return translate(err, "delete project "+id)
		}
		var active int64
		if err := tx.Model(&Build{}).Where("project_id = ? AND status IN ?", id, []string{StatusQueued, StatusBuilding}).
			Count(&active).Error; err != nil {
			return fmt.Errorf("delete project %s: count active builds: %w", id, err)
		}
		if active > 0 {
			return Conflict("project_has_active_builds",
				"project %s has %d queued or building builds; wait for them to finish or cancel them, then delete it", id, active)
		}
		if err := tx.Where("id = ?", id).Delete(&Project{}).Error; err != nil {
			return fmt.Errorf("delete project %s: %w", id, err)
		}
		now := time.Now().UTC()
		if err := tx.Model(&APIKey{}).Where("project_id = ? AND revoked_at IS NULL", id).Update("revoked_at", now).Error; err != nil {
			return fmt.Errorf("delete project %s: revoke its keys: %w", id, err)
		}
		if err := tx.Where("project_id = ?", id).Delete(&IdempotencyKey{}).Error; err != nil {
			return fmt.Errorf("delete project %s: forget idempotency keys: %w", id, err)
		}
		return recordProjectEventTx(ctx, tx, EventProjectDeleted, p)
	})
}
