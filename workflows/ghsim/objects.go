package ghsim

import (
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"strings"
	"time"
)

// JSON builders for GitHub's objects. Maps rather than structs so that every
// key GitHub sends is present, with null where GitHub sends null.

func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

func nodeID(kind string, id int64) string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%03d:%s%d", len(kind), kind, id)))
}

// loginID derives a stable user id from a login.
func loginID(login string) int64 {
	h := fnv.New32a()
	h.Write([]byte(strings.ToLower(login)))
	return 1000000 + int64(h.Sum32()%90000000)
}

func (s *Sim) api(format string, a ...any) string { return s.base + fmt.Sprintf(format, a...) }
func (s *Sim) web(format string, a ...any) string {
	return s.base + strings.TrimSuffix(webPath, "/") + fmt.Sprintf(format, a...)
}

func (s *Sim) userJSON(login, typ string) map[string]any {
	id := loginID(login)
	return map[string]any{
		"login":               login,
		"id":                  id,
		"node_id":             nodeID(typ, id),
		"avatar_url":          s.web("/avatars/%s", login),
		"gravatar_id":         "",
		"url":                 s.api("/users/%s", login),
		"html_url":            s.web("/%s", login),
		"followers_url":       s.api("/users/%s/followers", login),
		"following_url":       s.api("/users/%s/following{/other_user}", login),
		"gists_url":           s.api("/users/%s/gists{/gist_id}", login),
		"starred_url":         s.api("/users/%s/starred{/owner}{/repo}", login),
		"subscriptions_url":   s.api("/users/%s/subscriptions", login),
		"organizations_url":   s.api("/users/%s/orgs", login),
		"repos_url":           s.api("/users/%s/repos", login),
		"events_url":          s.api("/users/%s/events{/privacy}", login),
		"received_events_url": s.api("/users/%s/received_events", login),
		"type":                typ,
		"user_view_type":      "public",
		"site_admin":          false,
	}
}

func (s *Sim) actorJSON() map[string]any { return s.userJSON(s.opts.Actor, "User") }

func (s *Sim) orgJSON(login string) map[string]any {
	id := loginID(login)
	return map[string]any{
		"login":              login,
		"id":                 id,
		"node_id":            nodeID("Organization", id),
		"url":                s.api("/orgs/%s", login),
		"repos_url":          s.api("/orgs/%s/repos", login),
		"events_url":         s.api("/orgs/%s/events", login),
		"hooks_url":          s.api("/orgs/%s/hooks", login),
		"issues_url":         s.api("/orgs/%s/issues", login),
		"members_url":        s.api("/orgs/%s/members{/member}", login),
		"public_members_url": s.api("/orgs/%s/public_members{/member}", login),
		"avatar_url":         s.web("/avatars/%s", login),
		"description":        "",
	}
}

// minimalRepoJSON is the short repository object GitHub embeds in workflow
// runs (repository, head_repository) and pull request heads.
func (s *Sim) minimalRepoJSON(r *repo) map[string]any {
	fn := r.fullName()
	u := func(suffix string) string { return s.api("/repos/%s%s", fn, suffix) }
	return map[string]any{
		"id":                r.id,
		"node_id":           nodeID("Repository", r.id),
		"name":              r.name,
		"full_name":         fn,
		"private":           r.private,
		"owner":             s.userJSON(r.owner, "Organization"),
		"html_url":          s.web("/%s", fn),
		"description":       nil,
		"fork":              false,
		"url":               u(""),
		"archive_url":       u("/{archive_format}{/ref}"),
		"assignees_url":     u("/assignees{/user}"),
		"blobs_url":         u("/git/blobs{/sha}"),
		"branches_url":      u("/branches{/branch}"),
		"collaborators_url": u("/collaborators{/collaborator}"),
		"comments_url":      u("/comments{/number}"),
		"commits_url":       u("/commits{/sha}"),
		"compare_url":       u("/compare/{base}...{head}"),
		"contents_url":      u("/contents/{+path}"),
		"contributors_url":  u("/contributors"),
		"deployments_url":   u("/deployments"),
		"downloads_url":     u("/downloads"),
		"events_url":        u("/events"),
		"forks_url":         u("/forks"),
		"git_commits_url":   u("/git/commits{/sha}"),
		"git_refs_url":      u("/git/refs{/sha}"),
		"git_tags_url":      u("/git/tags{/sha}"),
		"hooks_url":         u("/hooks"),
		"issue_comment_url": u("/issues/comments{/number}"),
		"issue_events_url":  u("/issues/events{/number}"),
		"issues_url":        u("/issues{/number}"),
		"keys_url":          u("/keys{/key_id}"),
		"labels_url":        u("/labels{/name}"),
		"languages_url":     u("/languages"),
		"merges_url":        u("/merges"),
		"milestones_url":    u("/milestones{/number}"),
		"notifications_url": u("/notifications{?since,all,participating}"),
		"pulls_url":         u("/pulls{/number}"),
		"releases_url":      u("/releases{/id}"),
		"stargazers_url":    u("/stargazers"),
		"statuses_url":      u("/statuses/{sha}"),
		"subscribers_url":   u("/subscribers"),
		"subscription_url":  u("/subscription"),
		"tags_url":          u("/tags"),
		"teams_url":         u("/teams"),
		"trees_url":         u("/git/trees{/sha}"),
	}
}

// repoJSON is the full repository object of GET /repos/{owner}/{repo} and
// of webhook payloads.
func (s *Sim) repoJSON(r *repo) map[string]any {
	m := s.minimalRepoJSON(r)
	fn := r.fullName()
	host := strings.TrimPrefix(strings.TrimPrefix(s.base, "http://"), "https://")
	visibility := "public"
	if r.private {
		visibility = "private"
	}
	pushed := r.createdAt
	for _, sha := range r.branches {
		if c := r.commits[sha]; c != nil && c.at.After(pushed) {
			pushed = c.at
		}
	}
	for k, v := range map[string]any{
		"clone_url":                   s.web("/%s.git", fn),
		"git_url":                     "git://" + host + "/" + fn + ".git",
		"ssh_url":                     "git@" + host + ":" + fn + ".git",
		"svn_url":                     s.web("/%s", fn),
		"mirror_url":                  nil,
		"homepage":                    nil,
		"language":                    nil,
		"size":                        0,
		"stargazers_count":            0,
		"watchers_count":              0,
		"watchers":                    0,
		"forks_count":                 0,
		"forks":                       0,
		"open_issues_count":           0,
		"open_issues":                 0,
		"has_issues":                  true,
		"has_projects":                false,
		"has_downloads":               true,
		"has_wiki":                    false,
		"has_pages":                   false,
		"has_discussions":             false,
		"archived":                    false,
		"disabled":                    false,
		"allow_forking":               true,
		"is_template":                 false,
		"web_commit_signoff_required": false,
		"topics":                      []string{},
		"visibility":                  visibility,
		"default_branch":              r.defaultBranch,
		"license":                     nil,
		"custom_properties":           map[string]any{},
		"created_at":                  ts(r.createdAt),
		"updated_at":                  ts(pushed),
		"pushed_at":                   ts(pushed),
	} {
		m[k] = v
	}
	return m
}

func (s *Sim) workflowJSON(r *repo, wfPath string) map[string]any {
	id := r.workflowIDs[wfPath]
	name := wfPath
	if c, _, ok := r.resolveRef(r.defaultBranch); ok {
		if def, err := parseWorkflow(c.files[wfPath]); err == nil && def.Name != "" {
			name = def.Name
		}
	}
	return map[string]any{
		"id":         id,
		"node_id":    nodeID("Workflow", id),
		"name":       name,
		"path":       wfPath,
		"state":      "active",
		"created_at": ts(r.workflowAt[wfPath]),
		"updated_at": ts(r.workflowAt[wfPath]),
		"url":        s.api("/repos/%s/actions/workflows/%d", r.fullName(), id),
		"html_url":   s.web("/%s/blob/%s/%s", r.fullName(), r.defaultBranch, wfPath),
		"badge_url":  s.web("/%s/workflows/%s/badge.svg", r.fullName(), strings.TrimPrefix(wfPath, ".github/workflows/")),
	}
}

func (s *Sim) runJSON(rn *run) map[string]any {
	r := rn.repo
	fn := r.fullName()
	runURL := s.api("/repos/%s/actions/runs/%d", fn, rn.id)
	var conclusion any
	if rn.status == statusCompleted {
		conclusion = rn.conclusion
	}
	var previous any
	if rn.attempt > 1 {
		previous = fmt.Sprintf("%s/attempts/%d", runURL, rn.attempt-1)
	}
	return map[string]any{
		"id":                   rn.id,
		"name":                 rn.workflowName,
		"node_id":              nodeID("WorkflowRun", rn.id),
		"head_branch":          rn.branch,
		"head_sha":             rn.headSHA,
		"path":                 rn.workflowPath,
		"display_title":        rn.displayTitle,
		"run_number":           rn.runNumber,
		"run_attempt":          rn.attempt,
		"event":                "workflow_dispatch",
		"status":               rn.status,
		"conclusion":           conclusion,
		"workflow_id":          rn.workflowID,
		"check_suite_id":       rn.checkSuiteID,
		"check_suite_node_id":  nodeID("CheckSuite", rn.checkSuiteID),
		"url":                  runURL,
		"html_url":             s.web("/%s/actions/runs/%d", fn, rn.id),
		"pull_requests":        []any{},
		"created_at":           ts(rn.createdAt),
		"updated_at":           ts(rn.updatedAt),
		"run_started_at":       ts(rn.runStartedAt),
		"jobs_url":             runURL + "/jobs",
		"logs_url":             runURL + "/logs",
		"check_suite_url":      s.api("/repos/%s/check-suites/%d", fn, rn.checkSuiteID),
		"artifacts_url":        runURL + "/artifacts",
		"cancel_url":           runURL + "/cancel",
		"rerun_url":            runURL + "/rerun",
		"previous_attempt_url": previous,
		"workflow_url":         s.api("/repos/%s/actions/workflows/%d", fn, rn.workflowID),
		"referenced_workflows": []any{},
		"head_commit": map[string]any{
			"id":        rn.headSHA,
			"tree_id":   treeID(rn.headSHA),
			"message":   rn.headMessage,
			"timestamp": ts(rn.headAt),
			"author":    map[string]any{"name": rn.actor, "email": rn.actor + "@users.noreply.github.com"},
			"committer": map[string]any{"name": "GitHub", "email": "noreply@github.com"},
		},
		"actor":            s.userJSON(rn.actor, "User"),
		"triggering_actor": s.userJSON(rn.actor, "User"),
		"repository":       s.minimalRepoJSON(r),
		"head_repository":  s.minimalRepoJSON(r),
	}
}

func treeID(commitSHA string) string {
	h := fnv.New64a()
	h.Write([]byte("tree " + commitSHA))
	return fmt.Sprintf("%016x%016x%08x", h.Sum64(), h.Sum64()^0x5bd1e995, uint32(h.Sum64()>>7))
}

func (s *Sim) jobJSON(j *job) map[string]any {
	rn := j.run
	fn := rn.repo.fullName()
	var conclusion, runnerID, runnerName, groupID, groupName any
	if j.status == statusCompleted {
		conclusion = j.conclusion
	}
	if j.runnerName != "" {
		runnerID, runnerName, groupID, groupName = j.runnerID, j.runnerName, 0, "GitHub Actions"
	}
	steps := make([]any, 0, len(j.steps))
	for _, st := range j.steps {
		var c any
		if st.status == statusCompleted {
			c = st.conclusion
		}
		steps = append(steps, map[string]any{
			"name":         st.name,
			"status":       st.status,
			"conclusion":   c,
			"number":       st.number,
			"started_at":   ts(st.startedAt),
			"completed_at": ts(st.completedAt),
		})
	}
	started := j.startedAt
	if started.IsZero() {
		started = j.createdAt // GitHub reports the creation time until a runner starts the job
	}
	return map[string]any{
		"id":                j.id,
		"run_id":            rn.id,
		"run_url":           s.api("/repos/%s/actions/runs/%d", fn, rn.id),
		"run_attempt":       j.attempt,
		"node_id":           nodeID("CheckRun", j.id),
		"head_sha":          rn.headSHA,
		"head_branch":       rn.branch,
		"url":               s.api("/repos/%s/actions/jobs/%d", fn, j.id),
		"html_url":          s.web("/%s/actions/runs/%d/job/%d", fn, rn.id, j.id),
		"status":            j.status,
		"conclusion":        conclusion,
		"created_at":        ts(j.createdAt),
		"started_at":        ts(started),
		"completed_at":      ts(j.completedAt),
		"name":              j.name,
		"steps":             steps,
		"check_run_url":     s.api("/repos/%s/check-runs/%d", fn, j.id),
		"labels":            append([]string{}, j.labels...),
		"runner_id":         runnerID,
		"runner_name":       runnerName,
		"runner_group_id":   groupID,
		"runner_group_name": groupName,
		"workflow_name":     rn.workflowName,
	}
}
