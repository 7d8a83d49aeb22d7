package ghsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/deskforge/deskforge/templates"
)

// Run and job statuses and conclusions, as GitHub spells them.
const (
	statusQueued     = "queued"
	statusInProgress = "in_progress"
	statusCompleted  = "completed"
)

// stepNames are the steps of every simulated job, in order.
var stepNames = []string{
	"Set up job",
	"Run actions/checkout@v4",
	"Set up toolchains",
	"Build installer",
	"Upload release asset",
	"Complete job",
}

const (
	stepBuild  = 3 // index of "Build installer"
	stepUpload = 4 // index of "Upload release asset"
)

type run struct {
	id                         int64
	repo                       *repo
	workflowPath, workflowName string
	workflowID                 int64
	runNumber                  int
	branch, headSHA            string
	headMessage                string
	headAt                     time.Time
	inputs                     map[string]string
	displayTitle               string
	actor                      string
	def                        *workflowDef
	checkSuiteID               int64
	attempt                    int
	status, conclusion         string
	createdAt, updatedAt       time.Time
	runStartedAt               time.Time
	jobs                       []*job // every attempt's job, latest last
	seq                        uint64 // n-th run dispatched, for fault decisions
}

func (rn *run) latestJob() *job { return rn.jobs[len(rn.jobs)-1] }

// failReason says why a job fails, which decides its log lines.
type failReason string

const (
	failCompile  failReason = "compile"
	failConfig   failReason = "config"
	failPlatform failReason = "platform"
)

type job struct {
	id                 int64
	run                *run
	attempt            int
	name               string
	labels             []string
	status, conclusion string
	createdAt          time.Time
	startedAt          time.Time
	completedAt        time.Time
	runnerID           int64
	runnerName         string
	steps              []*step
	outcome            Outcome
	reason             failReason
	config             templates.BuildConfig
	configErr          error
	assetName          string
	assetID            int64 // set once uploaded
	assetDigest        string
	assetSize          int64
	releaseCreated     bool
	startAt            time.Time  // when a runner picks it up
	plan               []stepPlan // per step
	cancelAt           time.Time  // zero unless cancel requested
	cancelled          bool
}

type stepPlan struct {
	start, end time.Time
	conclusion string // success, failure, skipped
}

type step struct {
	number                 int
	name                   string
	status, conclusion     string
	startedAt, completedAt time.Time
}

// RunInfo is a snapshot of a simulated run, for tests.
type RunInfo struct {
	ID           int64
	Repo         string
	Workflow     string // file name, e.g. "deskforge.yml"
	Branch       string
	HeadSHA      string
	DisplayTitle string
	Inputs       map[string]string
	Attempt      int
	Status       string
	Conclusion   string
	Outcome      Outcome // of the latest attempt
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Jobs         []JobInfo // every attempt's job, oldest first
}

// JobInfo is a snapshot of a simulated job.
type JobInfo struct {
	ID          int64
	Attempt     int
	Name        string
	Status      string
	Conclusion  string
	RunnerName  string
	Labels      []string
	AssetName   string
	AssetID     int64 // 0 unless the job uploaded its asset
	StartedAt   time.Time
	CompletedAt time.Time
}

// Runs returns every run of a repository ("owner/name"), oldest first, so a
// test can assert, e.g., that no build id was dispatched twice.
func (s *Sim) Runs(fullName string) []RunInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []RunInfo
	for _, rn := range s.sortedRuns() {
		if !strings.EqualFold(rn.repo.fullName(), fullName) {
			continue
		}
		info := RunInfo{
			ID: rn.id, Repo: rn.repo.fullName(), Workflow: strings.TrimPrefix(rn.workflowPath, ".github/workflows/"),
			Branch: rn.branch, HeadSHA: rn.headSHA, DisplayTitle: rn.displayTitle, Inputs: map[string]string{},
			Attempt: rn.attempt, Status: rn.status, Conclusion: rn.conclusion, Outcome: rn.latestJob().outcome,
			CreatedAt: rn.createdAt, UpdatedAt: rn.updatedAt,
		}
		for k, v := range rn.inputs {
			info.Inputs[k] = v
		}
		for _, j := range rn.jobs {
			info.Jobs = append(info.Jobs, JobInfo{
				ID: j.id, Attempt: j.attempt, Name: j.name, Status: j.status, Conclusion: j.conclusion,
				RunnerName: j.runnerName, Labels: append([]string(nil), j.labels...), AssetName: j.assetName,
				AssetID: j.assetID, StartedAt: j.startedAt, CompletedAt: j.completedAt,
			})
		}
		out = append(out, info)
	}
	return out
}

func (s *Sim) sortedRuns() []*run {
	runs := make([]*run, 0, len(s.runs))
	for _, rn := range s.runs {
		runs = append(runs, rn)
	}
	sort.Slice(runs, func(i, k int) bool { return runs[i].id < runs[k].id })
	return runs
}

// repoOf resolves {owner}/{repo} of a call.
func (s *Sim) repoOf(c *call) (*repo, *response) {
	r := s.repo(c.p["owner"], c.p["repo"])
	if r == nil {
		return nil, notFound()
	}
	return r, nil
}

// workflowPath resolves a workflow_id parameter (file name or numeric id).
func (r *repo) workflowPath(id string) (string, bool) {
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		for p, wid := range r.workflowIDs {
			if wid == n {
				return p, true
			}
		}
		return "", false
	}
	p := ".github/workflows/" + id
	_, ok := r.workflowIDs[p]
	return p, ok
}

func (s *Sim) listWorkflows(c *call) *response {
	r, errResp := s.repoOf(c)
	if errResp != nil {
		return errResp
	}
	head, _, _ := r.resolveRef(r.defaultBranch)
	var paths []string
	for p := range head.files {
		if isWorkflowPath(p) {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	from, to, link := s.page(c.r, len(paths))
	wfs := []any{}
	for _, p := range paths[from:to] {
		wfs = append(wfs, s.workflowJSON(r, p))
	}
	return paged(map[string]any{"total_count": len(paths), "workflows": wfs}, link)
}

func (s *Sim) getWorkflow(c *call) *response {
	r, errResp := s.repoOf(c)
	if errResp != nil {
		return errResp
	}
	p, known := r.workflowPath(c.p["workflow_id"])
	if !known {
		return notFound()
	}
	return ok(s.workflowJSON(r, p))
}

// rubyList formats names the way GitHub's messages list them: ["a", "b"].
func rubyList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func invalid(msg string) *response {
	return fail(http.StatusUnprocessableEntity, "Invalid request.\n\n"+msg)
}

func (s *Sim) dispatch(c *call) *response {
	r, errResp := s.repoOf(c)
	if errResp != nil {
		return errResp
	}
	var body map[string]json.RawMessage
	if err := decodeBody(c.r, &body); err != nil {
		return fail(http.StatusBadRequest, "Problems parsing JSON")
	}
	for _, k := range sortedKeys(body) {
		switch k {
		case "ref", "inputs":
		case "return_run_details":
			if s.ghes() {
				return invalid(`"return_run_details" is not a permitted key.`)
			}
		default:
			return invalid(strconv.Quote(k) + " is not a permitted key.")
		}
	}
	var ref string
	if raw, has := body["ref"]; !has {
		return invalid(`"ref" wasn't supplied.`)
	} else if err := json.Unmarshal(raw, &ref); err != nil {
		return invalid(fmt.Sprintf("For 'properties/ref', %s is not a string.", raw))
	}
	var returnDetails bool
	if raw, has := body["return_run_details"]; has {
		if err := json.Unmarshal(raw, &returnDetails); err != nil {
			return invalid(fmt.Sprintf("For 'properties/return_run_details', %s is not a boolean.", raw))
		}
	}
	wfPath, known := r.workflowPath(c.p["workflow_id"])
	if !known {
		return notFound()
	}
	head, branch, found := r.resolveRef(ref)
	if !found {
		// 422, not 404: the workflow exists, the ref does not (see
		// answers.go).
		return fail(http.StatusUnprocessableEntity, "No ref found for: "+ref)
	}
	content, onRef := head.files[wfPath]
	if !onRef {
		return notFound()
	}
	def, err := parseWorkflow(content)
	if err != nil {
		return fail(http.StatusUnprocessableEntity, err.Error())
	}
	if !def.Dispatch {
		return fail(http.StatusUnprocessableEntity, "Workflow does not have 'workflow_dispatch' trigger")
	}
	raw := map[string]json.RawMessage{}
	if in, has := body["inputs"]; has && string(in) != "null" {
		if err := json.Unmarshal(in, &raw); err != nil {
			return invalid(fmt.Sprintf("For 'properties/inputs', %s is not an object.", in))
		}
	}
	if len(raw) > 25 {
		return invalid(fmt.Sprintf("For 'properties/inputs', no more than 25 properties are allowed; %d were supplied.", len(raw)))
	}
	var unexpected []string
	for _, k := range sortedKeys(raw) {
		if _, declared := def.input(k); !declared {
			unexpected = append(unexpected, k)
		}
	}
	if len(unexpected) > 0 {
		return fail(http.StatusUnprocessableEntity, "Unexpected inputs provided: "+rubyList(unexpected))
	}
	inputs := map[string]string{}
	total := 0
	for _, in := range def.Inputs {
		v, has := raw[in.Name]
		if !has || string(v) == "null" {
			if in.HasDefault {
				inputs[in.Name] = in.Default
				continue
			}
			if in.Required {
				return fail(http.StatusUnprocessableEntity, fmt.Sprintf("Required input '%s' not provided", in.Name))
			}
			continue
		}
		val, msg := inputValue(in, v)
		if msg != "" {
			return fail(http.StatusUnprocessableEntity, msg)
		}
		inputs[in.Name] = val
		total += len(val)
	}
	if total > 65535 {
		return invalid("inputs are too large: at most 65,535 characters in total.")
	}
	rn := s.createRun(r, wfPath, def, branch, head, inputs, c.now)
	if !returnDetails {
		return &response{status: http.StatusNoContent}
	}
	return ok(map[string]any{
		"workflow_run_id": rn.id,
		"run_url":         s.api("/repos/%s/actions/runs/%d", r.fullName(), rn.id),
		"html_url":        s.web("/%s/actions/runs/%d", r.fullName(), rn.id),
	})
}

// inputValue checks one dispatched input against its declaration and
// returns it as the string the workflow sees, or GitHub's 422 message.
func inputValue(in inputDef, raw json.RawMessage) (string, string) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", "Problems parsing JSON"
	}
	notA := func(kind string) string {
		return fmt.Sprintf("Invalid request.\n\nFor 'properties/%s', %s is not a %s.", in.Name, raw, kind)
	}
	switch in.Type {
	case "boolean":
		switch x := v.(type) {
		case bool:
			return strconv.FormatBool(x), ""
		case string:
			if x == "true" || x == "false" {
				return x, ""
			}
		}
		return "", fmt.Sprintf("Provided value '%s' for input '%s' is not a boolean", strings.Trim(string(raw), `"`), in.Name)
	case "number":
		switch x := v.(type) {
		case json.Number:
			return x.String(), ""
		case string:
			if _, err := strconv.ParseFloat(x, 64); err == nil {
				return x, ""
			}
		}
		return "", fmt.Sprintf("Provided value '%s' for input '%s' is not a number", strings.Trim(string(raw), `"`), in.Name)
	}
	str, isString := v.(string)
	if !isString {
		return "", notA("string")
	}
	if in.Type == "choice" {
		for _, o := range in.Options {
			if o == str {
				return str, ""
			}
		}
		return "", fmt.Sprintf("Provided value '%s' for input '%s' not in the list of allowed values", str, in.Name)
	}
	return str, ""
}

// createRun records a workflow_dispatch run and its first job.
func (s *Sim) createRun(r *repo, wfPath string, def *workflowDef, branch string, head *commit, inputs map[string]string, now time.Time) *run {
	r.runNumbers[wfPath]++
	rn := &run{
		id: s.nextRunID, repo: r, workflowPath: wfPath, workflowID: r.workflowIDs[wfPath],
		runNumber: r.runNumbers[wfPath], branch: branch, headSHA: head.sha, headMessage: head.message, headAt: head.at,
		inputs: inputs, actor: s.opts.Actor, def: def, checkSuiteID: s.nextCheckSuiteID,
		createdAt: now, seq: s.runSeq,
	}
	s.nextRunID++
	s.nextCheckSuiteID++
	s.runSeq++
	rn.workflowName = def.Name
	if rn.workflowName == "" {
		rn.workflowName = wfPath
	}
	ctx := rn.exprContext()
	rn.displayTitle = rn.workflowName
	if def.RunName != "" {
		rn.displayTitle = renderTemplate(def.RunName, ctx)
	}
	s.runs[rn.id] = rn
	s.startAttempt(rn, now)
	return rn
}

func (rn *run) exprContext() exprContext {
	return exprContext{
		inputs: rn.inputs, actor: rn.actor, ref: "refs/heads/" + rn.branch, repo: rn.repo.fullName(),
		sha: rn.headSHA, workflow: rn.workflowName, runID: rn.id, runNum: rn.runNumber, attempt: max(1, rn.attempt),
	}
}

// startAttempt begins a new attempt of rn at now: a fresh queued job whose
// outcome and timeline are decided here.
func (s *Sim) startAttempt(rn *run, now time.Time) {
	rn.attempt++
	rn.status, rn.conclusion = statusQueued, ""
	rn.updatedAt, rn.runStartedAt = now, now
	ctx := rn.exprContext()
	j := &job{id: s.nextJobID, run: rn, attempt: rn.attempt, status: statusQueued, createdAt: now}
	s.nextJobID++
	j.name = orDefault(rn.def.JobID, "build")
	if rn.def.JobName != "" {
		j.name = renderTemplate(rn.def.JobName, ctx)
	}
	for _, l := range rn.def.RunsOn {
		if v := strings.TrimSpace(renderTemplate(l, ctx)); v != "" {
			j.labels = append(j.labels, v)
		}
	}
	if len(j.labels) == 0 {
		j.labels = []string{orDefault(rn.inputs[templates.InputRunner], "ubuntu-latest")}
	}
	s.decideOutcome(j)
	s.planJob(j, now)
	rn.jobs = append(rn.jobs, j)
	s.jobs[j.id] = j
	s.emitRun(rn, "requested", now)
	s.emitJob(j, "queued", now)
}

func orDefault(v, fallback string) string {
	if v == "" {
		return fallback
	}
	return v
}

// decideOutcome applies, in order: a runner label nobody serves (queued
// forever), the scenario rules, invalid config or platform (the build
// fails), and the probabilistic faults.
func (s *Sim) decideOutcome(j *job) {
	rn := j.run
	in := rn.inputs
	platform, arch, version := in[templates.InputPlatform], in[templates.InputArch], in[templates.InputVersion]
	if cfg := strings.TrimSpace(in[templates.InputConfig]); cfg != "" {
		j.configErr = json.Unmarshal([]byte(cfg), &j.config)
	}
	j.assetName = j.config.AssetName
	if j.assetName == "" {
		j.assetName = templates.AssetName(j.config.Name, version, platform, arch)
	}
	facts := runFacts{repo: rn.repo.fullName(), workflow: strings.TrimPrefix(rn.workflowPath, ".github/workflows/"), inputs: in, attempt: rn.attempt}
	j.outcome = pickOutcome(s.scenario, facts)
	if j.outcome == OutcomeFailure {
		j.reason = failCompile
	}
	f := s.opts.Faults
	n := rn.seq*16 + uint64(rn.attempt)
	switch {
	case !s.runnerServed(j.labels):
		j.outcome = OutcomeHangQueued
	case j.outcome != OutcomeSuccess:
	case j.configErr != nil:
		j.outcome, j.reason = OutcomeFailure, failConfig
	case templates.Extension(platform) == "" || templates.RustTarget(platform, arch) == "":
		j.outcome, j.reason = OutcomeFailure, failPlatform
	case f.hit("stuck", n, f.Stuck):
		j.outcome = OutcomeHangQueued
	case f.hit("fail", n, f.Fail):
		j.outcome, j.reason = OutcomeFailure, failCompile
	case f.hit("noasset", n, f.NoAsset):
		j.outcome = OutcomeNoAsset
	}
}

func (s *Sim) runnerServed(labels []string) bool {
	for _, l := range labels {
		if !s.labels[strings.ToLower(l)] {
			return false
		}
	}
	return len(labels) > 0
}

// planJob lays out the job's timeline from its creation: queued for
// Timing.Queued, then each step for Timing.PerStep. Steps after a failed one
// are skipped (taking no time) except "Complete job".
func (s *Sim) planJob(j *job, now time.Time) {
	j.startAt = now.Add(s.timing.Queued)
	t := j.startAt
	failed := false
	for i := range stepNames {
		p := stepPlan{start: t, conclusion: "success"}
		switch {
		case failed && i != len(stepNames)-1:
			p.conclusion = "skipped"
		case i == stepBuild && j.outcome == OutcomeFailure:
			p.conclusion = "failure"
			failed = true
		}
		if p.conclusion != "skipped" {
			t = t.Add(s.timing.PerStep)
		}
		p.end = t
		j.plan = append(j.plan, p)
	}
}

func (s *Sim) runOf(c *call) (*run, *response) {
	r, errResp := s.repoOf(c)
	if errResp != nil {
		return nil, errResp
	}
	id, valid := c.p.int64("run_id")
	rn := s.runs[id]
	if !valid || rn == nil || rn.repo != r {
		return nil, notFound()
	}
	return rn, nil
}

func (s *Sim) getRun(c *call) *response {
	rn, errResp := s.runOf(c)
	if errResp != nil {
		return errResp
	}
	return ok(s.runJSON(rn))
}

func (s *Sim) listRepoRuns(c *call) *response {
	r, errResp := s.repoOf(c)
	if errResp != nil {
		return errResp
	}
	return s.listRuns(c, r, "")
}

func (s *Sim) listWorkflowRuns(c *call) *response {
	r, errResp := s.repoOf(c)
	if errResp != nil {
		return errResp
	}
	p, known := r.workflowPath(c.p["workflow_id"])
	if !known {
		return notFound()
	}
	return s.listRuns(c, r, p)
}

func (s *Sim) listRuns(c *call, r *repo, wfPath string) *response {
	q := c.r.URL.Query()
	created, err := parseCreated(q.Get("created"))
	if err != nil {
		return fail(http.StatusUnprocessableEntity, err.Error())
	}
	var match []*run
	for _, rn := range s.sortedRuns() {
		switch {
		case rn.repo != r:
		case wfPath != "" && rn.workflowPath != wfPath:
		case q.Get("event") != "" && q.Get("event") != "workflow_dispatch":
		case q.Get("head_sha") != "" && q.Get("head_sha") != rn.headSHA:
		case q.Get("branch") != "" && q.Get("branch") != rn.branch:
		case q.Get("actor") != "" && !strings.EqualFold(q.Get("actor"), rn.actor):
		case q.Get("status") != "" && !statusMatches(q.Get("status"), rn):
		case !created(rn.createdAt):
		default:
			match = append(match, rn)
		}
	}
	// Newest first, as GitHub lists them.
	sort.Slice(match, func(i, k int) bool {
		if !match[i].createdAt.Equal(match[k].createdAt) {
			return match[i].createdAt.After(match[k].createdAt)
		}
		return match[i].id > match[k].id
	})
	from, to, link := s.page(c.r, len(match))
	runs := []any{}
	for _, rn := range match[from:to] {
		runs = append(runs, s.runJSON(rn))
	}
	resp := paged(map[string]any{"total_count": len(match), "workflow_runs": runs}, link)
	resp.snapshot = true // runJSON copies what it shows
	return resp
}

// statusMatches implements the status filter, which takes a status or a
// conclusion.
func statusMatches(want string, rn *run) bool {
	if rn.status == want {
		return true
	}
	return rn.status == statusCompleted && rn.conclusion == want
}

// parseCreated parses the created filter: ">=T", ">T", "<=T", "<T", "T..U",
// or a date or time on its own. Times may be dates (2024-01-20) or RFC 3339.
func parseCreated(v string) (func(time.Time) bool, error) {
	if v == "" {
		return func(time.Time) bool { return true }, nil
	}
	bad := fmt.Errorf("Invalid created filter: %q", v) //nolint:staticcheck // ST1005: GitHub's own message, capitalized as GitHub answers it
	parse := func(s string) (time.Time, bool, error) {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t, false, nil
		}
		if t, err := time.Parse("2006-01-02T15:04:05", s); err == nil {
			return t, false, nil
		}
		if t, err := time.Parse("2006-01-02", s); err == nil {
			return t, true, nil
		}
		return time.Time{}, false, bad
	}
	if a, b, isRange := strings.Cut(v, ".."); isRange {
		from, _, err1 := parse(a)
		to, day, err2 := parse(b)
		if err1 != nil || err2 != nil {
			return nil, bad
		}
		if day {
			to = to.Add(24*time.Hour - time.Nanosecond)
		}
		return func(t time.Time) bool { return !t.Before(from) && !t.After(to) }, nil
	}
	for _, op := range []string{">=", "<=", ">", "<"} {
		if rest, found := strings.CutPrefix(v, op); found {
			at, day, err := parse(rest)
			if err != nil {
				return nil, err
			}
			end := at
			if day {
				end = at.Add(24*time.Hour - time.Nanosecond)
			}
			switch op {
			case ">=":
				return func(t time.Time) bool { return !t.Before(at) }, nil
			case ">":
				return func(t time.Time) bool { return t.After(end) }, nil
			case "<=":
				return func(t time.Time) bool { return !t.After(end) }, nil
			default:
				return func(t time.Time) bool { return t.Before(at) }, nil
			}
		}
	}
	at, day, err := parse(v)
	if err != nil {
		return nil, err
	}
	if day {
		return func(t time.Time) bool { return !t.Before(at) && t.Before(at.Add(24*time.Hour)) }, nil
	}
	return func(t time.Time) bool { return t.Equal(at) }, nil
}

func (s *Sim) cancelRun(c *call) *response {
	rn, errResp := s.runOf(c)
	if errResp != nil {
		return errResp
	}
	if rn.status == statusCompleted {
		return fail(http.StatusConflict, "Cannot cancel a workflow run that is completed.")
	}
	j := rn.latestJob()
	if j.cancelAt.IsZero() {
		j.cancelAt = c.now
	}
	return &response{status: http.StatusAccepted, body: map[string]any{}}
}

// CancelOnGitHub cancels a run as someone using GitHub's web UI would:
// no API call, no DeskForge involved. It reports false when the run is
// unknown or already completed.
func (s *Sim) CancelOnGitHub(runID int64) bool {
	s.mu.Lock()
	rn := s.runs[runID]
	ok := rn != nil && rn.status != statusCompleted
	if ok {
		if j := rn.latestJob(); j.cancelAt.IsZero() {
			j.cancelAt = s.clock.Now()
		}
	}
	s.mu.Unlock()
	s.kick()
	return ok
}

func (s *Sim) rerunRun(c *call) *response {
	rn, errResp := s.runOf(c)
	if errResp != nil {
		return errResp
	}
	if rn.status != statusCompleted {
		return fail(http.StatusForbidden, "This workflow is already running")
	}
	s.startAttempt(rn, c.now)
	return &response{status: http.StatusCreated, body: map[string]any{}}
}

func (s *Sim) listRunJobs(c *call) *response {
	rn, errResp := s.runOf(c)
	if errResp != nil {
		return errResp
	}
	var jobs []*job
	if a, has := c.p["attempt"]; has {
		n, err := strconv.Atoi(a)
		if err != nil || n < 1 || n > rn.attempt {
			return notFound()
		}
		jobs = []*job{rn.jobs[n-1]}
	} else {
		switch c.r.URL.Query().Get("filter") {
		case "", "latest":
			jobs = []*job{rn.latestJob()}
		case "all":
			jobs = rn.jobs
		default:
			return fail(http.StatusUnprocessableEntity, "Invalid filter: must be one of latest, all")
		}
	}
	from, to, link := s.page(c.r, len(jobs))
	out := []any{}
	for _, j := range jobs[from:to] {
		out = append(out, s.jobJSON(j))
	}
	return paged(map[string]any{"total_count": len(jobs), "jobs": out}, link)
}

func (s *Sim) jobOf(c *call) (*job, *response) {
	r, errResp := s.repoOf(c)
	if errResp != nil {
		return nil, errResp
	}
	id, valid := c.p.int64("job_id")
	j := s.jobs[id]
	if !valid || j == nil || j.run.repo != r {
		return nil, notFound()
	}
	return j, nil
}

func (s *Sim) getJob(c *call) *response {
	j, errResp := s.jobOf(c)
	if errResp != nil {
		return errResp
	}
	return ok(s.jobJSON(j))
}

// jobLogs answers 404 until the job has completed and Timing.LogDelay has
// passed, then 302 to a signed URL valid for 60 s. A job that never got a
// runner (cancelled or skipped while queued) has no log: 404 forever.
// Faults.LogStatus replaces the redirect with that status.
func (s *Sim) jobLogs(c *call) *response {
	j, errResp := s.jobOf(c)
	if errResp != nil {
		return errResp
	}
	if j.status != statusCompleted || j.runnerName == "" || c.now.Before(j.completedAt.Add(s.timing.LogDelay)) {
		return notFound()
	}
	if f := s.opts.Faults; f.LogStatus != 0 && f.hit("logstatus", uint64(j.id), f.LogShare) {
		msg := http.StatusText(f.LogStatus)
		if f.LogStatus == http.StatusGone {
			msg = "The logs for this job have expired"
		}
		return fail(f.LogStatus, msg)
	}
	loc := s.signedURL(signedLogsPath, j.id, c.now.Add(time.Minute))
	return &response{status: http.StatusFound, header: http.Header{"Location": []string{loc}}}
}
