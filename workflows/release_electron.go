package workflows

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/templates"
)

// ElectronManifestName is the update manifest electron-updater reads for a
// platform and arch, named as electron-builder names it
// (app-builder-lib's getUpdateInfoFileName): "latest.yml" for Windows,
// "latest-mac.yml" for macOS (both arches in one file, each Windows and mac
// client picks its arch by the file names), "latest-linux.yml" for Linux
// x64 and "latest-linux-arm64.yml" for Linux arm64 (electron-updater's
// Provider.getChannelFilePrefix).
func ElectronManifestName(platform, arch string) string {
	switch platform {
	case "windows":
		return "latest.yml"
	case "mac":
		return "latest-mac.yml"
	}
	if arch == "x64" {
		return "latest-linux.yml"
	}
	return "latest-linux-" + arch + ".yml"
}

// ElectronFile is one entry of an electron-updater manifest's files.
type ElectronFile struct {
	// URL is the file name, resolved by electron-updater against the
	// release's download location.
	URL string `yaml:"url"`
	// SHA512 is the base64 SHA-512 of the file's bytes.
	SHA512 string `yaml:"sha512"`
	Size   int64  `yaml:"size"`
}

// ElectronManifest is an electron-updater update manifest (latest*.yml),
// with the fields in the order electron-builder writes them. Path and
// SHA512 repeat the first file, as electron-builder writes for updaters
// older than 2.16 that predate Files.
type ElectronManifest struct {
	Version      string         `yaml:"version"`
	Files        []ElectronFile `yaml:"files"`
	Path         string         `yaml:"path"`
	SHA512       string         `yaml:"sha512"`
	ReleaseNotes string         `yaml:"releaseNotes,omitempty"`
	ReleaseDate  string         `yaml:"releaseDate"`
}

// usesElectron reports whether a project is built with electron-builder: a
// repository whose workflow is the Electron template (or named after it).
func usesElectron(p models.Project) bool {
	return !p.IsWebApp() && strings.Contains(strings.ToLower(p.Workflow), "electron")
}

// electronEntry is one file going into a manifest, with what orders it.
type electronEntry struct {
	manifest string
	arch     string
	file     ElectronFile
}

// electronManifests builds the latest*.yml files of a release from the
// bytes its builds uploaded: for each build, its electron-updater artifact
// (templates.ElectronUpdaterArtifactName) and, on mac, the .dmg installer
// too, as electron-builder lists both. It returns the files by name.
// A build whose updater artifact is missing refuses the publication.
func (e *Engine) electronManifests(ctx context.Context, rel models.Release, builds []models.Build) (map[string][]byte, error) {
	var entries []electronEntry
	tag := templates.ReleaseTag(rel.Version)
	for _, b := range builds {
		names := []string{templates.ElectronUpdaterArtifactName(b.ArtifactName, b.Platform)}
		if b.Platform == "mac" {
			names = append(names, b.ArtifactName)
		}
		for _, name := range names {
			a, err := e.forge.FindReleaseAsset(ctx, b.Repository, tag, name)
			if err != nil {
				return nil, e.missingElectronUpdater(err, b, name)
			}
			sum, size, err := e.hashAsset(ctx, b.Repository, a.ID, sha512.New())
			if err != nil {
				return nil, err
			}
			entries = append(entries, electronEntry{
				manifest: ElectronManifestName(b.Platform, b.Arch), arch: b.Arch,
				file: ElectronFile{URL: name, SHA512: base64.StdEncoding.EncodeToString(sum), Size: size},
			})
		}
	}
	// electron-builder's writeUpdateInfoFiles: zips first (the legacy path
	// and sha512 name the zip), then by arch, x64 before arm64.
	archRank := map[string]int{"x64": 0, "arm64": 1}
	slices.SortStableFunc(entries, func(a, b electronEntry) int {
		az, bz := strings.HasSuffix(a.file.URL, ".zip"), strings.HasSuffix(b.file.URL, ".zip")
		if az != bz {
			if az {
				return -1
			}
			return 1
		}
		return archRank[a.arch] - archRank[b.arch]
	})
	date := rel.UpdatedAt
	if rel.CompletedAt != nil {
		date = *rel.CompletedAt
	}
	byName := map[string]*ElectronManifest{}
	for _, en := range entries {
		m := byName[en.manifest]
		if m == nil {
			m = &ElectronManifest{
				Version: rel.Version, Path: en.file.URL, SHA512: en.file.SHA512, ReleaseNotes: rel.Notes,
				// JavaScript's toISOString, as electron-builder writes it.
				ReleaseDate: date.UTC().Format("2006-01-02T15:04:05.000Z"),
			}
			byName[en.manifest] = m
		}
		m.Files = append(m.Files, en.file)
	}
	out := map[string][]byte{}
	for name, m := range byName {
		data, err := MarshalElectronManifest(*m)
		if err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
		out[name] = data
	}
	return out, nil
}

// MarshalElectronManifest writes m as js-yaml (electron-builder's
// serializer) does: two-space indent, releaseDate single-quoted.
func MarshalElectronManifest(m ElectronManifest) ([]byte, error) {
	var doc yaml.Node
	if err := doc.Encode(m); err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == "releaseDate" {
			doc.Content[i+1].Style = yaml.SingleQuotedStyle
		}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (e *Engine) missingElectronUpdater(err error, b models.Build, name string) error {
	if errors.Is(err, ErrNotFound) {
		return &publishRefusedError{fmt.Sprintf("build %s (%s/%s) uploaded no %s: electron-updater needs it, and the Electron template builds it when the project has features.autoUpdate (rebuild the target after enabling it, or update the workflow from the template)",
			b.ID, b.Platform, b.Arch, name)}
	}
	return err
}

// hashAsset streams an asset's bytes through h and returns the sum and the
// number of bytes (installers are large: they are never held in memory).
func (e *Engine) hashAsset(ctx context.Context, repo string, id int64, h hash.Hash) ([]byte, int64, error) {
	resp, err := e.forge.OpenAsset(ctx, repo, id, http.Header{})
	if err != nil {
		return nil, 0, fmt.Errorf("read asset %d of %s: %w", id, repo, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("read asset %d of %s: status %d", id, repo, resp.StatusCode)
	}
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		return nil, 0, fmt.Errorf("read asset %d of %s: %w", id, repo, err)
	}
	return h.Sum(nil), n, nil
}
