// Package workflows is DeskForge's build engine: it creates builds, dispatches
// them to GitHub Actions through a Forge, follows them through webhooks and
// polling, fetches and parses their logs, and resolves their artifacts. Every
// side effect runs as a River job inserted in the same transaction as the
// row change that calls for it.
package workflows

import (
	"context"
	"database/sql"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/templates"
)

// JobInserter inserts River jobs inside a caller's transaction;
// *river.Client[*sql.Tx] satisfies it.
type JobInserter interface {
	InsertTx(ctx context.Context, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
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
	// BuilderRepo ("owner/name"), BuilderWorkflow and BuilderRef are used for
	// projects without a repository of their own (web apps).
	BuilderRepo     string
	BuilderWorkflow string
	BuilderRef      string
	// Runners maps platform/arch to a runner label.
	Runners templates.RunnerTable
	// MaxBuildDuration fails a build still building after it (default 6h).
	MaxBuildDuration time.Duration
	// DispatchesPerMinute paces dispatches per token (default 60).
	DispatchesPerMinute int
	// DownloadMode is "redirect" (default) or "proxy".
	DownloadMode string
}

// Engine runs builds. Create it with NewEngine, then give it its River client
// with SetInserter before inserting jobs.
type Engine struct {
	store    *models.Store
	forge    Forge
	inserter JobInserter
	clock    Clock
	log      *slog.Logger
	opts     Options
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
	if opts.BuilderWorkflow == "" {
		opts.BuilderWorkflow = "deskforge.yml"
	}
	if opts.BuilderRef == "" {
		opts.BuilderRef = "main"
	}
	if opts.MaxBuildDuration == 0 {
		opts.MaxBuildDuration = 6 * time.Hour
	}
	if opts.DispatchesPerMinute == 0 {
		opts.DispatchesPerMinute = 60
	}
	if opts.DownloadMode == "" {
		opts.DownloadMode = "redirect"
	}
	return &Engine{store: store, forge: forge, clock: clock, log: log, opts: opts}
}

// SetInserter gives the engine the River client it inserts jobs with.
func (e *Engine) SetInserter(inserter JobInserter) { e.inserter = inserter }

// Options returns the engine's effective options.
func (e *Engine) Options() Options { return e.opts }
