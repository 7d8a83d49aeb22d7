package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/templates"
)

// Names of the files a publication adds to the GitHub release.
const (
	ChecksumsAsset     = "SHA256SUMS"
	TauriManifestAsset = "latest.json"
)

// TauriPlatformKey is the key of platform/arch in Tauri v2's updater
// manifests ("darwin-aarch64", "windows-x86_64", …).
func TauriPlatformKey(platform, arch string) string {
	os := map[string]string{"mac": "darwin", "windows": "windows", "linux": "linux"}[platform]
	cpu := map[string]string{"x64": "x86_64", "arm64": "aarch64"}[arch]
	return os + "-" + cpu
}

// TauriPlatform is one entry of a Tauri v2 static update manifest.
type TauriPlatform struct {
	Signature string `json:"signature"`
	URL       string `json:"url"`
}

// TauriManifest is Tauri v2's static updater JSON (latest.json).
type TauriManifest struct {
	Version   string                   `json:"version"`
	Notes     string                   `json:"notes"`
	PubDate   string                   `json:"pub_date"`
	Platforms map[string]TauriPlatform `json:"platforms"`
}

// publishWorker publishes a release whose targets all succeeded.
type publishWorker struct {
	river.WorkerDefaults[models.PublishReleaseArgs]
	engine *Engine
}

// PublishJobTimeout bounds one attempt of a publication. It is longer than
// JobTimeout because an Electron release's manifests hash every installer
// and updater file it lists (hundreds of megabytes each) read back from
// GitHub.
const PublishJobTimeout = 30 * time.Minute

// Timeout implements river.Worker.
func (w *publishWorker) Timeout(*river.Job[models.PublishReleaseArgs]) time.Duration {
	return PublishJobTimeout
}

// Work implements river.Worker.
func (w *publishWorker) Work(ctx context.Context, job *river.Job[models.PublishReleaseArgs]) error {
	err := w.engine.PublishRelease(ctx, job.Args.ReleaseID)
	var refused *publishRefusedError
	if errors.As(err, &refused) {
		return river.JobCancel(err)
	}
	return err
}

// publishRefusedError is a publication that can never succeed as things
// stand (a missing updater signature): the job stops, nothing is published.
type publishRefusedError struct{ msg string }

func (e *publishRefusedError) Error() string { return e.msg }

// PublishRelease uploads SHA256SUMS and, for projects with
// features.autoUpdate, the update manifests (latest.json for Tauri projects
// and web apps, latest*.yml for Electron projects) to the release's GitHub
// release, then
// publishes it and records it published. It is idempotent: files already
// uploaded (by an attempt that crashed before publishing) are kept, since
// their content is a function of the release; a published release is left
// alone. A release that is not successful is never published.
func (e *Engine) PublishRelease(ctx context.Context, id string) error {
	rel, err := e.store.GetRelease(ctx, id)
	if err != nil {
		return fmt.Errorf("publish release %s: %w", id, err)
	}
	if rel.PublishedAt != nil {
		return nil
	}
	if rel.Status != models.StatusSuccess {
		e.logInfo(ctx, "release not published: not successful", "release_id", id, "status", rel.Status)
		return nil
	}
	all, err := e.store.ReleaseBuilds(ctx, id)
	if err != nil {
		return fmt.Errorf("publish release %s: %w", id, err)
	}
	builds := models.CurrentBuilds(all)
	if len(builds) == 0 {
		return fmt.Errorf("publish release %s: it has no builds", id)
	}
	project, err := e.store.GetProject(ctx, rel.ProjectID)
	if err != nil {
		return fmt.Errorf("publish release %s: %w", id, err)
	}
	repo, tag := builds[0].Repository, templates.ReleaseTag(rel.Version)

	sums, err := e.checksums(ctx, builds)
	if err != nil {
		return fmt.Errorf("publish release %s: %w", id, err)
	}
	if err := e.ensureAsset(ctx, repo, tag, ChecksumsAsset, "text/plain", sums); err != nil {
		return fmt.Errorf("publish release %s: %w", id, err)
	}
	if project.FeatureAutoUpdate && !usesElectron(project) {
		manifest, err := e.tauriManifest(ctx, rel, builds)
		if err != nil {
			return fmt.Errorf("publish release %s: %w", id, err)
		}
		if err := e.ensureAsset(ctx, repo, tag, TauriManifestAsset, "application/json", manifest); err != nil {
			return fmt.Errorf("publish release %s: %w", id, err)
		}
	}
	if project.FeatureAutoUpdate && usesElectron(project) {
		manifests, err := e.electronManifests(ctx, rel, builds)
		if err != nil {
			return fmt.Errorf("publish release %s: %w", id, err)
		}
		for _, name := range slices.Sorted(maps.Keys(manifests)) {
			if err := e.ensureAsset(ctx, repo, tag, name, "text/yaml", manifests[name]); err != nil {
				return fmt.Errorf("publish release %s: %w", id, err)
			}
		}
	}
	htmlURL, err := e.forge.PublishRelease(ctx, repo, tag, rel.Notes)
	if err != nil {
		return fmt.Errorf("publish release %s: %w", id, err)
	}
	now := e.clock.Now()
	err = e.store.Tx(ctx, func(tx *gorm.DB) error {
		first, err := models.MarkReleasePublishedTx(ctx, tx, id, htmlURL, now)
		if err == nil && first {
			e.logInfo(ctx, "release published", "release_id", id, "project_id", rel.ProjectID, "version", rel.Version, "url", htmlURL)
		}
		return err
	})
	if err != nil {
		return err
	}
	// The release's files (checksums, manifests, updater files) are read
	// back once now, so GET /releases/:id and the update server need not;
	// should it fail, the first reader records them (ReleaseFiles).
	if err := e.RecordReleaseFiles(ctx, id); err != nil {
		e.logInfo(ctx, "release files not recorded yet", "release_id", id, "err", err)
	}
	return nil
}

func (e *Engine) logInfo(ctx context.Context, msg string, args ...any) {
	if e.log != nil {
		e.log.InfoContext(ctx, msg, args...)
	}
}

// checksums is SHA256SUMS: "<sha256>  <name>" per installer, sorted by name,
// as sha256sum writes it.
func (e *Engine) checksums(ctx context.Context, builds []models.Build) ([]byte, error) {
	lines := make([]string, 0, len(builds))
	for _, b := range builds {
		if b.ArtifactName == "" || b.ArtifactSHA256 == "" {
			return nil, fmt.Errorf("build %s (%s/%s) has no recorded installer checksum", b.ID, b.Platform, b.Arch)
		}
		lines = append(lines, b.ArtifactSHA256+"  "+b.ArtifactName)
	}
	slices.SortFunc(lines, func(a, b string) int { return strings.Compare(a[66:], b[66:]) })
	return []byte(strings.Join(lines, "\n") + "\n"), nil
}

// tauriManifest builds latest.json from what the builds uploaded: each
// target's updater artifact and the content of its .sig. pub_date is when
// the release succeeded, so a rerun writes the same bytes.
func (e *Engine) tauriManifest(ctx context.Context, rel models.Release, builds []models.Build) ([]byte, error) {
	m := TauriManifest{Version: rel.Version, Notes: rel.Notes, Platforms: map[string]TauriPlatform{}}
	pub := rel.UpdatedAt
	if rel.CompletedAt != nil {
		pub = *rel.CompletedAt
	}
	m.PubDate = pub.UTC().Format(time.RFC3339)
	tag := templates.ReleaseTag(rel.Version)
	for _, b := range builds {
		name := templates.UpdaterArtifactName(b.ArtifactName, b.Platform)
		artifact, err := e.forge.FindReleaseAsset(ctx, b.Repository, tag, name)
		if err != nil {
			return nil, e.missingUpdater(err, b, name)
		}
		sigAsset, err := e.forge.FindReleaseAsset(ctx, b.Repository, tag, name+".sig")
		if err != nil {
			return nil, e.missingUpdater(err, b, name+".sig")
		}
		sig, err := e.readAsset(ctx, b.Repository, sigAsset.ID)
		if err != nil {
			return nil, err
		}
		m.Platforms[TauriPlatformKey(b.Platform, b.Arch)] = TauriPlatform{
			Signature: strings.TrimSpace(string(sig)), URL: artifact.BrowserDownloadURL,
		}
	}
	return json.MarshalIndent(m, "", "  ")
}

func (e *Engine) missingUpdater(err error, b models.Build, name string) error {
	if errors.Is(err, ErrNotFound) {
		return &publishRefusedError{fmt.Sprintf("build %s (%s/%s) uploaded no %s: does the builder repository have the TAURI_SIGNING_PRIVATE_KEY secret?",
			b.ID, b.Platform, b.Arch, name)}
	}
	return err
}

// readAsset fetches a (small) asset's bytes.
func (e *Engine) readAsset(ctx context.Context, repo string, id int64) ([]byte, error) {
	resp, err := e.forge.OpenAsset(ctx, repo, id, http.Header{})
	if err != nil {
		return nil, fmt.Errorf("read asset %d of %s: %w", id, repo, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read asset %d of %s: status %d", id, repo, resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

// ensureAsset uploads name unless the release already has it (uploaded by
// an earlier attempt of the same publication).
func (e *Engine) ensureAsset(ctx context.Context, repo, tag, name, contentType string, data []byte) error {
	if _, err := e.forge.FindReleaseAsset(ctx, repo, tag, name); err == nil {
		return nil
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	_, err := e.forge.UploadReleaseAsset(ctx, repo, tag, name, contentType, data)
	var invalid *InvalidError
	if errors.As(err, &invalid) && invalid.Status == http.StatusUnprocessableEntity {
		return nil // uploaded concurrently
	}
	return err
}
