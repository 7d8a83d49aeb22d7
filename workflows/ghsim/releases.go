package ghsim

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/deskforge/deskforge/templates"
)

type release struct {
	id                     int64
	repo                   *repo
	tag, name, target      string
	draft, prerelease      bool
	createdAt, publishedAt time.Time
	assets                 []*asset
	body                   string
}

type asset struct {
	id                   int64
	rel                  *release
	name, contentType    string
	label                string
	size                 int64
	digest               string // sha256:<hex>
	content              []byte // uploaded bytes; nil: AssetBytes(name)
	createdAt, updatedAt time.Time
	downloads            int
	// starter: the upload failed upstream (502) and left this empty asset
	// in state "starter", as GitHub documents.
	starter bool
}

// AssetBytes returns the deterministic content the simulator serves for a
// release asset called name: a short text header naming it as simulated,
// followed by pseudo-random bytes, 24-64 KiB in all.
func AssetBytes(name string) []byte {
	seed := sha256.Sum256([]byte("deskforge-sim-asset " + name))
	size := 24<<10 + (int(seed[0])<<8|int(seed[1]))%(40<<10)
	var b bytes.Buffer
	fmt.Fprintf(&b, "DeskForge simulated installer %s (built by the GitHub simulator; not a real installer)\n", name)
	block := seed
	for b.Len() < size {
		block = sha256.Sum256(block[:])
		b.Write(block[:])
	}
	return b.Bytes()[:size]
}

func contentTypeFor(name string) string {
	switch {
	case strings.HasSuffix(name, ".dmg"):
		return "application/x-apple-diskimage"
	case strings.HasSuffix(name, ".msi"):
		return "application/x-msi"
	case strings.HasSuffix(name, ".AppImage"):
		return "application/vnd.appimage"
	case strings.HasSuffix(name, ".zip"):
		return "application/zip"
	case strings.HasSuffix(name, ".exe"):
		return "application/vnd.microsoft.portable-executable"
	case strings.HasSuffix(name, ".sha256"):
		return "text/plain"
	}
	return "application/octet-stream"
}

// uploadAsset does what a template's upload step does: create the release
// v<version> (a draft unless Options.PublishReleases) if missing, replace an
// asset of the same name, and upload the installer.
func (s *Sim) uploadAsset(j *job, at time.Time) {
	r := j.run.repo
	version := j.run.inputs[templates.InputVersion]
	tag := templates.ReleaseTag(version)
	var rel *release
	for _, x := range r.releases {
		if x.tag == tag {
			rel = x
		}
	}
	if rel == nil {
		rel = &release{
			id: s.nextReleaseID, repo: r, tag: tag, name: tag, target: j.run.branch,
			draft: !s.opts.PublishReleases, prerelease: prerelease(version) != "", createdAt: at,
		}
		if !rel.draft {
			rel.publishedAt = at
		}
		s.nextReleaseID++
		r.releases = append(r.releases, rel)
		s.rels[rel.id] = rel
		j.releaseCreated = true
	}
	a := s.putAsset(rel, j.assetName, nil, at)
	a.label = templates.AssetLabel(j.assetName, j.run.inputs[templates.InputBuildID])
	j.assetID, j.assetDigest, j.assetSize = a.id, a.digest, a.size
	// With features.autoUpdate the Tauri templates also upload the
	// updater artifact (the installer itself, or on mac the .app.tar.gz)
	// and its minisign signature (.sig); the Electron template uploads
	// electron-updater's artifact (.zip on mac, NSIS .exe on windows).
	var cfg struct {
		Features struct {
			AutoUpdate bool `json:"autoUpdate"`
		} `json:"features"`
	}
	if json.Unmarshal([]byte(j.run.inputs[templates.InputConfig]), &cfg) != nil || !cfg.Features.AutoUpdate {
		return
	}
	platform := j.run.inputs[templates.InputPlatform]
	if j.run.electron() {
		if updater := templates.ElectronUpdaterArtifactName(j.assetName, platform); updater != j.assetName {
			s.putAsset(rel, updater, nil, at)
		}
		return
	}
	updater := templates.UpdaterArtifactName(j.assetName, platform)
	if updater != j.assetName {
		s.putAsset(rel, updater, nil, at)
	}
	s.putAsset(rel, updater+".sig", SignatureBytes(updater), at)
}

// ReleaseDownloadURL is the browser_download_url of the asset called name of
// the release tagged tag of repository fullName: anyone may follow it once
// the release is published (a repository's token is needed for drafts and
// private repositories).
func (s *Sim) ReleaseDownloadURL(fullName, tag, name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.web("/%s/releases/download/%s/%s", fullName, url.PathEscape(tag), url.PathEscape(name))
}

// electron reports whether a run is of the Electron template (by its file
// or workflow name), as the engine tells Electron projects apart.
func (rn *run) electron() bool {
	return strings.Contains(strings.ToLower(rn.workflowPath+" "+rn.workflowName), "electron")
}

// SignatureBytes is the content of the simulated minisign signature (.sig)
// of the updater artifact called name: base64 text, as tauri signer writes.
func SignatureBytes(name string) []byte {
	sum := sha256.Sum256(AssetBytes(name))
	text := "untrusted comment: signature from tauri secret key (simulated)\n" + hex.EncodeToString(sum[:]) + "\ntrusted comment: file:" + name + "\n"
	return []byte(base64.StdEncoding.EncodeToString([]byte(text)))
}

// putAsset stores an asset on rel, replacing one of the same name (content
// nil: AssetBytes(name)).
func (s *Sim) putAsset(rel *release, name string, content []byte, at time.Time) *asset {
	data := content
	if data == nil {
		data = AssetBytes(name)
	}
	sum := sha256.Sum256(data)
	kept := rel.assets[:0]
	for _, a := range rel.assets {
		if a.name == name {
			delete(s.asts, a.id)
			continue
		}
		kept = append(kept, a)
	}
	a := &asset{
		id: s.nextAssetID, rel: rel, name: name, contentType: contentTypeFor(name), content: content,
		size: int64(len(data)), digest: "sha256:" + hex.EncodeToString(sum[:]), createdAt: at, updatedAt: at,
	}
	s.nextAssetID++
	rel.assets = append(kept, a)
	s.asts[a.id] = a
	return a
}

func (a *asset) bytes() []byte {
	if a.content != nil {
		return a.content
	}
	return AssetBytes(a.name)
}

// uploadReleaseAsset is POST /repos/{owner}/{repo}/releases/{release_id}/assets?name=
// (GitHub serves it on uploads.github.com): 422 already_exists when the
// release has an asset of that name.
func (s *Sim) uploadReleaseAsset(c *call) *response {
	rel, errResp := s.releaseOf(c)
	if errResp != nil {
		return errResp
	}
	name := c.r.URL.Query().Get("name")
	if name == "" {
		return invalid("name is required")
	}
	for _, a := range rel.assets {
		if a.name == name {
			return &response{status: http.StatusUnprocessableEntity, body: map[string]any{
				"message": "Validation Failed", "errors": []any{map[string]any{"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}},
			}}
		}
	}
	data, err := io.ReadAll(c.r.Body)
	if err != nil {
		return fail(http.StatusBadRequest, "could not read the body")
	}
	if s.opts.Faults.hit("starter", c.seq, s.opts.Faults.UploadStarter) {
		// "When an upstream failure occurs, you will receive a 502 Bad
		// Gateway status. This may leave an empty asset with a state of
		// starter. It can be safely deleted."
		a := s.putAsset(rel, name, []byte{}, c.now)
		a.starter = true
		return fail(http.StatusBadGateway, "Server Error")
	}
	a := s.putAsset(rel, name, data, c.now)
	if ct := c.r.Header.Get("Content-Type"); ct != "" {
		a.contentType = ct
	}
	return &response{status: http.StatusCreated, body: s.assetJSON(a)}
}

// deleteAsset is DELETE /repos/{owner}/{repo}/releases/assets/{asset_id}:
// 204, or 404 for an unknown asset.
func (s *Sim) deleteAsset(c *call) *response {
	r, errResp := s.repoOf(c)
	if errResp != nil {
		return errResp
	}
	id, valid := c.p.int64("asset_id")
	a := s.asts[id]
	if !valid || a == nil || a.rel.repo != r {
		return notFound()
	}
	delete(s.asts, a.id)
	kept := a.rel.assets[:0]
	for _, o := range a.rel.assets {
		if o != a {
			kept = append(kept, o)
		}
	}
	a.rel.assets = kept
	return &response{status: http.StatusNoContent}
}

// updateRelease is PATCH /repos/{owner}/{repo}/releases/{release_id}: draft
// and body (publishing a draft sets published_at).
func (s *Sim) updateRelease(c *call) *response {
	rel, errResp := s.releaseOf(c)
	if errResp != nil {
		return errResp
	}
	var body struct {
		Draft *bool   `json:"draft"`
		Body  *string `json:"body"`
	}
	if err := decodeBody(c.r, &body); err != nil {
		return fail(http.StatusBadRequest, "Problems parsing JSON")
	}
	if body.Body != nil {
		rel.body = *body.Body
	}
	if body.Draft != nil && !*body.Draft && rel.draft {
		rel.draft, rel.publishedAt = false, c.now
	}
	return &response{status: http.StatusOK, body: s.releaseJSON(rel)}
}

// ReleaseInfo is a snapshot of a release, for tests.
type ReleaseInfo struct {
	ID     int64
	Tag    string
	Draft  bool
	Assets []AssetInfo
}

// AssetInfo is a snapshot of a release asset.
type AssetInfo struct {
	ID          int64
	Name        string
	Label       string // templates.AssetLabel of the build that uploaded it
	Size        int64
	Digest      string // "sha256:<hex>"
	ContentType string
	Downloads   int
}

// Releases returns a repository's releases, oldest first.
func (s *Sim) Releases(fullName string) []ReleaseInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(fullName)]
	if r == nil {
		return nil
	}
	var out []ReleaseInfo
	for _, rel := range r.releases {
		info := ReleaseInfo{ID: rel.id, Tag: rel.tag, Draft: rel.draft}
		for _, a := range rel.assets {
			info.Assets = append(info.Assets, AssetInfo{ID: a.id, Name: a.name, Label: a.label, Size: a.size, Digest: a.digest, ContentType: a.contentType, Downloads: a.downloads})
		}
		out = append(out, info)
	}
	return out
}

// PublishRelease publishes the draft release tagged tag, after which the
// release-by-tag endpoint finds it.
func (s *Sim) PublishRelease(fullName, tag string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(fullName)]
	if r == nil {
		return fmt.Errorf("publish release: repository %s not found", fullName)
	}
	for _, rel := range r.releases {
		if rel.tag == tag {
			if rel.draft {
				rel.draft, rel.publishedAt = false, s.clock.Now()
			}
			return nil
		}
	}
	return fmt.Errorf("publish release: %s has no release %s", fullName, tag)
}

func (s *Sim) releaseJSON(rel *release) map[string]any {
	fn := rel.repo.fullName()
	u := s.api("/repos/%s/releases/%d", fn, rel.id)
	assets := make([]any, 0, len(rel.assets))
	for _, a := range rel.assets {
		assets = append(assets, s.assetJSON(a))
	}
	htmlTag := rel.tag
	if rel.draft {
		htmlTag = fmt.Sprintf("untagged-%x", rel.id*2654435761%0xfffffffff)
	}
	return map[string]any{
		"url":              u,
		"assets_url":       u + "/assets",
		"upload_url":       s.api("/repos/%s/releases/%d/assets{?name,label}", fn, rel.id),
		"html_url":         s.web("/%s/releases/tag/%s", fn, htmlTag),
		"id":               rel.id,
		"author":           s.actorJSON(),
		"node_id":          nodeID("Release", rel.id),
		"tag_name":         rel.tag,
		"target_commitish": rel.target,
		"name":             rel.name,
		"draft":            rel.draft,
		"prerelease":       rel.prerelease,
		"immutable":        false,
		"created_at":       ts(rel.createdAt),
		"published_at":     ts(rel.publishedAt),
		"assets":           assets,
		"tarball_url":      s.api("/repos/%s/tarball/%s", fn, rel.tag),
		"zipball_url":      s.api("/repos/%s/zipball/%s", fn, rel.tag),
		"body":             rel.body,
	}
}

func (s *Sim) assetJSON(a *asset) map[string]any {
	fn := a.rel.repo.fullName()
	return map[string]any{
		"url":                  s.api("/repos/%s/releases/assets/%d", fn, a.id),
		"browser_download_url": s.web("/%s/releases/download/%s/%s", fn, url.PathEscape(a.rel.tag), url.PathEscape(a.name)),
		"id":                   a.id,
		"node_id":              nodeID("ReleaseAsset", a.id),
		"name":                 a.name,
		"label":                a.label,
		"state":                map[bool]string{false: "uploaded", true: "starter"}[a.starter],
		"content_type":         a.contentType,
		"size":                 a.size,
		"digest":               a.digest,
		"download_count":       a.downloads,
		"created_at":           ts(a.createdAt),
		"updated_at":           ts(a.updatedAt),
		"uploader":             s.actorJSON(),
	}
}

func (s *Sim) listReleases(c *call) *response {
	r, errResp := s.repoOf(c)
	if errResp != nil {
		return errResp
	}
	rels := append([]*release(nil), r.releases...)
	sort.SliceStable(rels, func(i, k int) bool { return rels[i].id > rels[k].id })
	from, to, link := s.page(c.r, len(rels))
	out := []any{}
	for _, rel := range rels[from:to] {
		out = append(out, s.releaseJSON(rel))
	}
	return paged(out, link)
}

// getReleaseByTag finds published releases only, as GitHub does.
func (s *Sim) getReleaseByTag(c *call) *response {
	r, errResp := s.repoOf(c)
	if errResp != nil {
		return errResp
	}
	for _, rel := range r.releases {
		if rel.tag == c.p["tag"] && !rel.draft {
			return ok(s.releaseJSON(rel))
		}
	}
	return notFound()
}

func (s *Sim) releaseOf(c *call) (*release, *response) {
	r, errResp := s.repoOf(c)
	if errResp != nil {
		return nil, errResp
	}
	id, valid := c.p.int64("release_id")
	rel := s.rels[id]
	if !valid || rel == nil || rel.repo != r {
		return nil, notFound()
	}
	return rel, nil
}

func (s *Sim) getRelease(c *call) *response {
	rel, errResp := s.releaseOf(c)
	if errResp != nil {
		return errResp
	}
	return ok(s.releaseJSON(rel))
}

func (s *Sim) listAssets(c *call) *response {
	rel, errResp := s.releaseOf(c)
	if errResp != nil {
		return errResp
	}
	from, to, link := s.page(c.r, len(rel.assets))
	out := []any{}
	for _, a := range rel.assets[from:to] {
		out = append(out, s.assetJSON(a))
	}
	return paged(out, link)
}

// getAsset answers the asset's JSON, or with Accept: application/octet-stream
// a 302 to a signed URL valid for 5 minutes.
func (s *Sim) getAsset(c *call) *response {
	r, errResp := s.repoOf(c)
	if errResp != nil {
		return errResp
	}
	id, valid := c.p.int64("asset_id")
	a := s.asts[id]
	if !valid || a == nil || a.rel.repo != r {
		return notFound()
	}
	if strings.Contains(c.r.Header.Get("Accept"), "application/octet-stream") {
		if s.opts.Faults.AssetStream {
			// "The API will either redirect the client to the location, or
			// stream it directly if possible."
			a.downloads++
			return &response{status: http.StatusOK, raw: a.bytes(),
				header: http.Header{"Content-Type": {"application/octet-stream"}}}
		}
		loc := s.signedURL(signedAssetsPath, a.id, c.now.Add(5*time.Minute))
		return &response{status: http.StatusFound, header: http.Header{"Location": []string{loc}}}
	}
	return ok(s.assetJSON(a))
}

// signedURL builds an expiring URL for a log or an asset, like GitHub's
// redirects to its blob storage.
func (s *Sim) signedURL(prefix string, id int64, expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	return fmt.Sprintf("%s%s%d?expires=%s&sig=%s", s.base, prefix, id, exp, s.sign(prefix, id, exp))
}

func (s *Sim) sign(prefix string, id int64, exp string) string {
	m := hmac.New(sha256.New, s.signKey)
	fmt.Fprintf(m, "%s%d?%s", prefix, id, exp)
	return hex.EncodeToString(m.Sum(nil))
}

// checkSignature validates a signed URL; it answers the error itself.
func (s *Sim) checkSignature(w http.ResponseWriter, r *http.Request, prefix string, id int64) bool {
	exp := r.URL.Query().Get("expires")
	sig := r.URL.Query().Get("sig")
	expUnix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !hmac.Equal([]byte(sig), []byte(s.sign(prefix, id, exp))) {
		signedError(w, "AuthenticationFailed", "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.")
		return false
	}
	if !s.clock.Now().Before(time.Unix(expUnix, 0)) {
		signedError(w, "AuthenticationFailed", "Signed expiry time has to be after signed start time: the URL has expired.")
		return false
	}
	return true
}

func signedError(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusForbidden)
	fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>%s</Code><Message>%s</Message></Error>", code, msg)
}

func (s *Sim) serveSignedAsset(w http.ResponseWriter, r *http.Request, p params) {
	id, _ := p.int64("asset_id")
	if !s.checkSignature(w, r, signedAssetsPath, id) {
		return
	}
	s.mu.Lock()
	a := s.asts[id]
	var name, ctype string
	var modified time.Time
	var content []byte
	if a != nil {
		a.downloads++
		name, ctype, modified, content = a.name, a.contentType, a.updatedAt, a.bytes()
	}
	s.mu.Unlock()
	if a == nil {
		signedError(w, "BlobNotFound", "The specified blob does not exist.")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%s", name))
	w.Header().Set("X-Ms-Meta-Content-Type", ctype)
	http.ServeContent(w, r, name, modified, bytes.NewReader(content))
}

// serveBrowserDownload serves browser_download_url: a redirect to the signed
// URL, without credentials for public repositories and with a valid token for
// private ones (others get 404, as on GitHub).
func (s *Sim) serveBrowserDownload(w http.ResponseWriter, r *http.Request, p params) {
	s.mu.Lock()
	rp := s.repo(p["owner"], p["repo"])
	var target *asset
	if rp != nil {
		for _, rel := range rp.releases {
			if rel.tag != p["tag"] {
				continue
			}
			for _, a := range rel.assets {
				if a.name == p["name"] {
					target = a
				}
			}
		}
	}
	allowed := target != nil && !target.rel.draft && !rp.private
	if target != nil && !allowed {
		tok, hasTok := bearerToken(r.Header.Get("Authorization"))
		allowed = hasTok && (len(s.tokens) == 0 || s.tokens[tok])
	}
	var loc string
	if allowed {
		loc = s.signedURL(signedAssetsPath, target.id, s.clock.Now().Add(5*time.Minute))
	}
	s.mu.Unlock()
	if !allowed {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	http.Redirect(w, r, loc, http.StatusFound)
}

// AssetContent returns the bytes of the asset called name in the release
// tagged tag of a repository, for tests.
func (s *Sim) AssetContent(fullName, tag, name string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(fullName)]
	if r == nil {
		return nil, false
	}
	for _, rel := range r.releases {
		if rel.tag != tag {
			continue
		}
		for _, a := range rel.assets {
			if a.name == name {
				return a.bytes(), true
			}
		}
	}
	return nil, false
}

// SetScenario replaces the scenario rules for runs dispatched from now on.
func (s *Sim) SetScenario(rules []Rule) {
	s.mu.Lock()
	s.scenario = rules
	s.mu.Unlock()
}
