package workflows

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"gorm.io/gorm"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/templates"
)

// DefaultForgeHost is the forge host of GitHub.com.
const DefaultForgeHost = "api.github.com"

// ForgeHostOf returns the forge host of a GitHub REST API root URL: its
// host[:port] in lower case, DefaultForgeHost for "" (GitHub.com).
func ForgeHostOf(apiURL string) string {
	if apiURL == "" {
		return DefaultForgeHost
	}
	u, err := url.Parse(apiURL)
	if err != nil || u.Host == "" {
		return strings.ToLower(apiURL)
	}
	return strings.ToLower(u.Host)
}

// runRef names a run of repo on this engine's GitHub server.
func (e *Engine) runRef(host, repo string, runID int64) models.RunRef {
	if host == "" {
		host = e.opts.ForgeHost
	}
	return models.RunRef{Host: host, Repo: repo, ID: runID}
}

// ForgeQueue is the River queue of the jobs about builds of the GitHub
// server host (Options.HostQueues): a name River accepts, the same in every
// process.
func ForgeQueue(host string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(host)))
	return "forge_" + hex.EncodeToString(sum[:8])
}

// insertOptsTx returns the options of args' insertion inside tx: with
// Options.HostQueues, a job about a build goes to the queue of the build's
// GitHub server (read in tx, which may have just set it); nil otherwise.
func (e *Engine) insertOptsTx(ctx context.Context, tx *gorm.DB, args river.JobArgs) (*river.InsertOpts, error) {
	job, ok := args.(buildJob)
	if !e.opts.HostQueues || !ok {
		return nil, nil
	}
	host, err := models.BuildForgeHostTx(ctx, tx, job.jobBuildID())
	if err != nil || host == "" {
		return nil, err
	}
	return &river.InsertOpts{Queue: ForgeQueue(host)}, nil
}

// servesBuild reports whether this engine talks to the GitHub server b was
// created for (a build older than the forge_host column has none: any
// engine serves it).
func (e *Engine) servesBuild(b models.Build) bool {
	return b.ForgeHost == "" || strings.EqualFold(b.ForgeHost, e.opts.ForgeHost)
}

// foreignBuild handles a job about a build of a GitHub server this engine
// does not reach (several processes with different GitHub servers share
// the database, e.g. two demos): calling our server about it would answer
// for another run or none. The job waits for a process of that server to
// take it; when none has reported on the build for
// Options.ForeignHostTimeout, the build fails with that reason.
func (e *Engine) foreignBuild(ctx context.Context, b models.Build) error {
	quiet := e.clock.Now().Sub(b.UpdatedAt)
	if quiet < e.opts.ForeignHostTimeout {
		return river.JobSnooze(e.opts.PollDelay)
	}
	if models.IsTerminal(b.Status) {
		return nil
	}
	return e.failBuild(ctx, b.ID, ErrorRunVanished, fmt.Sprintf(
		"no DeskForge process reaching the GitHub server %s, which runs this build, has reported on it for %s: its workflow run can no longer be followed (a restarted `serve --demo` starts a new simulated GitHub)",
		b.ForgeHost, quiet.Round(1e9)), nil)
}

// observationMismatch says why obs cannot be about b's workflow run, or
// returns "": a run in another repository, a run whose display title names
// another build, or a job of another run. Such an observation comes from a
// run id that was reused (a restarted simulator) and must never be applied.
func (e *Engine) observationMismatch(b models.Build, obs observation) string {
	if run := obs.run; run != nil {
		if run.Repo != "" && !strings.EqualFold(run.Repo, e.repoOf(b)) {
			return fmt.Sprintf("workflow run %d is in %s, not in %s", run.ID, run.Repo, e.repoOf(b))
		}
		if id := templates.RunNameBuildID(run.DisplayTitle); id != "" && id != b.ID {
			return fmt.Sprintf("workflow run %d is build %s's (title %q)", run.ID, id, run.DisplayTitle)
		}
	}
	if job := obs.job; job != nil && b.RunID != nil && job.RunID != 0 && job.RunID != *b.RunID {
		return fmt.Sprintf("job %d belongs to workflow run %d, not to run %d", job.ID, job.RunID, *b.RunID)
	}
	return ""
}

// runGoneReason is why a build whose workflow run vanished failed.
func runGoneReason(runID int64) string {
	return fmt.Sprintf("workflow run %d no longer exists on GitHub", runID)
}

// takeRunIDTx makes the run ref free for b. GitHub never hands out a run id
// twice, but a GitHub server that was reset (a restarted simulator) does:
// an older build still holding the id has lost its run, and fails saying
// so instead of receiving b's events.
func (e *Engine) takeRunIDTx(ctx context.Context, tx *gorm.DB, b models.Build, ref models.RunRef, now time.Time) error {
	runID := ref.ID
	holder, err := e.store.LockBuildByRunTx(ctx, tx, ref)
	if errors.Is(err, models.ErrNotFound) || (err == nil && holder.ID == b.ID) {
		return nil
	}
	if err != nil {
		return err
	}
	e.log.Warn("workflow run id handed out again: the older build lost its run", "run_id", runID, "build_id", holder.ID, "new_build_id", b.ID)
	free := map[string]any{"run_id": nil, "job_id": nil}
	if !models.IsTerminal(holder.Status) {
		reason := fmt.Sprintf("%s: the GitHub server handed its id to build %s's run (it was reset, e.g. a restarted simulator)", runGoneReason(runID), b.ID)
		return e.failBuildTx(ctx, tx, &holder, ErrorRunVanished, reason, now, free)
	}
	return models.UpdateBuildTx(ctx, tx, holder.ID, now, free)
}

// foreignAssetReason is why a build whose workflow succeeded fails when the
// asset of its name on the release was not uploaded by it (its label names
// another build, or no build).
func foreignAssetReason(asset Asset, tag string) string {
	if owner := templates.AssetLabelBuildID(asset.Label); owner != "" {
		return fmt.Sprintf("the asset %s on release %s was uploaded by build %s, not by this build (a later build of the same project, version and target replaced it); it was not recorded",
			asset.Name, tag, owner)
	}
	return fmt.Sprintf("the asset %s on release %s does not carry this build's label, so nothing shows this build uploaded it; it was not recorded (if the workflow was installed from an older DeskForge, reinstall it: deskforge template install)",
		asset.Name, tag)
}

// supersedeTx records, as b succeeds, that its asset replaced the one of
// earlier successful builds of the same name (same project, version and
// target) on the same release: their downloads answer 410 naming b. When b
// itself was already replaced (fields["superseded_by"]), its log says so.
func (e *Engine) supersedeTx(ctx context.Context, tx *gorm.DB, b models.Build, fields map[string]any, now time.Time) error {
	if by, ok := fields["superseded_by"].(string); ok {
		return models.AppendLogTx(ctx, tx, b.ID, models.LogLine{Timestamp: now, Level: models.LevelWarning, Message: supersededMessage(by)})
	}
	ids, err := models.SupersedeBuildsTx(ctx, tx, b, now)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := models.AppendLogTx(ctx, tx, id, models.LogLine{Timestamp: now, Level: models.LevelWarning, Message: supersededMessage(b.ID)}); err != nil {
			return err
		}
		e.log.Info("build's installer superseded", "build_id", id, "by", b.ID)
	}
	return nil
}

func supersededMessage(by string) string {
	return fmt.Sprintf("Installer replaced on the release by build %s (a rebuild of the same version and target); download that build instead", by)
}

// replacedBy returns the build whose upload replaced b's asset before b
// finished (a later build of the same project, version and target, named
// by the asset's label), or "" when the asset is not such a build's.
func (e *Engine) replacedBy(ctx context.Context, b models.Build, asset Asset) string {
	owner := templates.AssetLabelBuildID(asset.Label)
	if owner <= b.ID { // build ids sort by creation time
		return ""
	}
	later, err := e.store.LoadBuild(ctx, owner)
	if err != nil || later.AssetName != b.AssetName || !strings.EqualFold(e.repoOf(later), e.repoOf(b)) {
		return ""
	}
	return later.ID
}

// SupersededError is returned for the artifact of a build whose installer
// was replaced on the release by a later build's (the API answers 410
// artifact_superseded).
type SupersededError struct {
	BuildID string // the build asked for
	By      string // the build whose upload replaced its installer
}

func (e *SupersededError) Error() string {
	return fmt.Sprintf("the installer of build %s was replaced on the release by build %s's (a rebuild of the same version and target): download build %s instead",
		e.BuildID, e.By, e.By)
}

// assetGone turns a GitHub 404 for b's asset into a *SupersededError when a
// later build of the same asset name exists (its upload deleted b's asset,
// and it may not have finished yet); else it returns err.
func (e *Engine) assetGone(ctx context.Context, b models.Build, err error) error {
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	if later, lerr := e.store.LaterBuildOfAsset(ctx, b); lerr == nil {
		return &SupersededError{BuildID: b.ID, By: later}
	}
	return err
}
