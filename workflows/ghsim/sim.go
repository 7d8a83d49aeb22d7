package ghsim

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/deskforge/deskforge/templates"
)

// Options configure a Sim. The zero value is usable: real clock, GitHub's
// default limits, the default scenario and no faults.
type Options struct {
	// PublicURL is the simulator's base URL as clients reach it (e.g. the
	// httptest server's URL); absolute URLs in answers and webhooks start
	// with it. SetBaseURL changes it later. Default "http://localhost".
	PublicURL string
	// Clock tells the simulated time; default RealClock.
	Clock Clock
	// Timing sets how fast runs advance; zero fields take DemoTiming's.
	Timing Timing
	// Scenario decides each run's outcome; nil means DefaultRules().
	Scenario []Rule
	// Faults are injected misbehaviours (see ParseFaults).
	Faults Faults
	// Tokens lists the accepted tokens; empty accepts any non-empty token.
	// Rate limits are counted per token.
	Tokens []string
	// PrimaryLimit is the requests per hour per token (default 5000).
	PrimaryLimit int
	// SecondaryLimit is the write requests (POST, PUT, PATCH, DELETE) per
	// minute per token (default 80).
	SecondaryLimit int
	// RateLimit429 answers rate-limited calls 429 instead of 403.
	RateLimit429 bool
	// GHES makes dispatch reject return_run_details, like GHES 3.19.
	GHES bool
	// PublishReleases creates the releases runs upload to as published
	// instead of drafts.
	PublishReleases bool
	// RunnerLabels are the runner labels a job can run on; a job whose label
	// is not among them stays queued forever, as on GitHub. Nil means the
	// GitHub-hosted labels (HostedRunnerLabels).
	RunnerLabels []string
	// IDsFromClock numbers runs, jobs, check suites, releases, assets and
	// runners from a base taken from the clock at New (1000 ids per
	// millisecond since 2026-01-01) instead of fixed starts, so that a
	// simulator restarted on the same database (serve --demo), or a second
	// one beside it, never hands out an id an earlier instance handed out
	// (unless that one handed out more than 1000 ids per millisecond it
	// ran). Ids stay below 2^53 for centuries.
	IDsFromClock bool
	// Actor is the login of the user who dispatches runs (the token's
	// owner); default "deskforge-bot".
	Actor string
	// HTTPClient sends webhook deliveries; default a client with a 10 s
	// timeout, as GitHub waits 10 s for an answer.
	HTTPClient *http.Client
	// Logger receives the simulator's own log lines; default discards.
	Logger *slog.Logger
}

// Timing sets the pace of simulated runs, measured on the Sim's clock.
type Timing struct {
	// Queued is the time from dispatch until a runner picks the job up.
	Queued time.Duration
	// PerStep is the duration of each of the job's six steps.
	PerStep time.Duration
	// LogDelay is how long after the job completes its log becomes
	// available (GitHub: 1-2 s).
	LogDelay time.Duration
	// TickInterval is how often Run advances runs and sends webhooks, in
	// real time.
	TickInterval time.Duration
}

// DemoTiming is the default pace: a build takes about 20 s
// (2 s queued + 6 steps of 3 s).
func DemoTiming() Timing {
	return Timing{Queued: 2 * time.Second, PerStep: 3 * time.Second, LogDelay: time.Second, TickInterval: 100 * time.Millisecond}
}

// FastTiming is a pace for tests: a run completes 70 ms of clock after its
// dispatch and its log is available 10 ms later.
func FastTiming() Timing {
	return Timing{Queued: 10 * time.Millisecond, PerStep: 10 * time.Millisecond, LogDelay: 10 * time.Millisecond, TickInterval: 5 * time.Millisecond}
}

// RunDuration is the clock time from dispatch to completion of a run that
// succeeds with this timing.
func (t Timing) RunDuration() time.Duration {
	return t.Queued + time.Duration(len(stepNames))*t.PerStep
}

// HostedRunnerLabels are the GitHub-hosted runner labels the simulator knows
// (late 2026), the default of Options.RunnerLabels.
var HostedRunnerLabels = []string{
	"ubuntu-latest", "ubuntu-24.04", "ubuntu-22.04", "ubuntu-24.04-arm", "ubuntu-22.04-arm",
	"macos-latest", "macos-26", "macos-15", "macos-14", "macos-26-intel", "macos-15-intel",
	"windows-latest", "windows-2025", "windows-2022", "windows-11-arm",
}

// RepoOptions describe a repository added with AddRepo.
type RepoOptions struct {
	// Private repositories serve browser_download_url only with a token.
	Private bool
	// DefaultBranch defaults to "main".
	DefaultBranch string
	// Branches are created beside the default branch with the same files.
	Branches []string
	// Workflows maps a file name ("deskforge.yml") to its YAML, committed
	// under .github/workflows/ on every branch. Nil means DefaultWorkflows().
	Workflows map[string][]byte
	// Files are further files (path -> content) committed on every branch.
	Files map[string][]byte
}

// DefaultWorkflows returns the embedded templates (templates.FS()) under
// their own file names, plus the web-app template as "deskforge.yml", the
// file the engine dispatches in the builder repository by default.
func DefaultWorkflows() map[string][]byte {
	out := map[string][]byte{}
	_ = fs.WalkDir(templates.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yml") {
			return err
		}
		b, err := fs.ReadFile(templates.FS(), p)
		if err != nil {
			return err
		}
		out[path.Base(p)] = b
		return nil
	})
	if b, ok := out["webapp.yml"]; ok {
		out[path.Base(templates.InstallPath)] = b
	}
	return out
}

// Sim is the GitHub simulator. Create it with New, serve Handler, add
// repositories with AddRepo and drive time with Tick or Run. All methods are
// safe for concurrent use.
type Sim struct {
	mu       sync.Mutex
	opts     Options
	timing   Timing
	clock    Clock
	log      *slog.Logger
	base     string
	scenario []Rule
	labels   map[string]bool
	signKey  []byte
	tokens   map[string]bool

	repos map[string]*repo // by lower-case full name
	runs  map[int64]*run
	jobs  map[int64]*job
	rels  map[int64]*release
	asts  map[int64]*asset

	nextRepoID, nextWorkflowID, nextRunID, nextJobID, nextCheckSuiteID int64
	nextReleaseID, nextAssetID, nextPullID, nextRunnerID               int64
	runSeq, reqSeq                                                     uint64

	limits   map[string]*tokenLimits
	counters map[string]*EndpointCounter

	hook       *hook
	outbox     []*outgoing
	deliveries []Delivery
	deliverSeq uint64
	// guidSalt makes this simulator's delivery GUIDs its own: GitHub's are
	// unique, and two simulators with one seed (two demos on one database)
	// must not send the same X-GitHub-Delivery for different events.
	guidSalt uint64
	sendMu   sync.Mutex
	wake     chan struct{}
}

// idEpoch is where Options.IDsFromClock counts from.
var idEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// New returns a simulator configured by opts.
func New(opts Options) *Sim {
	if opts.Clock == nil {
		opts.Clock = RealClock{}
	}
	def := DemoTiming()
	t := opts.Timing
	if t.Queued == 0 {
		t.Queued = def.Queued
	}
	if t.PerStep == 0 {
		t.PerStep = def.PerStep
	}
	if t.LogDelay == 0 {
		t.LogDelay = def.LogDelay
	}
	if t.TickInterval == 0 {
		t.TickInterval = def.TickInterval
	}
	if opts.PrimaryLimit == 0 {
		opts.PrimaryLimit = 5000
	}
	if opts.SecondaryLimit == 0 {
		opts.SecondaryLimit = 80
	}
	opts.Faults = opts.Faults.withDefaults()
	if opts.Actor == "" {
		opts.Actor = "deskforge-bot"
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PublicURL == "" {
		opts.PublicURL = "http://localhost"
	}
	scenario := opts.Scenario
	if scenario == nil {
		scenario = DefaultRules()
	}
	labels := map[string]bool{}
	list := opts.RunnerLabels
	if list == nil {
		list = HostedRunnerLabels
	}
	for _, l := range list {
		labels[strings.ToLower(l)] = true
	}
	tokens := map[string]bool{}
	for _, tok := range opts.Tokens {
		tokens[tok] = true
	}
	key := sha1.Sum([]byte(fmt.Sprintf("ghsim-signing-key-%d", opts.Faults.Seed)))
	var base int64
	if opts.IDsFromClock {
		base = max(0, opts.Clock.Now().Sub(idEpoch).Milliseconds()) * 1000
	}
	return &Sim{
		guidSalt:         rand.Uint64(), //nolint:gosec // G404: makes delivery ids unique, not secret
		opts:             opts,
		timing:           t,
		clock:            opts.Clock,
		log:              opts.Logger,
		base:             strings.TrimSuffix(opts.PublicURL, "/"),
		scenario:         scenario,
		labels:           labels,
		signKey:          key[:],
		tokens:           tokens,
		repos:            map[string]*repo{},
		runs:             map[int64]*run{},
		jobs:             map[int64]*job{},
		rels:             map[int64]*release{},
		asts:             map[int64]*asset{},
		nextRepoID:       510000000,
		nextWorkflowID:   81000000,
		nextRunID:        9100000000 + base,
		nextJobID:        25100000000 + base,
		nextCheckSuiteID: 19200000000 + base,
		nextReleaseID:    150000000 + base,
		nextAssetID:      210000000 + base,
		nextRunnerID:     base,
		nextPullID:       1900000000,
		limits:           map[string]*tokenLimits{},
		counters:         map[string]*EndpointCounter{},
		wake:             make(chan struct{}, 1),
	}
}

// NewServer starts a simulator on an httptest server (a loopback port) and
// points its base URL there. The caller closes the server.
func NewServer(opts Options) (*Sim, *httptest.Server) {
	s := New(opts)
	srv := httptest.NewServer(s.Handler())
	s.SetBaseURL(srv.URL)
	return s, srv
}

// SetBaseURL sets the URL clients reach the simulator at (no trailing
// slash needed); absolute URLs in answers and webhooks are built from it.
func (s *Sim) SetBaseURL(u string) {
	s.mu.Lock()
	s.base = strings.TrimSuffix(u, "/")
	s.mu.Unlock()
}

// BaseURL returns the URL absolute URLs are built from; point a go-github
// client's BaseURL at BaseURL()+"/".
func (s *Sim) BaseURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.base
}

// Timing returns the effective timing.
func (s *Sim) Timing() Timing { return s.timing }

// SetFaults replaces the injected faults (the seed restarts no sequence).
func (s *Sim) SetFaults(f Faults) {
	f = f.withDefaults()
	s.mu.Lock()
	s.opts.Faults = f
	s.mu.Unlock()
}

// repo is a simulated repository: branches pointing at commits that hold
// whole file trees (copy on write), releases and pull requests.
type repo struct {
	id            int64
	owner, name   string
	private       bool
	defaultBranch string
	createdAt     time.Time
	branches      map[string]string // branch -> commit sha
	commits       map[string]*commit
	workflowIDs   map[string]int64 // workflow path -> id
	workflowAt    map[string]time.Time
	runNumbers    map[string]int // workflow path -> last run number
	releases      []*release
	pulls         []*pull
}

func (r *repo) fullName() string { return r.owner + "/" + r.name }

type commit struct {
	sha, parent, message string
	files                map[string][]byte
	at                   time.Time
}

// AddRepo creates the repository fullName ("owner/name") with its default
// branch and opts.Branches, each holding opts.Workflows under
// .github/workflows/ and opts.Files.
func (s *Sim) AddRepo(fullName string, opts RepoOptions) error {
	owner, name, ok := strings.Cut(fullName, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("add repo %q: want owner/name", fullName)
	}
	if opts.DefaultBranch == "" {
		opts.DefaultBranch = "main"
	}
	if opts.Workflows == nil {
		opts.Workflows = DefaultWorkflows()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(fullName)
	if _, dup := s.repos[key]; dup {
		return fmt.Errorf("add repo %q: already exists", fullName)
	}
	now := s.clock.Now()
	r := &repo{
		id: s.nextRepoID, owner: owner, name: name, private: opts.Private,
		defaultBranch: opts.DefaultBranch, createdAt: now,
		branches: map[string]string{}, commits: map[string]*commit{},
		workflowIDs: map[string]int64{}, workflowAt: map[string]time.Time{}, runNumbers: map[string]int{},
	}
	s.nextRepoID++
	files := map[string][]byte{}
	for p, b := range opts.Files {
		files[strings.TrimPrefix(p, "/")] = b
	}
	for f, b := range opts.Workflows {
		files[".github/workflows/"+path.Base(f)] = b
	}
	c := r.addCommit("", "Initial commit", files, now)
	for _, b := range append([]string{opts.DefaultBranch}, opts.Branches...) {
		r.branches[b] = c.sha
	}
	s.registerWorkflows(r, c)
	s.repos[key] = r
	return nil
}

// addCommit records a commit with the given full file tree.
func (r *repo) addCommit(parent, message string, files map[string][]byte, at time.Time) *commit {
	h := sha1.New()
	fmt.Fprintf(h, "commit %s/%s parent %s %s %d\n", r.owner, r.name, parent, message, at.UnixNano())
	names := make([]string, 0, len(files))
	for p := range files {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		fmt.Fprintf(h, "%s %s\n", p, blobSHA(files[p]))
	}
	c := &commit{sha: hex.EncodeToString(h.Sum(nil)), parent: parent, message: message, files: files, at: at}
	r.commits[c.sha] = c
	return c
}

// registerWorkflows gives an id to every workflow file of c not seen before.
func (s *Sim) registerWorkflows(r *repo, c *commit) {
	for p := range c.files {
		if isWorkflowPath(p) {
			if _, ok := r.workflowIDs[p]; !ok {
				r.workflowIDs[p] = s.nextWorkflowID
				r.workflowAt[p] = c.at
				s.nextWorkflowID++
			}
		}
	}
}

func isWorkflowPath(p string) bool {
	return strings.HasPrefix(p, ".github/workflows/") && !strings.Contains(strings.TrimPrefix(p, ".github/workflows/"), "/") &&
		(strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml"))
}

// blobSHA is git's object id of a blob with this content.
func blobSHA(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func (s *Sim) repo(owner, name string) *repo {
	return s.repos[strings.ToLower(owner+"/"+name)]
}

// resolveRef returns the commit a branch name, "refs/heads/<branch>" or
// commit sha points at.
func (r *repo) resolveRef(ref string) (*commit, string, bool) {
	ref = strings.TrimPrefix(ref, "refs/heads/")
	if sha, ok := r.branches[ref]; ok {
		return r.commits[sha], ref, true
	}
	if c, ok := r.commits[ref]; ok {
		return c, ref, true
	}
	return nil, "", false
}

// SetWebhook points the simulator's webhook at url, signing deliveries with
// secret, and sends a ping as GitHub does when a hook is created. An empty
// url removes the hook.
func (s *Sim) SetWebhook(url, secret string) {
	s.mu.Lock()
	if url == "" {
		s.hook = nil
		s.mu.Unlock()
		return
	}
	s.hook = &hook{id: 488000001, url: url, secret: []byte(secret), createdAt: s.clock.Now()}
	s.enqueuePing()
	s.mu.Unlock()
	s.kick()
}

// File returns the content of path at ref (branch or commit sha) in repo, for
// tests checking what was committed.
func (s *Sim) File(fullName, ref, filePath string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(fullName)]
	if r == nil {
		return nil, false
	}
	c, _, ok := r.resolveRef(ref)
	if !ok {
		return nil, false
	}
	b, ok := c.files[filePath]
	return append([]byte(nil), b...), ok
}

// SetFile commits content at path on branch, as a push would. Committing a
// workflow file makes it dispatchable on that branch.
func (s *Sim) SetFile(fullName, branch, filePath string, content []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(fullName)]
	if r == nil {
		return fmt.Errorf("set file: repository %s not found", fullName)
	}
	sha, ok := r.branches[branch]
	if !ok {
		return fmt.Errorf("set file: branch %s not found in %s", branch, fullName)
	}
	s.commitFile(r, branch, r.commits[sha], filePath, content, "Update "+filePath)
	return nil
}

func (s *Sim) commitFile(r *repo, branch string, parent *commit, filePath string, content []byte, message string) *commit {
	files := make(map[string][]byte, len(parent.files)+1)
	for p, b := range parent.files {
		files[p] = b
	}
	files[filePath] = append([]byte(nil), content...)
	c := r.addCommit(parent.sha, message, files, s.clock.Now())
	r.branches[branch] = c.sha
	s.registerWorkflows(r, c)
	return c
}

// Branches returns the branches of a repository and the commit each points
// at.
func (s *Sim) Branches(fullName string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(fullName)]
	if r == nil {
		return nil
	}
	out := make(map[string]string, len(r.branches))
	for b, sha := range r.branches {
		out[b] = sha
	}
	return out
}

// Run advances runs and sends due webhooks every Timing.TickInterval of real
// time until ctx is done; it returns ctx.Err(). Use it with a real clock
// (serve --demo) or a fake clock that something else advances. As on
// GitHub, runs advance independently of webhook deliveries: a slow receiver
// delays deliveries (sent in order by one goroutine), never the runs.
func (s *Sim) Run(ctx context.Context) error {
	go func() {
		t := time.NewTicker(s.timing.TickInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-s.wake:
			}
			s.flushDeliveries()
		}
	}()
	t := time.NewTicker(s.timing.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		s.mu.Lock()
		s.advanceRuns(s.clock.Now())
		s.mu.Unlock()
	}
}

// Tick advances every run to the clock's current time (emitting the
// webhooks of each transition, in order) and then sends, synchronously and in
// order, every webhook delivery that is due. Tests with a FakeClock call it
// after Advance.
func (s *Sim) Tick() {
	s.mu.Lock()
	s.advanceRuns(s.clock.Now())
	s.mu.Unlock()
	s.flushDeliveries()
}

// kick wakes Run so that new webhook deliveries go out without waiting for
// the next tick.
func (s *Sim) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
