package workflows

import (
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// The engine's River jobs. Each is inserted in the same transaction as the
// row change that calls for it.

// River settings the engine's jobs need; the River client is configured
// with them (cmd/deskforge serve).
const (
	// JobTimeout bounds one attempt of an engine job: a few GitHub calls
	// and a transaction. The finalize job, which may download and store a
	// large log, allows FinalizeTimeout.
	JobTimeout = 2 * time.Minute
	// FinalizeTimeout bounds one attempt of the finalize job. It must not
	// exceed RescueStuckJobsAfter: River's rescuer leaves a job alone until
	// its own timeout has passed too, so a finalize job left running by a
	// dead process (kill -9) is run again only after
	// max(RescueStuckJobsAfter, FinalizeTimeout), and its build stays
	// building until then (a 15-minute timeout kept builds building for 15
	// minutes after a replica was killed). Five minutes still leaves room
	// for a log of hundreds of megabytes (parsed at several hundred MB/s,
	// stored in batches of logBatchSize).
	FinalizeTimeout = RescueStuckJobsAfter
	// RescueStuckJobsAfter is how long a job may stay marked running before
	// River runs it again, as when the process running it died (kill -9, a
	// lost machine): minutes, not River's default hour, during which the
	// build would sit silently. River rescues a job only when both this and
	// the job's own timeout (JobTimeout, or its worker's Timeout) have
	// passed since its attempt began, so a slow live job is never run
	// twice; that is also why every job a build waits on has a timeout of
	// at most RescueStuckJobsAfter (TestBuildJobsAreRescuedInTime): then
	// every build ends within RescueStuckJobsAfter (plus River's 30-second
	// rescue interval and a retry delay) of the death of the process that
	// was moving it. Jobs no build waits on may take longer
	// (PublishJobTimeout: a publication killed mid-way is run again after
	// 30 minutes); River's setting is global, and lowering it would not
	// rescue them sooner.
	RescueStuckJobsAfter = 5 * time.Minute
)

// DispatchBuildArgs is the River job that dispatches a queued build to GitHub
// Actions. It is inserted in the same transaction as the build row.
type DispatchBuildArgs struct {
	BuildID string `json:"build_id" river:"unique"`
}

// Kind implements river.JobArgs.
func (DispatchBuildArgs) Kind() string { return "dispatch_build" }

// buildJob is a job about one build that only a process reaching the
// build's GitHub server can do (Options.HostQueues).
type buildJob interface{ jobBuildID() string }

func (a DispatchBuildArgs) jobBuildID() string { return a.BuildID }
func (a PollBuildArgs) jobBuildID() string     { return a.BuildID }
func (a FinalizeBuildArgs) jobBuildID() string { return a.BuildID }
func (a CancelRunArgs) jobBuildID() string     { return a.BuildID }
func (a FollowStepsArgs) jobBuildID() string   { return a.BuildID }

// InsertOpts implements river.JobArgsWithInsertOpts: one pending dispatch
// per build.
func (DispatchBuildArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 12, UniqueOpts: uniqueWhileActive()}
}

// ApplyEventArgs applies one GitHub webhook event (already verified, parsed
// and recorded by its delivery id) to the build it concerns.
type ApplyEventArgs struct {
	DeliveryID string       `json:"delivery_id"`
	Event      WebhookEvent `json:"event"`
	// ForgeHost is the GitHub server whose webhook this is (the receiving
	// engine's Options.ForgeHost); "" in jobs queued before it existed.
	ForgeHost string `json:"forge_host,omitempty"`
}

// Kind implements river.JobArgs.
func (ApplyEventArgs) Kind() string { return "apply_github_event" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (ApplyEventArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 8} }

// ReconcileArgs is the periodic job that looks for stale builds and polls
// each on GitHub (PollBuildArgs).
type ReconcileArgs struct{}

// Kind implements river.JobArgs.
func (ReconcileArgs) Kind() string { return "reconcile_builds" }

// InsertOpts implements river.JobArgsWithInsertOpts: at most one pending
// reconcile pass.
func (ReconcileArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 1, Priority: 2, UniqueOpts: uniqueWhileActive()}
}

// PollBuildArgs reads one build's run and job on GitHub and applies what
// changed, and enforces the engine's timeouts. Polls yield to the jobs that
// move builds (priority 3; dispatch, events, finalize and cancel have 1).
type PollBuildArgs struct {
	BuildID string `json:"build_id" river:"unique"`
}

// Kind implements river.JobArgs.
func (PollBuildArgs) Kind() string { return "poll_build" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (PollBuildArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 3, Priority: 3, UniqueOpts: uniqueWhileActive()}
}

// FinalizeBuildArgs completes a build whose job finished on GitHub: fetch
// and store its log, resolve its artifact, then set its final status.
type FinalizeBuildArgs struct {
	BuildID string `json:"build_id" river:"unique"`
	// CompletedAt is when GitHub says the job (or run) completed.
	CompletedAt time.Time `json:"completed_at"`
}

// Kind implements river.JobArgs.
func (FinalizeBuildArgs) Kind() string { return "finalize_build" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (FinalizeBuildArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 12, UniqueOpts: uniqueWhileActive()}
}

// CancelRunArgs asks GitHub to cancel a workflow run: a build's run when the
// user cancels it or it timed out, or a stray second run of a build.
type CancelRunArgs struct {
	BuildID string `json:"build_id" river:"unique"`
	Repo    string `json:"repo" river:"unique"`
	RunID   int64  `json:"run_id" river:"unique"`
}

// Kind implements river.JobArgs.
func (CancelRunArgs) Kind() string { return "cancel_run" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (CancelRunArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 12, UniqueOpts: uniqueWhileActive()}
}

// uniqueWhileActive makes a job unique by its args among jobs not yet
// finished, so a second request while one is pending or running is dropped,
// and a later one (after it completed) is accepted.
func uniqueWhileActive() river.UniqueOpts {
	return river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable,
		rivertype.JobStatePending,
		rivertype.JobStateRetryable,
		rivertype.JobStateRunning,
		rivertype.JobStateScheduled,
	}}
}
