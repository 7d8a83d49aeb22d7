package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/gin-gonic/gin"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/workflows"
)

// The update server: GET /updates/:projectId/:target/:arch/:currentVersion
// answers in Tauri's dynamic update format. Installed apps call it without
// an API key, so it is open, rate limited per client address, and served
// from memory: a project's published releases are read once, then again
// only when an event of the project (a publication, a project change)
// commits, from a watcher off the request path.

// updateResponse is Tauri's dynamic update answer (200).
type updateResponse struct {
	Version   string `json:"version"`
	URL       string `json:"url"`
	Signature string `json:"signature"`
	Notes     string `json:"notes"`
	PubDate   string `json:"pub_date"`
}

// tauriOS and tauriArch map what Tauri puts in {{target}} and {{arch}},
// and DeskForge's own platform and arch names, to the parts of a Tauri
// platform key ("darwin-aarch64").
var (
	tauriOS = map[string]string{
		"darwin": "darwin", "macos": "darwin", "mac": "darwin",
		"windows": "windows", "linux": "linux",
	}
	tauriArch = map[string]string{
		"x86_64": "x86_64", "x64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64",
		"i686": "i686", "armv7": "armv7",
	}
)

// updateIdleTimeout is how long a project's cached releases stay without
// a request before they (and their watcher) are dropped.
const updateIdleTimeout = 10 * time.Minute

func (s *Server) registerUpdateRoutes(r *gin.Engine) {
	getAndHead(r, "/updates/:id/:target/:arch/:version", s.rateLimitByAddress, s.loadSigningKey, s.checkUpdate)
}

// checkUpdate is the update endpoint: 204 when the client is on the latest
// published version for its channel (stable, or pre-releases for a client
// on a pre-release) or the release has nothing for its target, else 200
// with the update. 400 for a malformed currentVersion, target or arch; 404
// for an unknown project or one without features.autoUpdate.
func (s *Server) checkUpdate(c *gin.Context) {
	current, err := semver.StrictNewVersion(c.Param("version"))
	if err != nil {
		s.renderError(c, invalid("currentVersion", "currentVersion must be a semantic version such as 1.0.0 (no leading v), got %q", clip(c.Param("version"))))
		return
	}
	osName, ok := tauriOS[c.Param("target")]
	if !ok {
		s.renderError(c, invalid("target", "target must be one of darwin, windows, linux (Tauri's {{target}}) or mac"))
		return
	}
	arch, ok := tauriArch[c.Param("arch")]
	if !ok {
		s.renderError(c, invalid("arch", "arch must be one of x86_64, aarch64, i686, armv7 (Tauri's {{arch}}), x64 or arm64"))
		return
	}
	id := c.Param("id")
	st, err := s.updates.get(c.Request.Context(), id)
	if err != nil {
		s.renderError(c, err)
		return
	}
	if !st.autoUpdate {
		s.renderError(c, &apiError{http.StatusNotFound, codeNotFound,
			"project " + id + " does not serve updates: turn on its features.autoUpdate", ""})
		return
	}
	rel := st.stable
	if current.Prerelease() != "" {
		rel = st.latest
	}
	if rel == nil || !rel.version.GreaterThan(current) {
		c.Status(http.StatusNoContent)
		return
	}
	p, ok := rel.platforms[osName+"-"+arch]
	if !ok {
		c.Status(http.StatusNoContent)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", s.renderUpdate(rel, p))
}

// renderUpdate returns the JSON of an update, rendered once per platform
// (and, in a private repository, once per expiry of signed links): the
// cache serves bytes, not structures.
func (s *Server) renderUpdate(rel *updateRelease, p *updatePlatform) []byte {
	var exp int64
	if p.signPath != "" {
		exp = s.links.expiry()
	}
	if r := p.rendered.Load(); r != nil && r.exp == exp {
		return r.body
	}
	u := p.url
	if p.signPath != "" {
		u = s.publicURL + s.links.signUntil(s.links.loaded(), p.signPath, exp)
	}
	body, _ := json.Marshal(updateResponse{Version: rel.version.Original(), URL: u, Signature: p.signature, Notes: rel.notes, PubDate: rel.pubDate})
	p.rendered.Store(&renderedUpdate{exp: exp, body: body})
	return body
}

// projectUpdates is what the update endpoint knows of a project.
type projectUpdates struct {
	autoUpdate bool
	// stable is the highest published version without a pre-release part,
	// latest the highest of all; nil when there is none.
	stable, latest *updateRelease
}

// updateRelease is a published release as its latest.json describes it.
type updateRelease struct {
	version   *semver.Version
	notes     string
	pubDate   string
	platforms map[string]*updatePlatform // by Tauri platform key
}

// updatePlatform is one target of an update: its signature and either a
// public url or, in a private repository, the path to sign per answer.
type updatePlatform struct {
	signature string
	url       string
	signPath  string
	rendered  atomic.Pointer[renderedUpdate]
}

// renderedUpdate is an update's JSON; exp is the expiry of its signed link
// (0: GitHub's link, which does not expire).
type renderedUpdate struct {
	exp  int64
	body []byte
}

// updateCache holds projectUpdates per project. Entries are filled by the
// first request (one database read per project) and refreshed by a watcher
// goroutine woken by the project's events; the request path only reads
// memory.
type updateCache struct {
	s       *Server
	entries sync.Map // project id → *updateEntry
}

// updateEntry is one project's cached state; ready closes once the first
// load ended (err set when it failed).
type updateEntry struct {
	ready    chan struct{}
	err      error
	state    atomic.Pointer[projectUpdates]
	lastUsed atomic.Int64 // Unix seconds
}

func newUpdateCache(s *Server) *updateCache { return &updateCache{s: s} }

// get returns project id's state, loading it on first use. Unknown
// projects are not cached (their requests are rate limited).
func (uc *updateCache) get(ctx context.Context, id string) (*projectUpdates, error) {
	if !models.IsID("proj", id) {
		return nil, &apiError{http.StatusNotFound, codeNotFound, "project " + clip(id) + " does not exist", ""}
	}
	now := time.Now().Unix()
	if v, ok := uc.entries.Load(id); ok {
		e := v.(*updateEntry)
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err != nil {
			return nil, e.err
		}
		if e.lastUsed.Load() != now {
			e.lastUsed.Store(now)
		}
		return e.state.Load(), nil
	}
	e := &updateEntry{ready: make(chan struct{})}
	if _, loaded := uc.entries.LoadOrStore(id, e); loaded {
		return uc.get(ctx, id)
	}
	e.lastUsed.Store(now)
	// Subscribe before reading: a change committed during the read wakes
	// the watcher, which reads again.
	wake, stop := uc.s.events.changes.Subscribe(models.EventFilter{ProjectID: id})
	st, err := uc.load(context.WithoutCancel(ctx), id)
	if err != nil {
		e.err = err
		uc.entries.CompareAndDelete(id, e)
		close(e.ready)
		stop()
		return nil, err
	}
	e.state.Store(st)
	close(e.ready)
	go uc.watch(id, e, wake, stop) //nolint:gosec // G118: the watcher outlives the request that filled the entry, by design (stopped by stop)
	return st, nil
}

// watch reloads a project's entry whenever one of its events commits, and
// drops it after updateIdleTimeout without requests or when the project
// is gone.
func (uc *updateCache) watch(id string, e *updateEntry, wake <-chan struct{}, stop func()) {
	defer stop()
	idle := time.NewTicker(updateIdleTimeout)
	defer idle.Stop()
	for {
		select {
		case <-wake:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			st, err := uc.load(ctx, id)
			cancel()
			switch {
			case err == nil:
				e.state.Store(st)
			case errors.Is(err, models.ErrNotFound):
				uc.entries.CompareAndDelete(id, e)
				return
			default:
				// Drop the entry: the next request reads again.
				uc.s.log.Warn("update server: reloading a project failed", "project_id", id, "err", err)
				uc.entries.CompareAndDelete(id, e)
				return
			}
		case <-idle.C:
			if time.Since(time.Unix(e.lastUsed.Load(), 0)) >= updateIdleTimeout {
				uc.entries.CompareAndDelete(id, e)
				return
			}
		}
	}
}

// load reads a project's auto-update switch and its highest published
// releases with their latest.json.
func (uc *updateCache) load(ctx context.Context, id string) (*projectUpdates, error) {
	store := uc.s.store
	p, err := store.GetProject(ctx, id)
	if errors.Is(err, models.ErrNotFound) {
		return nil, &apiError{http.StatusNotFound, codeNotFound, "project " + id + " does not exist", ""}
	}
	if err != nil {
		return nil, fmt.Errorf("update server: %w", err)
	}
	st := &projectUpdates{autoUpdate: p.FeatureAutoUpdate}
	if !st.autoUpdate {
		return st, nil
	}
	rels, err := store.PublishedReleases(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("update server: %w", err)
	}
	var stable, latest *models.Release
	var stableV, latestV *semver.Version
	for i := range rels {
		v, err := semver.StrictNewVersion(rels[i].Version)
		if err != nil {
			continue
		}
		if latestV == nil || v.GreaterThan(latestV) {
			latest, latestV = &rels[i], v
		}
		if v.Prerelease() == "" && (stableV == nil || v.GreaterThan(stableV)) {
			stable, stableV = &rels[i], v
		}
	}
	if stable != nil {
		if st.stable, err = uc.loadRelease(ctx, *stable, stableV); err != nil {
			return nil, err
		}
	}
	st.latest = st.stable
	if latest != nil && latest != stable {
		if st.latest, err = uc.loadRelease(ctx, *latest, latestV); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// loadRelease reads a published release's latest.json. A release without
// one (no updater artifacts) offers nothing: every target answers 204.
func (uc *updateCache) loadRelease(ctx context.Context, rel models.Release, v *semver.Version) (*updateRelease, error) {
	out := &updateRelease{version: v, notes: rel.Notes, platforms: map[string]*updatePlatform{}}
	if rel.PublishedAt != nil {
		out.pubDate = rel.PublishedAt.UTC().Format(time.RFC3339)
	}
	files, err := uc.s.engine.ReleaseFiles(ctx, rel)
	if err != nil {
		return nil, fmt.Errorf("update server: %w", err)
	}
	var manifest *models.ReleaseFile
	private := false
	for i, f := range files {
		private = private || f.RepoPrivate
		if f.Name == workflows.TauriManifestAsset {
			manifest = &files[i]
		}
	}
	if manifest == nil {
		return out, nil
	}
	var m workflows.TauriManifest
	if err := json.Unmarshal([]byte(manifest.Content), &m); err != nil {
		return nil, fmt.Errorf("update server: latest.json of release %s: %w", rel.ID, err)
	}
	out.notes, out.pubDate = m.Notes, m.PubDate
	// In a private repository GitHub's links need credentials: the answer
	// carries a signed DeskForge link to the same file instead, the build's
	// installer when the updater artifact is the installer itself.
	installers := map[string]string{}
	if private {
		builds, err := uc.s.store.ReleaseBuilds(ctx, rel.ID)
		if err != nil {
			return nil, fmt.Errorf("update server: %w", err)
		}
		for _, b := range models.CurrentBuilds(builds) {
			installers[b.ArtifactName] = b.ID
		}
	}
	for key, p := range m.Platforms {
		up := &updatePlatform{signature: p.Signature, url: p.URL}
		if private {
			name, err := assetNameOf(p.URL)
			if err != nil {
				return nil, fmt.Errorf("update server: latest.json of release %s, %s: %w", rel.ID, key, err)
			}
			if buildID, ok := installers[name]; ok {
				up.signPath = artifactPath(buildID, name)
			} else {
				up.signPath = releaseFilePath(rel.ID, name)
			}
		}
		out.platforms[key] = up
	}
	return out, nil
}

// assetNameOf is the file name of a release asset's browser_download_url.
func assetNameOf(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	name := path.Base(u.Path)
	if name == "." || name == "/" {
		return "", fmt.Errorf("no file name in %q", raw)
	}
	return name, nil
}
