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

// CreateReleaseRequest asks for a release: one version of a project built for
// a set of targets.
type CreateReleaseRequest struct {
	ProjectID string
	// Version is a semantic version without "v"; "" means the project's.
	Version string
	// Targets are "platform/arch" (e.g. "mac/arm64"); empty means every
	// platform of the project × every arch.
	Targets []string
	// Notes are the release notes (GitHub release body, update manifests).
	Notes string
	// IdempotencyKey works as for CreateBuild.
	IdempotencyKey string
}

// MaxReleaseNotes is the longest release notes accepted, in bytes.
const MaxReleaseNotes = 64 << 10

func (r CreateReleaseRequest) idempotencyHash() string {
	data, _ := json.Marshal(append([]string{"release", r.Version, r.Notes}, r.Targets...))
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// AllTargets returns every "platform/arch" of the given platforms.
func AllTargets(platforms []string) []string {
	var out []string
	for _, p := range platforms {
		for _, a := range templates.Arches {
			out = append(out, p+"/"+a)
		}
	}
	return out
}

// CreateRelease validates req and creates a queued release and one queued
// build per target, with their dispatch jobs, in one transaction.
//
// Errors: *models.FieldError for invalid input (naming "version",
// "targets[i]" or "notes"); models.ErrNotFound for an unknown project;
// *models.StateError "version_published" when the version was published,
// "idempotency_key_reused" or "builder_not_configured" as for CreateBuild.
func (e *Engine) CreateRelease(ctx context.Context, req CreateReleaseRequest) (models.Release, error) {
	if req.Version != "" {
		if err := models.CheckVersion("version", req.Version); err != nil {
			return models.Release{}, err
		}
	}
	if len(req.Notes) > MaxReleaseNotes {
		return models.Release{}, models.Invalid("notes", "notes must be at most %d bytes", MaxReleaseNotes)
	}
	if err := validateBuildRequest(CreateBuildRequest{Platform: templates.Platforms[0], Arch: DefaultArch, IdempotencyKey: req.IdempotencyKey}); err != nil {
		return models.Release{}, err
	}
	if req.IdempotencyKey != "" {
		r, err := e.replayRelease(ctx, req)
		if err == nil || !errors.Is(err, models.ErrNotFound) {
			return r, err
		}
	}
	project, err := e.store.GetProject(ctx, req.ProjectID)
	if err != nil {
		return models.Release{}, fmt.Errorf("create release: %w", err)
	}
	targets, err := releaseTargets(project, req.Targets)
	if err != nil {
		return models.Release{}, err
	}
	now := e.clock.Now().UTC()
	rel := models.Release{
		ID: models.NewID("rel"), ProjectID: project.ID, Version: cmpOr(req.Version, project.Version),
		Targets: strings.Join(targets, ","), Notes: req.Notes, Status: models.StatusQueued,
		CreatedAt: now, UpdatedAt: now,
	}
	builds := make([]models.Build, len(targets))
	for i, t := range targets {
		platform, arch, _ := strings.Cut(t, "/")
		b, err := e.buildFromRequest(project, CreateBuildRequest{ProjectID: project.ID, Platform: platform, Arch: arch, Version: rel.Version})
		if err != nil {
			return models.Release{}, err
		}
		b.ReleaseID = &rel.ID
		builds[i] = b
	}
	err = e.store.Tx(ctx, func(tx *gorm.DB) error {
		if req.IdempotencyKey != "" {
			k := models.IdempotencyKey{ProjectID: project.ID, Key: req.IdempotencyKey, RequestHash: req.idempotencyHash(), BuildID: rel.ID, CreatedAt: now}
			if err := models.ClaimIdempotencyKeyTx(ctx, tx, k, now.Add(-models.IdempotencyWindow)); err != nil {
				if errors.Is(err, models.ErrConflict) {
					return errKeyTaken
				}
				return err
			}
		}
		if err := refusePublishedTx(ctx, tx, project.ID, rel.Version); err != nil {
			return err
		}
		if err := models.CreateReleaseTx(ctx, tx, &rel); err != nil {
			return err
		}
		for i := range builds {
			if err := e.insertQueuedBuildTx(ctx, tx, &builds[i], "Build queued for release "+rel.ID+" (v"+rel.Version+")"); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errKeyTaken) {
		return e.replayRelease(ctx, req)
	}
	if err != nil {
		return models.Release{}, fmt.Errorf("create release: %w", err)
	}
	if e.log != nil {
		e.log.InfoContext(ctx, "release queued", "release_id", rel.ID, "project_id", rel.ProjectID,
			"version", rel.Version, "targets", rel.Targets)
	}
	return rel, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// releaseTargets validates requested targets against the project (default:
// all of its platforms × arches).
func releaseTargets(project models.Project, requested []string) ([]string, error) {
	allowed := AllTargets(project.PlatformList())
	if len(requested) == 0 {
		return allowed, nil
	}
	seen := map[string]bool{}
	for i, t := range requested {
		field := fmt.Sprintf("targets[%d]", i)
		if !slices.Contains(allowed, t) {
			return nil, models.Invalid(field, "%s must be one of %s", field, strings.Join(allowed, ", "))
		}
		if seen[t] {
			return nil, models.Invalid(field, "%s repeats the target %s", field, t)
		}
		seen[t] = true
	}
	return requested, nil
}

func (e *Engine) replayRelease(ctx context.Context, req CreateReleaseRequest) (models.Release, error) {
	k, err := e.store.FindIdempotencyKey(ctx, req.ProjectID, req.IdempotencyKey, e.clock.Now().Add(-models.IdempotencyWindow))
	if err != nil {
		return models.Release{}, err
	}
	if k.RequestHash != req.idempotencyHash() {
		return models.Release{}, models.Conflict("idempotency_key_reused",
			"Idempotency-Key %q was already used with a different request body; use a new key for a different release", req.IdempotencyKey)
	}
	r, err := e.store.GetRelease(ctx, k.BuildID)
	if err != nil {
		return models.Release{}, fmt.Errorf("replay idempotency key: %w", err)
	}
	return r, nil
}

// CancelRelease cancels every target build of a release that is not
// terminal yet (see CancelBuild); the release turns cancelled when they are.
// A release with nothing left to cancel returns *models.StateError
// "release_not_running".
func (e *Engine) CancelRelease(ctx context.Context, id string) (models.Release, error) {
	builds, err := e.store.ReleaseBuilds(ctx, id)
	if err != nil {
		return models.Release{}, err
	}
	cancelled := 0
	for _, b := range models.CurrentBuilds(builds) {
		if models.IsTerminal(b.Status) {
			continue
		}
		if _, err := e.CancelBuild(ctx, b.ID); err != nil && !errors.Is(err, models.ErrConflict) {
			return models.Release{}, fmt.Errorf("cancel release %s: %w", id, err)
		}
		cancelled++
	}
	r, err := e.store.GetRelease(ctx, id)
	if err != nil {
		return r, err
	}
	if cancelled == 0 {
		return r, models.Conflict("release_not_running", "release %s is %s: it has no build left to cancel", id, r.Status)
	}
	return r, nil
}

// RetryRelease creates a new build for each target of a failed or cancelled
// release whose current build failed or was cancelled (succeeded targets
// are kept), in one transaction; the release is building again. Any other
// status returns *models.StateError "release_not_retryable".
func (e *Engine) RetryRelease(ctx context.Context, id string) (models.Release, error) {
	rel, err := e.store.GetRelease(ctx, id)
	if err != nil {
		return rel, err
	}
	project, err := e.store.GetProject(ctx, rel.ProjectID)
	if err != nil {
		return rel, fmt.Errorf("retry release %s: %w", id, err)
	}
	err = e.store.Tx(ctx, func(tx *gorm.DB) error {
		cur, err := models.SyncReleaseTx(ctx, tx, id, e.clock.Now())
		if err != nil {
			return err
		}
		if cur.Status != models.StatusFailed && cur.Status != models.StatusCancelled {
			return models.Conflict("release_not_retryable", "release %s is %s: only a failed or cancelled release can be retried", id, cur.Status)
		}
		var builds []models.Build
		if err := tx.WithContext(ctx).Where("release_id = ?", id).Find(&builds).Error; err != nil {
			return fmt.Errorf("builds of release %s: %w", id, err)
		}
		for _, old := range models.CurrentBuilds(builds) {
			if old.Status != models.StatusFailed && old.Status != models.StatusCancelled {
				continue
			}
			b, err := e.buildFromRequest(project, CreateBuildRequest{ProjectID: project.ID, Platform: old.Platform, Arch: old.Arch, Version: rel.Version, RetryOf: old.ID})
			if err != nil {
				return err
			}
			b.ReleaseID = &rel.ID
			if err := e.insertQueuedBuildTx(ctx, tx, &b, "Build queued (retry of "+old.ID+" for release "+rel.ID+")"); err != nil {
				return err
			}
		}
		rel, err = models.SyncReleaseTx(ctx, tx, id, e.clock.Now())
		return err
	})
	if err != nil {
		return models.Release{}, fmt.Errorf("retry release %s: %w", id, err)
	}
	return rel, nil
}
