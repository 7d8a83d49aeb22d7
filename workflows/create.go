package workflows

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/templates"
)

// DefaultArch is the architecture of a build request that names none.
const DefaultArch = "x64"

// MaxIdempotencyKeyLen is the longest Idempotency-Key accepted.
const MaxIdempotencyKeyLen = 255

// IdempotencyKeyField names the Idempotency-Key header in a *models.FieldError.
const IdempotencyKeyField = "Idempotency-Key"

// CreateBuildRequest asks for a new build of a project.
type CreateBuildRequest struct {
	ProjectID string
	// Platform is required: mac, windows or linux, and one of the project's
	// platforms.
	Platform string
	// Arch is x64 or arm64; "" means DefaultArch.
	Arch string
	// Version is a semantic version 2.0 without a leading "v"; "" means the
	// project's version.
	Version string
	// IdempotencyKey, when set, makes a repeated request (same key, same
	// fields, within models.IdempotencyWindow) return the build the first
	// one created instead of creating another.
	IdempotencyKey string
	// RetryOf names the build this one retries ("" for a new build).
	RetryOf string
}

// idempotencyHash identifies the request's content for an Idempotency-Key:
// the fields as the caller gave them, after the arch default.
func (r CreateBuildRequest) idempotencyHash() string {
	data, _ := json.Marshal([]string{r.Platform, r.Arch, r.Version, r.RetryOf})
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// errKeyTaken marks a lost race for an idempotency key inside CreateBuild.
var errKeyTaken = errors.New("idempotency key taken concurrently")

// CreateBuild validates req and creates a queued build. In one transaction it
// inserts the build row (with a snapshot of what will be dispatched: repository,
// workflow, ref, runner, template config and asset name), the idempotency
// record, the "queued" transition with its log entry, and the River job that
// dispatches the build, so either all of them exist or none does.
//
// Errors: *models.FieldError (wrapping models.ErrInvalid) for invalid input;
// models.ErrNotFound for an unknown project; a *models.StateError (wrapping
// models.ErrConflict) with code "idempotency_key_reused" when the
// Idempotency-Key was used with a different request, or "builder_not_configured"
// when a web app cannot be built because the server has no builder repository.
// It is safe for concurrent use; concurrent identical requests with the same
// key create exactly one build.
func (e *Engine) CreateBuild(ctx context.Context, req CreateBuildRequest) (models.Build, error) {
	if req.Arch == "" {
		req.Arch = DefaultArch
	}
	if err := validateBuildRequest(req); err != nil {
		return models.Build{}, err
	}
	if req.IdempotencyKey != "" {
		b, err := e.replayIdempotent(ctx, req)
		if err == nil || !errors.Is(err, models.ErrNotFound) {
			return b, err
		}
	}
	project, err := e.store.GetProject(ctx, req.ProjectID)
	if err != nil {
		return models.Build{}, fmt.Errorf("create build: %w", err)
	}
	b, err := e.buildFromRequest(project, req)
	if err != nil {
		return models.Build{}, err
	}

	message := "Build queued"
	if req.RetryOf != "" {
		message = "Build queued (retry of " + req.RetryOf + ")"
	}
	err = e.store.Tx(ctx, func(tx *gorm.DB) error {
		if req.IdempotencyKey != "" {
			k := models.IdempotencyKey{
				ProjectID:   req.ProjectID,
				Key:         req.IdempotencyKey,
				RequestHash: req.idempotencyHash(),
				BuildID:     b.ID,
				CreatedAt:   b.CreatedAt,
			}
			if err := models.ClaimIdempotencyKeyTx(ctx, tx, k, b.CreatedAt.Add(-models.IdempotencyWindow)); err != nil {
				if errors.Is(err, models.ErrConflict) {
					return errKeyTaken
				}
				return err
			}
		}
		if err := refusePublishedTx(ctx, tx, b.ProjectID, b.Version); err != nil {
			return err
		}
		return e.insertQueuedBuildTx(ctx, tx, &b, message)
	})
	if errors.Is(err, errKeyTaken) {
		// Another request with the same key committed first: answer as a
		// replay of it.
		return e.replayIdempotent(ctx, req)
	}
	if err != nil {
		return models.Build{}, fmt.Errorf("create build: %w", err)
	}
	if e.log != nil {
		e.log.InfoContext(ctx, "build queued", "build_id", b.ID, "project_id", b.ProjectID,
			"platform", b.Platform, "arch", b.Arch, "version", b.Version)
	}
	return b, nil
}

// insertQueuedBuildTx inserts a queued build inside tx with its "queued"
// transition (log entry and event) and its dispatch job.
func (e *Engine) insertQueuedBuildTx(ctx context.Context, tx *gorm.DB, b *models.Build, message string) error {
	if err := models.CreateBuildTx(ctx, tx, b); err != nil {
		return err
	}
	if err := models.RecordTransitionTx(ctx, tx, b.ID, "", models.StatusQueued, "", b.CreatedAt, models.LevelInfo, message); err != nil {
		return err
	}
	return e.insertTx(ctx, tx, DispatchBuildArgs{BuildID: b.ID})
}

// refusePublishedTx answers 409 version_published for a version whose
// release was published: it is immutable.
func refusePublishedTx(ctx context.Context, tx *gorm.DB, projectID, version string) error {
	published, err := models.VersionPublished(ctx, tx, projectID, version)
	if err != nil {
		return err
	}
	if published {
		return models.ErrVersionPublished(version)
	}
	return nil
}

// replayIdempotent returns the build created earlier for req's idempotency
// key; models.ErrNotFound when the key is unused (or expired).
func (e *Engine) replayIdempotent(ctx context.Context, req CreateBuildRequest) (models.Build, error) {
	notBefore := e.clock.Now().Add(-models.IdempotencyWindow)
	k, err := e.store.FindIdempotencyKey(ctx, req.ProjectID, req.IdempotencyKey, notBefore)
	if err != nil {
		return models.Build{}, err
	}
	if k.RequestHash != req.idempotencyHash() {
		return models.Build{}, models.Conflict("idempotency_key_reused",
			"Idempotency-Key %q was already used with a different request body; use a new key for a different build", req.IdempotencyKey)
	}
	b, err := e.store.GetBuild(ctx, k.BuildID)
	if err != nil {
		return models.Build{}, fmt.Errorf("replay idempotency key: %w", err)
	}
	return b, nil
}

func validateBuildRequest(req CreateBuildRequest) error {
	if req.Platform == "" {
		return models.Invalid("platform", "platform is required: one of %s", strings.Join(templates.Platforms, ", "))
	}
	if !slices.Contains(templates.Platforms, req.Platform) {
		return models.Invalid("platform", "platform must be one of %s", strings.Join(templates.Platforms, ", "))
	}
	if !slices.Contains(templates.Arches, req.Arch) {
		return models.Invalid("arch", "arch must be one of %s", strings.Join(templates.Arches, ", "))
	}
	if req.Version != "" {
		if err := models.CheckVersion("version", req.Version); err != nil {
			return err
		}
	}
	if len(req.IdempotencyKey) > MaxIdempotencyKeyLen {
		return models.Invalid(IdempotencyKeyField, "Idempotency-Key must be at most %d characters", MaxIdempotencyKeyLen)
	}
	for _, r := range req.IdempotencyKey {
		if r < 0x20 || r > 0x7e {
			return models.Invalid(IdempotencyKeyField, "Idempotency-Key must be printable ASCII")
		}
	}
	return nil
}

// buildFromRequest checks req against the project and returns the queued build row
// with everything the dispatch needs snapshotted.
func (e *Engine) buildFromRequest(project models.Project, req CreateBuildRequest) (models.Build, error) {
	if !project.HasPlatform(req.Platform) {
		return models.Build{}, models.Invalid("platform", "platform must be one of the project's platforms: %s",
			strings.Join(project.PlatformList(), ", "))
	}
	version := req.Version
	if version == "" {
		version = project.Version
	}
	if version == "" {
		return models.Build{}, models.Invalid("version",
			"version is required: the project has no default version; pass a semantic version such as 1.0.0")
	}
	if strings.Contains(version, "+") {
		// GitHub renames special characters in asset names ('+' may be
		// stored as '.' or '-'), so the installer could not be found by its
		// name after the run: refuse now rather than fail after the build.
		return models.Build{}, models.Invalid("version",
			"version %q has build metadata (+…), which GitHub release asset names cannot carry; use a pre-release such as 1.0.0-build.5", version)
	}
	runner := e.opts.Runners.Runner(req.Platform, req.Arch)
	if runner == "" {
		return models.Build{}, models.Invalid("arch",
			"no runner is configured for %s/%s on this server (see DESKFORGE_RUNNERS)", req.Platform, req.Arch)
	}
	repo, workflow, ref := project.Repository, project.Workflow, project.Ref
	if project.IsWebApp() {
		if e.opts.BuilderRepo == "" {
			return models.Build{}, models.Conflict("builder_not_configured",
				"project %s is a web app, but this server has no builder repository (DESKFORGE_BUILDER_REPO)", project.ID)
		}
		repo, workflow, ref = e.opts.BuilderRepo, e.opts.BuilderWorkflow, e.opts.BuilderRef
	}
	assetName := templates.ProjectAssetName(project.ID, project.Name, version, req.Platform, req.Arch)
	var updateEndpoint string
	if project.FeatureAutoUpdate {
		updateEndpoint = templates.UpdateEndpoint(e.opts.PublicURL, project.ID)
	}
	config, err := json.Marshal(templates.BuildConfig{
		UpdateEndpoint: updateEndpoint,
		Name:           project.Name,
		URL:            project.URL,
		Author:         project.Author,
		AppID:          project.AppID,
		AssetName:      assetName,
		Window: templates.WindowConfig{
			Width:     project.WindowWidth,
			Height:    project.WindowHeight,
			Resizable: project.WindowResizable,
		},
		Features: templates.Features{
			AutoUpdate: project.FeatureAutoUpdate,
			Tray:       project.FeatureTray,
			MenuBar:    project.FeatureMenuBar,
		},
	})
	if err != nil {
		return models.Build{}, fmt.Errorf("create build: encode config: %w", err)
	}
	now := e.clock.Now().UTC()
	b := models.Build{
		ID:         models.NewID("build"),
		ProjectID:  project.ID,
		Version:    version,
		Platform:   req.Platform,
		Arch:       req.Arch,
		Status:     models.StatusQueued,
		ForgeHost:  e.opts.ForgeHost,
		CreatedAt:  now,
		UpdatedAt:  now,
		Repository: repo,
		Workflow:   workflow,
		Ref:        ref,
		Runner:     runner,
		Config:     string(config),
		AssetName:  assetName,
	}
	if req.RetryOf != "" {
		retryOf := req.RetryOf
		b.RetryOf = &retryOf
	}
	return b, nil
}
