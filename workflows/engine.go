// Package workflows is DeskForge's build engine: it creates builds, dispatches
// them to GitHub Actions through a Forge, follows them through webhooks and
// polling, fetches and parses their logs, and resolves their artifacts. Every
// side effect runs as a River job inserted in the same transaction as the
// row change that calls for it.
package workflows

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"golang.org/x/time/rate"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/templates"
)

// JobInserter inserts River jobs inside a transaction of models.Store.Tx;
// *models.Jobs satisfies it.
type JobInserter interface {
	InsertTx(ctx context.Context, tx *gorm.DB, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// Clock tells the time; tests substitute one they control.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns the current time in UTC.
func (SystemClock) Now() time.Time { return time.Now().UTC() }

// Options configure an Engine.
type Options struct {
	// PublicURL is the server's external base URL, used in artifactUrl and
	// buildLog ("http://localhost:8080").
	PublicURL string
	// ForgeHost names the GitHub server this engine talks to (the host of
	// its API URL; default DefaultForgeHost). Builds record it: a workflow
	// run is identified by (forge host, repository, run id), and a build is
	// followed only by engines talking to its server.
	ForgeHost string
	// ForeignHostTimeout is how long a build of another GitHub server may
	// go without news before an engine that cannot reach that server fails
	// it (default 10m): no process serving that server is left, as after a
	// demo restarted with a new simulator.
	ForeignHostTimeout time.Duration
	// HostQueues routes the jobs about a build (dispatch, poll, finalize,
	// cancel, steps) to the River queue of its GitHub server (ForgeQueue),
	// so that only processes reaching that server take them. The River
	// client must then work ForgeQueue(ForgeHost) besides the default
	// queue (serve does). Without it they go to the default queue, and a
	// process of another server that takes one snoozes it (foreignBuild):
	// with several servers on one database (two demos) River's leader,
	// which makes snoozed jobs available again, kept taking them back, and
	// a build of the other server waited until ForeignHostTimeout.
	HostQueues bool
	// BuilderRepo ("owner/name"), BuilderWorkflow and BuilderRef are used for
	// projects without a repository of their own (web apps).
	BuilderRepo     string
	BuilderWorkflow string
	BuilderRef      string
	// Runners maps platform/arch to a runner label.
	Runners templates.RunnerTable
	// MaxBuildDuration fails a build still building after it (default 6h).
	MaxBuildDuration time.Duration
	// DownloadMode is "redirect" (default) or "proxy".
	DownloadMode string
	// Observer is told of build transitions, runs found and webhook events
	// applied (nil: nobody).
	Observer Observer

	// ReconcileInterval is how often the reconciler (a River periodic job,
	// leader only) looks for stale builds (default 30s).
	ReconcileInterval time.Duration
	// StaleAfter: a build neither terminal nor updated for this long is
	// polled on GitHub (default 60s).
	StaleAfter time.Duration
	// NoRunTimeout fails a build whose dispatch GitHub accepted but whose
	// workflow run never appeared (default 10m).
	NoRunTimeout time.Duration
	// MaxQueueDuration fails a build whose run stays queued this long, no
	// runner having picked it up (default 24h, as GitHub).
	MaxQueueDuration time.Duration
	// LogWaitTimeout is how long after a job completed its log is awaited
	// while GitHub still answers 404 (default 2m).
	LogWaitTimeout time.Duration
	// PollDelay is the first wait when looking again for something GitHub
	// has not made visible yet (a run after a GHES dispatch, a job log, the
	// run of an early webhook); it doubles up to 15×PollDelay (default 2s).
	PollDelay time.Duration
	// DispatchSettle is how long after a dispatch attempt that ended without
	// an answer the engine waits before concluding that no run was created
	// and dispatching again (default 10s).
	DispatchSettle time.Duration
	// RetryDelay is the first retry delay of an engine job that failed with
	// a transient error; it doubles per attempt up to MaxRetryDelay
	// (defaults 1s and 5m).
	RetryDelay    time.Duration
	MaxRetryDelay time.Duration
	// StepPollInterval is how often the steps of a building build's job are
	// read to log them live (default 8s; conditional requests).
	StepPollInterval time.Duration
	// StepPollsPerMinute caps those reads per process (default 300).
	StepPollsPerMinute int
	// HTTPClient fetches artifacts from GitHub's signed URLs in proxy
	// download mode (default: a client without overall timeout).
	HTTPClient *http.Client
}

// Engine runs builds. Create it with NewEngine; it inserts its jobs with its
// store's Jobs unless SetInserter gives it another inserter.
type Engine struct {
	store    *models.Store
	forge    Forge
	inserter JobInserter
	clock    Clock
	log      *slog.Logger
	opts     Options

	// visibility caches RepositoryPrivate answers per repository.
	visibilityMu sync.Mutex
	visibility   map[string]visibilityEntry
	// listings shares run listings between builds looking for their runs.
	listings runListings
	// stepLimiter caps the reads of followSteps (progress.go).
	stepLimiter *rate.Limiter
}

// NewEngine returns an engine on store and forge. forge may be nil for
// commands that only create builds.
func NewEngine(store *models.Store, forge Forge, clock Clock, log *slog.Logger, opts Options) *Engine {
	if clock == nil {
		clock = SystemClock{}
	}
	if opts.Runners == nil {
		opts.Runners = templates.DefaultRunners
	}
	opts.ForgeHost = cmp.Or(opts.ForgeHost, DefaultForgeHost)
	opts.ForeignHostTimeout = cmp.Or(opts.ForeignHostTimeout, 10*time.Minute)
	opts.BuilderWorkflow = cmp.Or(opts.BuilderWorkflow, models.DefaultWorkflow)
	opts.BuilderRef = cmp.Or(opts.BuilderRef, models.DefaultRef)
	opts.MaxBuildDuration = cmp.Or(opts.MaxBuildDuration, 6*time.Hour)
	opts.DownloadMode = cmp.Or(opts.DownloadMode, "redirect")
	opts.ReconcileInterval = cmp.Or(opts.ReconcileInterval, 30*time.Second)
	opts.StaleAfter = cmp.Or(opts.StaleAfter, 60*time.Second)
	opts.NoRunTimeout = cmp.Or(opts.NoRunTimeout, 10*time.Minute)
	opts.MaxQueueDuration = cmp.Or(opts.MaxQueueDuration, 24*time.Hour)
	opts.LogWaitTimeout = cmp.Or(opts.LogWaitTimeout, 2*time.Minute)
	opts.PollDelay = cmp.Or(opts.PollDelay, 2*time.Second)
	opts.DispatchSettle = cmp.Or(opts.DispatchSettle, 10*time.Second)
	opts.RetryDelay = cmp.Or(opts.RetryDelay, time.Second)
	opts.MaxRetryDelay = cmp.Or(opts.MaxRetryDelay, 5*time.Minute)
	opts.StepPollInterval = cmp.Or(opts.StepPollInterval, 8*time.Second)
	opts.StepPollsPerMinute = cmp.Or(opts.StepPollsPerMinute, 300)
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{store: store, forge: forge, clock: clock, log: log, opts: opts, visibility: map[string]visibilityEntry{},
		stepLimiter: newStepLimiter(opts.StepPollsPerMinute)}
	if store != nil {
		e.inserter = store.Jobs()
	}
	return e
}

// SetInserter replaces the inserter of the engine's jobs (tests record or
// fail inserts with it).
func (e *Engine) SetInserter(inserter JobInserter) { e.inserter = inserter }

// Options returns the engine's effective options.
func (e *Engine) Options() Options { return e.opts }
