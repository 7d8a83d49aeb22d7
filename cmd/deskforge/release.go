package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/deskforge/deskforge/client"
)

const releaseUsage = `Usage: deskforge release <command> [flags]

Releases one version of a project to every target: one build per target, and one GitHub
release published (with SHA256SUMS and the update manifests) once every target succeeded.
The server is DESKFORGE_URL (or --url, default http://localhost:8080) and the API key
DESKFORGE_API_KEY (or --api-key).

  create       start a release (--wait follows it until it is published or fails)
  list         list a project's releases, newest first
  get ID       show a release, its builds and its files
  cancel ID    cancel the builds of a release that still run
  retry ID     rebuild the failed and cancelled targets of a release (--wait follows it)

Every command takes --json (output for scripts). Exit status: 0 success, 1 the release
failed or was cancelled, 2 usage error, 3 the server refused or could not be reached,
130 Ctrl-C while following (the release goes on on the server).

Run 'deskforge release <command> --help' for its flags.
`

func runRelease(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "release", args, stdout, stderr, releaseUsage, map[string]subcommandFunc{
		"create": runReleaseCreate,
		"list":   runReleaseList,
		"get":    runReleaseGet,
		"cancel": runReleaseCancel,
		"retry":  runReleaseRetry,
	})
}

// targetList is a repeatable --target flag; each value may also list
// several targets separated by commas.
type targetList []string

func (t *targetList) String() string { return strings.Join(*t, ",") }

func (t *targetList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*t = append(*t, s)
		}
	}
	return nil
}

var targetFieldRe = regexp.MustCompile(`^targets\[(\d+)\]$`)

// releaseRequestError is requestError with the release fields named by
// their flags (targets[i] is the i-th --target).
func releaseRequestError(err error) error {
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Code == "invalid_request" {
		switch {
		case targetFieldRe.MatchString(ae.Field):
			return &exitError{exitUsage, fmt.Errorf("--target: %s", ae.Message)}
		case ae.Field == "notes":
			return &exitError{exitUsage, fmt.Errorf("--notes: %s", ae.Message)}
		}
	}
	return requestError(err)
}

// parseReleaseID parses the flags and the one release id of a release
// command, then connects (see parseBuildID).
func (cc *clientCommand) parseReleaseID(args []string) (c *client.Client, done bool, err error) {
	if done, err := cc.parse(args, 1, "release id (rel_…)"); done {
		return nil, true, err
	}
	c, err = cc.connect()
	return c, err != nil, err
}

func runReleaseCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCommand("release create", stdout, stderr)
	project := cc.fs.String("project", "", "project id (proj_…); default: the only project the API key sees")
	version := cc.fs.String("version", "", "semantic version to release, e.g. 1.4.0 (default: the project's)")
	var targets targetList
	cc.fs.Var(&targets, "target", "a target platform/arch such as mac/arm64; repeat it (or separate with commas) for several (default: every platform of the project on x64 and arm64)")
	notes := cc.fs.String("notes", "", "release notes (the GitHub release's text and the update manifests' notes)")
	notesFile := cc.fs.String("notes-file", "", "read the release notes from this file (- for stdin)")
	idemKey := cc.fs.String("idempotency-key", "", "send this Idempotency-Key: repeating the command answers the same release instead of a new one")
	wait := cc.fs.Bool("wait", false, "follow the release until it is published or fails; exit 0 when published, 1 otherwise")
	cc.followFlags()
	publishWait := cc.fs.Duration("publish-wait", defaultPublishWait, "with --wait: how long a release whose builds all succeeded may take to be published before giving up")
	cc.fs.Usage = usageFunc(cc.fs, "deskforge release create [--project ID] [--version V] [--target P/A]… [--notes TEXT] [--wait] [flags]",
		"Starts a release (one build per target) and prints its id. With --wait, prints each change of its\n"+
			"builds until the release is published (exit 0) or failed or cancelled (exit 1).")
	if done, err := cc.parse(args, 0, ""); done {
		return err
	}
	if *notes != "" && *notesFile != "" {
		fmt.Fprint(stderr, "give the notes with --notes or --notes-file, not both\n")
		return errUsage
	}
	if *notesFile != "" {
		var (
			data []byte
			err  error
		)
		if *notesFile == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(*notesFile)
		}
		if err != nil {
			fmt.Fprintf(stderr, "--notes-file: %v\n", err)
			return errUsage
		}
		*notes = string(data)
	}
	c, err := cc.connect()
	if err != nil {
		return err
	}
	projectID, err := resolveProject(ctx, c, *project)
	if err != nil {
		return err
	}
	rel, err := c.CreateRelease(ctx, projectID, client.ReleaseRequest{Version: *version, Targets: targets, Notes: *notes, IdempotencyKey: *idemKey})
	if err != nil {
		return releaseRequestError(err)
	}
	if *wait {
		return cc.followRelease(ctx, c, rel.ID, *publishWait)
	}
	if *cc.asJSON {
		return printJSON(stdout, rel)
	}
	fmt.Fprintln(stdout, rel.ID)
	fmt.Fprintf(stderr, "Release %s queued: v%s for %s. Follow it with: deskforge release get %s\n",
		rel.ID, rel.Version, strings.Join(rel.Targets, ", "), rel.ID)
	return nil
}

// defaultPublishWait is how long --wait waits for the publication of a
// release whose builds all succeeded: the publication job runs within
// seconds, unless it was refused (a target uploaded no updater artifact),
// which only the server's log says.
const defaultPublishWait = 10 * time.Minute

// errNotPublished stops following a successful release that stays
// unpublished.
var errNotPublished = errors.New("not published")

// followRelease watches a release until it is published or ends without
// (one line per change; the final release as JSON with --json) and
// returns the exit for its outcome. A release whose builds all succeeded
// but that is still unpublished after publishWait exits 1.
func (cc *clientCommand) followRelease(ctx context.Context, c *client.Client, id string, publishWait time.Duration) error {
	watchCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	final, err := c.WatchRelease(watchCtx, id, client.WatchOptions{Interval: *cc.interval}, func(r *client.Release) error {
		if !*cc.asJSON {
			fmt.Fprintln(cc.stdout, releaseLine(r, time.Now()))
		}
		if r.Status == client.StatusSuccess && r.PublishedAt == nil && timer == nil {
			timer = time.AfterFunc(publishWait, func() { stop(errNotPublished) })
		}
		return nil
	})
	switch {
	case err != nil && errors.Is(context.Cause(watchCtx), errNotPublished) && ctx.Err() == nil:
		if *cc.asJSON && final != nil {
			if err := printJSON(cc.stdout, final); err != nil {
				return err
			}
		}
		return &exitError{exitFailed, fmt.Errorf("release %s: every build succeeded but it is still not published after %s; "+
			"the publication may have been refused (a target without its updater artifact): see the server's log and 'deskforge release get %s'", id, publishWait, id)}
	case err != nil && ctx.Err() != nil:
		return &exitError{exitInterrupted, fmt.Errorf("stopped following %s; it goes on on the server (cancel it with 'deskforge release cancel %s')", id, id)}
	case err != nil:
		return requestError(err)
	}
	if *cc.asJSON {
		if err := printJSON(cc.stdout, final); err != nil {
			return err
		}
	}
	if final.Status != client.StatusSuccess {
		if !*cc.asJSON {
			fmt.Fprintf(cc.stderr, "Release %s %s: nothing was published. Rebuild its failed targets with: deskforge release retry --wait %s\n", id, final.Status, id)
		}
		return &exitError{exitFailed, nil}
	}
	if !*cc.asJSON {
		where := ""
		if final.ReleaseURL != nil {
			where = ": " + *final.ReleaseURL
		}
		fmt.Fprintf(cc.stdout, "Release %s v%s published%s\n", final.ID, final.Version, where)
	}
	return nil
}

// releaseLine is one progress line of a followed release:
// "10:01:02 rel_… building  2/6 done  mac/arm64 success, mac/x64 building, …".
func releaseLine(r *client.Release, now time.Time) string {
	done := 0
	parts := make([]string, len(r.Builds))
	for i, b := range r.Builds {
		if b.Status == client.StatusSuccess {
			done++
		}
		parts[i] = b.Platform + "/" + b.Arch + " " + b.Status
	}
	status := r.Status
	if r.Status == client.StatusSuccess && r.PublishedAt == nil {
		status = "success (publishing)"
	}
	return fmt.Sprintf("%s %s %s  %d/%d succeeded  %s", now.Format("15:04:05"), r.ID, status, done, len(r.Builds), strings.Join(parts, ", "))
}

func runReleaseList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCommand("release list", stdout, stderr)
	project := cc.fs.String("project", "", "project id (proj_…); default: the only project the API key sees")
	limit := cc.fs.Int("limit", 20, "show at most this many releases (newest first)")
	cc.fs.Usage = usageFunc(cc.fs, "deskforge release list [--project ID] [--limit N] [flags]",
		"Lists a project's releases, newest first. --json prints one release per line.")
	if done, err := cc.parse(args, 0, ""); done {
		return err
	}
	if *limit < 1 {
		fmt.Fprint(stderr, "--limit must be at least 1\n")
		return errUsage
	}
	c, err := cc.connect()
	if err != nil {
		return err
	}
	projectID, err := resolveProject(ctx, c, *project)
	if err != nil {
		return err
	}
	var (
		rels  []client.Release
		total int64
		opts  client.ListOptions
	)
	for len(rels) < *limit {
		opts.Limit = min(*limit-len(rels), 200)
		page, err := c.ListReleases(ctx, projectID, opts)
		if err != nil {
			return requestError(err)
		}
		rels, total = append(rels, page.Releases...), page.Total
		if page.NextCursor == nil {
			break
		}
		opts.Cursor = *page.NextCursor
	}
	if *cc.asJSON {
		enc := json.NewEncoder(stdout)
		for _, r := range rels {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tVERSION\tSTATUS\tTARGETS\tCREATED\tPUBLISHED")
	for _, r := range rels {
		fmt.Fprintf(tw, "%s\tv%s\t%s\t%d\t%s\t%s\n", r.ID, r.Version, r.Status, len(r.Targets),
			r.CreatedAt.UTC().Format(time.RFC3339), timeOrDash(r.PublishedAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if int64(len(rels)) < total {
		fmt.Fprintf(stderr, "%d of %d releases shown; --limit shows more.\n", len(rels), total)
	}
	return nil
}

func runReleaseGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCommand("release get", stdout, stderr)
	cc.fs.Usage = usageFunc(cc.fs, "deskforge release get [flags] RELEASE_ID",
		"Shows a release, the current build of each of its targets and its files; --json prints the API's JSON.")
	c, done, err := cc.parseReleaseID(args)
	if done {
		return err
	}
	r, err := c.GetRelease(ctx, cc.fs.Arg(0))
	if err != nil {
		return requestError(err)
	}
	if *cc.asJSON {
		return printJSON(stdout, r)
	}
	return printRelease(stdout, r)
}

// printRelease shows a release as aligned "field value" lines, then its
// builds and its files.
func printRelease(w io.Writer, r *client.Release) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("id", r.ID)
	row("project", r.ProjectID)
	row("version", r.Version)
	row("status", r.Status)
	row("created", r.CreatedAt.UTC().Format(time.RFC3339))
	row("completed", timeOrDash(r.CompletedAt))
	row("published", timeOrDash(r.PublishedAt))
	if r.ReleaseURL != nil {
		row("url", *r.ReleaseURL)
	}
	if r.Notes != "" {
		row("notes", strings.ReplaceAll(r.Notes, "\n", " "))
	}
	for _, b := range r.Builds {
		row("build", fmt.Sprintf("%s/%s  %s  %s", b.Platform, b.Arch, b.Status, b.ID))
	}
	for _, a := range r.Assets {
		size := "-"
		if a.Size != nil {
			size = formatBytes(*a.Size)
		}
		row(a.Kind, fmt.Sprintf("%s  %s  %s", a.Name, size, a.URL))
	}
	return tw.Flush()
}

func runReleaseCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCommand("release cancel", stdout, stderr)
	cc.fs.Usage = usageFunc(cc.fs, "deskforge release cancel [flags] RELEASE_ID",
		"Cancels the builds of a release that still run; the release becomes cancelled once they are.")
	c, done, err := cc.parseReleaseID(args)
	if done {
		return err
	}
	r, err := c.CancelRelease(ctx, cc.fs.Arg(0))
	if err != nil {
		return requestError(err)
	}
	if *cc.asJSON {
		return printJSON(stdout, r)
	}
	if r.Status == client.StatusCancelled {
		fmt.Fprintf(stdout, "Release %s cancelled.\n", r.ID)
	} else {
		fmt.Fprintf(stdout, "Cancelling release %s (%s): it becomes cancelled once GitHub confirms its builds' cancellation.\n", r.ID, r.Status)
	}
	return nil
}

func runReleaseRetry(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCommand("release retry", stdout, stderr)
	wait := cc.fs.Bool("wait", false, "follow the release until it is published or fails; exit 0 when published, 1 otherwise")
	cc.followFlags()
	publishWait := cc.fs.Duration("publish-wait", defaultPublishWait, "with --wait: how long a release whose builds all succeeded may take to be published before giving up")
	cc.fs.Usage = usageFunc(cc.fs, "deskforge release retry [--wait] [flags] RELEASE_ID",
		"Rebuilds the failed and cancelled targets of a failed or cancelled release (succeeded targets are kept).")
	c, done, err := cc.parseReleaseID(args)
	if done {
		return err
	}
	r, err := c.RetryRelease(ctx, cc.fs.Arg(0))
	if err != nil {
		return requestError(err)
	}
	if *wait {
		return cc.followRelease(ctx, c, r.ID, *publishWait)
	}
	if *cc.asJSON {
		return printJSON(stdout, r)
	}
	fmt.Fprintln(stdout, releaseLine(r, time.Now()))
	return nil
}
