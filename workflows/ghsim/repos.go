package ghsim

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"
)

type pull struct {
	id, number           int64
	title, body          string
	headRef, baseRef     string
	headSHA, baseSHA     string
	state                string // open, closed
	draft, merged        bool
	createdAt, updatedAt time.Time
	closedAt, mergedAt   time.Time
}

// PullInfo is a snapshot of a pull request, for tests.
type PullInfo struct {
	Number int64
	Title  string
	Body   string
	Head   string // branch
	Base   string // branch
	State  string // open, closed
	Merged bool
}

// Pulls returns a repository's pull requests, oldest first.
func (s *Sim) Pulls(fullName string) []PullInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(fullName)]
	if r == nil {
		return nil
	}
	var out []PullInfo
	for _, p := range r.pulls {
		out = append(out, PullInfo{Number: p.number, Title: p.title, Body: p.body, Head: p.headRef, Base: p.baseRef, State: p.state, Merged: p.merged})
	}
	return out
}

// MergePull merges an open pull request: the base branch gets a merge
// commit holding the head branch's files, and the pull request is closed.
func (s *Sim) MergePull(fullName string, number int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(fullName)]
	if r == nil {
		return fmt.Errorf("merge pull: repository %s not found", fullName)
	}
	for _, p := range r.pulls {
		if p.number != number {
			continue
		}
		if p.state != "open" {
			return fmt.Errorf("merge pull %s#%d: not open", fullName, number)
		}
		head := r.commits[r.branches[p.headRef]]
		base := r.commits[r.branches[p.baseRef]]
		if head == nil || base == nil {
			return fmt.Errorf("merge pull %s#%d: branch missing", fullName, number)
		}
		now := s.clock.Now()
		files := make(map[string][]byte, len(head.files))
		for k, v := range head.files {
			files[k] = v
		}
		c := r.addCommit(base.sha, fmt.Sprintf("Merge pull request #%d from %s:%s", number, r.owner, p.headRef), files, now)
		r.branches[p.baseRef] = c.sha
		s.registerWorkflows(r, c)
		p.state, p.merged, p.mergedAt, p.closedAt, p.updatedAt = "closed", true, now, now, now
		return nil
	}
	return fmt.Errorf("merge pull %s#%d: not found", fullName, number)
}

func (s *Sim) getRepo(c *call) *response {
	r, errResp := s.repoOf(c)
	if errResp != nil {
		return errResp
	}
	m := s.repoJSON(r)
	m["permissions"] = map[string]any{"admin": true, "maintain": true, "push": true, "triage": true, "pull": true}
	return ok(m)
}

func (s *Sim) fileJSON(r *repo, ref, filePath string, content []byte, withContent bool) map[string]any {
	fn := r.fullName()
	sha := blobSHA(content)
	self := s.api("/repos/%s/contents/%s?ref=%s", fn, filePath, ref)
	git := s.api("/repos/%s/git/blobs/%s", fn, sha)
	html := s.web("/%s/blob/%s/%s", fn, ref, filePath)
	m := map[string]any{
		"type":         "file",
		"size":         len(content),
		"name":         path.Base(filePath),
		"path":         filePath,
		"sha":          sha,
		"url":          self,
		"git_url":      git,
		"html_url":     html,
		"download_url": s.base + rawPath + fn + "/" + ref + "/" + filePath,
		"_links":       map[string]any{"self": self, "git": git, "html": html},
	}
	if withContent {
		m["encoding"] = "base64"
		m["content"] = wrap60(base64.StdEncoding.EncodeToString(content))
	}
	return m
}

// wrap60 breaks base64 into lines of 60 characters, as GitHub's contents API
// does.
func wrap60(s string) string {
	var b strings.Builder
	for len(s) > 60 {
		b.WriteString(s[:60])
		b.WriteByte('\n')
		s = s[60:]
	}
	b.WriteString(s)
	b.WriteByte('\n')
	return b.String()
}

func (s *Sim) getContents(c *call) *response {
	r, errResp := s.repoOf(c)
	if errResp != nil {
		return errResp
	}
	ref := c.r.URL.Query().Get("ref")
	if ref == "" {
		ref = r.defaultBranch
	}
	commit, _, found := r.resolveRef(ref)
	if !found {
		return fail(http.StatusNotFound, "No commit found for the ref "+ref)
	}
	filePath := strings.Trim(c.p["path"], "/")
	if b, isFile := commit.files[filePath]; isFile {
		return ok(s.fileJSON(r, ref, filePath, b, true))
	}
	entries := map[string]map[string]any{}
	prefix := filePath + "/"
	for p, b := range commit.files {
		rest, under := strings.CutPrefix(p, prefix)
		if !under {
			continue
		}
		if dir, _, nested := strings.Cut(rest, "/"); nested {
			dp := prefix + dir
			entries[dp] = map[string]any{
				"type": "dir", "size": 0, "name": dir, "path": dp, "sha": treeID(commit.sha + dp),
				"url": s.api("/repos/%s/contents/%s?ref=%s", r.fullName(), dp, ref), "git_url": nil,
				"html_url": s.web("/%s/tree/%s/%s", r.fullName(), ref, dp), "download_url": nil,
			}
			continue
		}
		entries[p] = s.fileJSON(r, ref, p, b, false)
	}
	if len(entries) == 0 {
		return notFound()
	}
	list := []any{}
	for _, k := range sortedKeys(entries) {
		list = append(list, entries[k])
	}
	return ok(list)
}

type putContentsBody struct {
	Message *string `json:"message"`
	Content *string `json:"content"`
	SHA     *string `json:"sha"`
	Branch  string  `json:"branch"`
}

func (s *Sim) putContents(c *call) *response {
	r, errResp := s.repoOf(c)
	if errResp != nil {
		return errResp
	}
	var body putContentsBody
	if err := decodeBody(c.r, &body); err != nil {
		return fail(http.StatusBadRequest, "Problems parsing JSON")
	}
	switch {
	case body.Message == nil:
		return invalid(`"message" wasn't supplied.`)
	case body.Content == nil:
		return invalid(`"content" wasn't supplied.`)
	}
	content, err := base64.StdEncoding.DecodeString(*body.Content)
	if err != nil {
		return fail(http.StatusUnprocessableEntity, "content is not valid Base64")
	}
	branch := body.Branch
	if branch == "" {
		branch = r.defaultBranch
	}
	branch = strings.TrimPrefix(branch, "refs/heads/")
	headSHA, found := r.branches[branch]
	if !found {
		return fail(http.StatusNotFound, "Branch "+branch+" not found")
	}
	filePath := strings.Trim(c.p["path"], "/")
	head := r.commits[headSHA]
	old, exists := head.files[filePath]
	switch {
	case exists && body.SHA == nil:
		return invalid(`"sha" wasn't supplied.`)
	case exists && *body.SHA != blobSHA(old):
		return fail(http.StatusConflict, fmt.Sprintf("%s does not match %s", filePath, *body.SHA))
	case !exists && body.SHA != nil && *body.SHA != "":
		return fail(http.StatusConflict, fmt.Sprintf("%s does not match %s", filePath, *body.SHA))
	}
	commit := s.commitFile(r, branch, head, filePath, content, *body.Message)
	status := http.StatusCreated
	if exists {
		status = http.StatusOK
	}
	fn := r.fullName()
	author := map[string]any{"name": s.opts.Actor, "email": s.opts.Actor + "@users.noreply.github.com", "date": ts(commit.at)}
	return &response{status: status, body: map[string]any{
		"content": s.fileJSON(r, branch, filePath, content, false),
		"commit": map[string]any{
			"sha":       commit.sha,
			"node_id":   nodeID("Commit", int64(len(r.commits))),
			"url":       s.api("/repos/%s/git/commits/%s", fn, commit.sha),
			"html_url":  s.web("/%s/commit/%s", fn, commit.sha),
			"author":    author,
			"committer": author,
			"message":   commit.message,
			"tree":      map[string]any{"sha": treeID(commit.sha), "url": s.api("/repos/%s/git/trees/%s", fn, treeID(commit.sha))},
			"parents": []any{map[string]any{
				"sha": commit.parent, "url": s.api("/repos/%s/git/commits/%s", fn, commit.parent),
				"html_url": s.web("/%s/commit/%s", fn, commit.parent),
			}},
			"verification": map[string]any{"verified": false, "reason": "unsigned", "signature": nil, "payload": nil},
		},
	}}
}

func (s *Sim) refJSON(r *repo, name, sha string) map[string]any {
	return map[string]any{
		"ref":     name,
		"node_id": nodeID("Ref", int64(len(name))),
		"url":     s.api("/repos/%s/git/%s", r.fullName(), name),
		"object": map[string]any{
			"sha":  sha,
			"type": "commit",
			"url":  s.api("/repos/%s/git/commits/%s", r.fullName(), sha),
		},
	}
}

// refs lists the repository's refs ("refs/heads/main" -> sha), sorted.
func (r *repo) refs() ([]string, map[string]string) {
	m := map[string]string{}
	for b, sha := range r.branches {
		m["refs/heads/"+b] = sha
	}
	return sortedKeys(m), m
}

func (s *Sim) getRef(c *call) *response {
	r, errResp := s.repoOf(c)
	if errResp != nil {
		return errResp
	}
	name := "refs/" + strings.Trim(c.p["ref"], "/")
	_, m := r.refs()
	sha, found := m[name]
	if !found {
		return notFound()
	}
	return ok(s.refJSON(r, name, sha))
}

// matchingRefs is the legacy GET git/refs/{ref}: the ref itself when it
// exists, else the refs under it as a list.
func (s *Sim) matchingRefs(c *call) *response {
	r, errResp := s.repoOf(c)
	if errResp != nil {
		return errResp
	}
	name := "refs/" + strings.Trim(c.p["ref"], "/")
	names, m := r.refs()
	if sha, found := m[name]; found {
		return ok(s.refJSON(r, name, sha))
	}
	list := []any{}
	for _, n := range names {
		if strings.HasPrefix(n, name+"/") {
			list = append(list, s.refJSON(r, n, m[n]))
		}
	}
	if len(list) == 0 {
		return notFound()
	}
	return ok(list)
}

// listMatchingRefs lists the refs starting with the given prefix ("heads/dev"
// matches refs/heads/dev and refs/heads/dev-2), possibly none.
func (s *Sim) listMatchingRefs(c *call) *response {
	r, errResp := s.repoOf(c)
	if errResp != nil {
		return errResp
	}
	prefix := "refs/" + strings.TrimPrefix(c.p["ref"], "/")
	names, m := r.refs()
	list := []any{}
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			list = append(list, s.refJSON(r, n, m[n]))
		}
	}
	return ok(list)
}

func (s *Sim) createRef(c *call) *response {
	r, errResp := s.repoOf(c)
	if errResp != nil {
		return errResp
	}
	var body struct {
		Ref *string `json:"ref"`
		SHA *string `json:"sha"`
	}
	if err := decodeBody(c.r, &body); err != nil {
		return fail(http.StatusBadRequest, "Problems parsing JSON")
	}
	switch {
	case body.Ref == nil:
		return invalid(`"ref" wasn't supplied.`)
	case body.SHA == nil:
		return invalid(`"sha" wasn't supplied.`)
	case !strings.HasPrefix(*body.Ref, "refs/") || strings.Count(*body.Ref, "/") < 2:
		return fail(http.StatusUnprocessableEntity, "Reference name must contain at least three slash-separated components.")
	case !strings.HasPrefix(*body.Ref, "refs/heads/"):
		return fail(http.StatusUnprocessableEntity, "Reference update failed: the simulator creates branches (refs/heads/...) only")
	}
	if _, known := r.commits[*body.SHA]; !known {
		return fail(http.StatusUnprocessableEntity, "Object does not exist")
	}
	branch := strings.TrimPrefix(*body.Ref, "refs/heads/")
	if _, exists := r.branches[branch]; exists {
		return fail(http.StatusUnprocessableEntity, "Reference already exists")
	}
	r.branches[branch] = *body.SHA
	return &response{status: http.StatusCreated, body: s.refJSON(r, *body.Ref, *body.SHA)}
}

func (s *Sim) pullJSON(r *repo, p *pull) map[string]any {
	fn := r.fullName()
	side := func(ref, sha string) map[string]any {
		return map[string]any{"label": r.owner + ":" + ref, "ref": ref, "sha": sha, "user": s.userJSON(r.owner, "Organization"), "repo": s.repoJSON(r)}
	}
	headSHA, baseSHA := p.headSHA, p.baseSHA
	if p.state == "open" {
		headSHA, baseSHA = r.branches[p.headRef], r.branches[p.baseRef]
	}
	return map[string]any{
		"id":                    p.id,
		"node_id":               nodeID("PullRequest", p.id),
		"number":                p.number,
		"url":                   s.api("/repos/%s/pulls/%d", fn, p.number),
		"html_url":              s.web("/%s/pull/%d", fn, p.number),
		"diff_url":              s.web("/%s/pull/%d.diff", fn, p.number),
		"patch_url":             s.web("/%s/pull/%d.patch", fn, p.number),
		"issue_url":             s.api("/repos/%s/issues/%d", fn, p.number),
		"state":                 p.state,
		"locked":                false,
		"title":                 p.title,
		"body":                  p.body,
		"user":                  s.actorJSON(),
		"draft":                 p.draft,
		"merged":                p.merged,
		"created_at":            ts(p.createdAt),
		"updated_at":            ts(p.updatedAt),
		"closed_at":             ts(p.closedAt),
		"merged_at":             ts(p.mergedAt),
		"head":                  side(p.headRef, headSHA),
		"base":                  side(p.baseRef, baseSHA),
		"author_association":    "OWNER",
		"maintainer_can_modify": false,
	}
}

// branchOfHead accepts "branch" or "owner:branch" for the owner of r.
func branchOfHead(r *repo, head string) (string, bool) {
	if owner, b, qualified := strings.Cut(head, ":"); qualified {
		if !strings.EqualFold(owner, r.owner) {
			return "", false
		}
		head = b
	}
	_, exists := r.branches[head]
	return head, exists
}

func (s *Sim) createPull(c *call) *response {
	r, errResp := s.repoOf(c)
	if errResp != nil {
		return errResp
	}
	var body struct {
		Title *string `json:"title"`
		Head  string  `json:"head"`
		Base  string  `json:"base"`
		Body  string  `json:"body"`
		Draft bool    `json:"draft"`
	}
	if err := decodeBody(c.r, &body); err != nil {
		return fail(http.StatusBadRequest, "Problems parsing JSON")
	}
	if body.Title == nil {
		return invalid(`"title" wasn't supplied.`)
	}
	head, headOK := branchOfHead(r, body.Head)
	_, baseOK := r.branches[body.Base]
	switch {
	case !baseOK:
		return validationFailed(validationError{Resource: "PullRequest", Field: "base", Code: "invalid"})
	case !headOK:
		return validationFailed(validationError{Resource: "PullRequest", Field: "head", Code: "invalid"})
	case r.branches[head] == r.branches[body.Base]:
		return validationFailed(validationError{Resource: "PullRequest", Code: "custom", Message: fmt.Sprintf("No commits between %s and %s", body.Base, head)})
	}
	for _, p := range r.pulls {
		if p.state == "open" && p.headRef == head && p.baseRef == body.Base {
			return validationFailed(validationError{Resource: "PullRequest", Code: "custom", Message: fmt.Sprintf("A pull request already exists for %s:%s.", r.owner, head)})
		}
	}
	p := &pull{
		id: s.nextPullID, number: int64(len(r.pulls) + 1), title: *body.Title, body: body.Body,
		headRef: head, baseRef: body.Base, state: "open", draft: body.Draft, createdAt: c.now, updatedAt: c.now,
	}
	s.nextPullID++
	r.pulls = append(r.pulls, p)
	return &response{status: http.StatusCreated, body: s.pullJSON(r, p)}
}

func (s *Sim) listPulls(c *call) *response {
	r, errResp := s.repoOf(c)
	if errResp != nil {
		return errResp
	}
	q := c.r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	var match []*pull
	for _, p := range r.pulls {
		if state != "all" && p.state != state {
			continue
		}
		if h := q.Get("head"); h != "" {
			b, _ := branchOfHead(r, h)
			if b == "" || b != p.headRef {
				continue
			}
		}
		if b := q.Get("base"); b != "" && b != p.baseRef {
			continue
		}
		match = append(match, p)
	}
	sort.SliceStable(match, func(i, k int) bool { return match[i].number > match[k].number })
	from, to, link := s.page(c.r, len(match))
	out := []any{}
	for _, p := range match[from:to] {
		out = append(out, s.pullJSON(r, p))
	}
	return paged(out, link)
}

func (s *Sim) getPull(c *call) *response {
	r, errResp := s.repoOf(c)
	if errResp != nil {
		return errResp
	}
	n, valid := c.p.int64("number")
	for _, p := range r.pulls {
		if valid && p.number == n {
			return ok(s.pullJSON(r, p))
		}
	}
	return notFound()
}

// serveRawFile serves download_url of the contents API: public repositories
// without credentials, private ones with a valid token.
func (s *Sim) serveRawFile(w http.ResponseWriter, r *http.Request, p params) {
	s.mu.Lock()
	rp := s.repo(p["owner"], p["repo"])
	var content []byte
	found := false
	if rp != nil {
		if c, _, ok := rp.resolveRef(p["sha"]); ok {
			content, found = c.files[p["path"]]
		}
		if found && rp.private {
			tok, hasTok := bearerToken(r.Header.Get("Authorization"))
			found = hasTok && (len(s.tokens) == 0 || s.tokens[tok])
		}
	}
	s.mu.Unlock()
	if !found {
		http.Error(w, "404: Not Found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(content)
}

// serveRunPage is a run's html_url: a plain-text summary, saying that GitHub
// is simulated.
func (s *Sim) serveRunPage(w http.ResponseWriter, r *http.Request, p params) {
	id, _ := p.int64("run_id")
	s.mu.Lock()
	rn := s.runs[id]
	var b strings.Builder
	if rn != nil && strings.EqualFold(rn.repo.fullName(), p["owner"]+"/"+p["repo"]) {
		fmt.Fprintf(&b, "Simulated GitHub Actions run %d (DeskForge GitHub simulator: nothing ran on GitHub)\n\n", rn.id)
		fmt.Fprintf(&b, "Repository: %s\nWorkflow:   %s\nTitle:      %s\nBranch:     %s\nAttempt:    %d\nStatus:     %s %s\n",
			rn.repo.fullName(), rn.workflowPath, rn.displayTitle, rn.branch, rn.attempt, rn.status, rn.conclusion)
		for _, j := range rn.jobs {
			fmt.Fprintf(&b, "\nJob %d (attempt %d) %q on %s: %s %s\n", j.id, j.attempt, j.name, strings.Join(j.labels, ","), j.status, j.conclusion)
			for _, st := range j.steps {
				fmt.Fprintf(&b, "  %d. %-24s %s %s\n", st.number, st.name, st.status, st.conclusion)
			}
		}
	}
	s.mu.Unlock()
	if b.Len() == 0 {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}
