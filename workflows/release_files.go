package workflows

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/templates"
)

// publishedManifests are the update manifests a publication may add to a
// release (Tauri's latest.json, electron-updater's latest*.yml); the ones
// a release has are recorded as its files.
var publishedManifests = []string{
	TauriManifestAsset, ElectronManifestName("windows", "x64"), ElectronManifestName("mac", "x64"),
	ElectronManifestName("linux", "x64"), ElectronManifestName("linux", "arm64"),
}

// ReleaseFiles returns the files a published release has besides its
// installers (SHA256SUMS, manifests, updater artifacts), as recorded by
// RecordReleaseFiles; a published release whose files were not recorded
// yet gets them recorded now (one round of GitHub reads, once). An
// unpublished release has none.
func (e *Engine) ReleaseFiles(ctx context.Context, rel models.Release) ([]models.ReleaseFile, error) {
	files, err := e.store.ReleaseFiles(ctx, rel.ID)
	if err != nil || len(files) > 0 || rel.PublishedAt == nil {
		return files, err
	}
	if err := e.RecordReleaseFiles(ctx, rel.ID); err != nil {
		return nil, err
	}
	return e.store.ReleaseFiles(ctx, rel.ID)
}

// RecordReleaseFiles records what the publication of release id uploaded,
// read back from GitHub: SHA256SUMS and the manifests with their content
// and SHA-256 (computed from the bytes) and, when there is a latest.json,
// the updater artifacts that are not the installer itself and every .sig,
// with GitHub's size and digest. It does nothing for a release that is not
// published, and is idempotent. ReleaseFiles calls it for a published
// release whose files were not recorded yet; the publication may call it
// right after publishing, ahead of the first reader.
func (e *Engine) RecordReleaseFiles(ctx context.Context, id string) error {
	rel, err := e.store.GetRelease(ctx, id)
	if err != nil {
		return fmt.Errorf("record files of release %s: %w", id, err)
	}
	if rel.PublishedAt == nil {
		return nil
	}
	if e.forge == nil {
		return fmt.Errorf("record files of release %s: no GitHub client", id)
	}
	all, err := e.store.ReleaseBuilds(ctx, id)
	if err != nil {
		return fmt.Errorf("record files of release %s: %w", id, err)
	}
	builds := models.CurrentBuilds(all)
	if len(builds) == 0 {
		return fmt.Errorf("record files of release %s: it has no builds", id)
	}
	repo, private, tag := e.repoOf(builds[0]), builds[0].RepoPrivate, templates.ReleaseTag(rel.Version)
	var files []models.ReleaseFile
	add := func(name, kind string, withContent bool) error {
		a, err := e.forge.FindReleaseAsset(ctx, repo, tag, name)
		if errors.Is(err, ErrNotFound) && kind != models.FileChecksums {
			return nil // this release has no such file
		}
		if err != nil {
			return fmt.Errorf("find %s: %w", name, err)
		}
		f := models.ReleaseFile{ReleaseID: id, Name: name, Kind: kind, Size: a.Size, SHA256: a.SHA256,
			Repository: repo, AssetID: a.ID, RepoPrivate: private, BrowserDownloadURL: a.BrowserDownloadURL, CreatedAt: e.clock.Now()}
		if withContent {
			data, err := e.readAsset(ctx, repo, a.ID)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			f.Content, f.Size, f.SHA256 = string(data), int64(len(data)), hex.EncodeToString(sum[:])
		}
		files = append(files, f)
		return nil
	}
	if err := add(ChecksumsAsset, models.FileChecksums, true); err != nil {
		return fmt.Errorf("record files of release %s: %w", id, err)
	}
	for _, name := range publishedManifests {
		if err := add(name, models.FileManifest, true); err != nil {
			return fmt.Errorf("record files of release %s: %w", id, err)
		}
	}
	if !slices.ContainsFunc(files, func(f models.ReleaseFile) bool { return f.Name == TauriManifestAsset }) {
		// No Tauri manifest: no updater artifacts to look for.
		return e.store.RecordReleaseFiles(ctx, files)
	}
	for _, b := range builds {
		updater := templates.UpdaterArtifactName(b.ArtifactName, b.Platform)
		if updater != b.ArtifactName {
			if err := add(updater, models.FileUpdater, false); err != nil {
				return fmt.Errorf("record files of release %s: %w", id, err)
			}
		}
		if err := add(updater+".sig", models.FileUpdater, false); err != nil {
			return fmt.Errorf("record files of release %s: %w", id, err)
		}
	}
	return e.store.RecordReleaseFiles(ctx, files)
}

// ReleaseFileURL returns where a client downloads a release file without
// credentials: its browser_download_url in a public repository, else
// GitHub's short-lived signed URL. ErrAssetStreamed (wrapped) when GitHub
// serves the bytes itself: stream them with OpenReleaseFile.
func (e *Engine) ReleaseFileURL(ctx context.Context, f models.ReleaseFile) (string, error) {
	if !f.RepoPrivate && f.BrowserDownloadURL != "" {
		return f.BrowserDownloadURL, nil
	}
	u, err := e.forge.AssetDownloadURL(ctx, f.Repository, f.AssetID)
	if err != nil {
		return "", fmt.Errorf("file %s of release %s: %w", f.Name, f.ReleaseID, err)
	}
	return u, nil
}

// OpenReleaseFile fetches a release file's bytes from GitHub, forwarding
// the Range of header; the caller relays the answer and closes its body.
func (e *Engine) OpenReleaseFile(ctx context.Context, f models.ReleaseFile, header http.Header) (*http.Response, error) {
	resp, err := e.forge.OpenAsset(ctx, f.Repository, f.AssetID, header)
	if err != nil {
		return nil, fmt.Errorf("file %s of release %s: %w", f.Name, f.ReleaseID, err)
	}
	return resp, nil
}
