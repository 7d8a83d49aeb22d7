package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/deskforge/deskforge/client"
)

const buildUsage = `Usage: deskforge build <command> [flags]

Triggers, follows, lists and downloads builds on a DeskForge server, over its HTTP API.
The server is DESKFORGE_URL (or --url, default http://localhost:8080) and the API key
DESKFORGE_API_KEY (or --api-key).

  trigger      start a build (--wait follows it live until it ends)
  list         list a project's builds, newest first
  get ID       show a build
  logs ID      print a build's log (--follow streams it until the build ends)
  download ID  download a successful build's installer (resumes an interrupted download)
  cancel ID    cancel a build
  retry ID     start a new build of the same project, platform, arch and version

Every command takes --json (output for scripts). Exit status: 0 success, 1 the build
failed or was cancelled, 2 usage error, 3 the server refused or could not be reached,
130 Ctrl-C while following (the build goes on on the server).

Run 'deskforge build <command> --help' for its flags.
`

func runBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "build", args, stdout, stderr, buildUsage, map[string]subcommandFunc{
		"trigger":  runBuildTrigger,
		"list":     runBuildList,
		"get":      runBuildGet,
		"logs":     runBuildLogs,
		"download": runBuildDownload,
		"cancel":   runBuildCancel,
		"retry":    runBuildRetry,
	})
}

// defaultPollInterval is how often --wait and --follow ask the server.
const defaultPollInterval = 2 * time.Second

// clientCommand is one build subcommand's flags and what it shares with
// the others.
type clientCommand struct {
	fs       *flag.FlagSet
	cf       *configFlags
	asJSON   *bool
	stdout   io.Writer
	stderr   io.Writer
	interval *time.Duration // set by follow flags
}

func newClientCommand(name string, stdout, stderr io.Writer) *clientCommand {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	cc := &clientCommand{fs: fs, cf: registerConfig(fs, os.Getenv, groupClient), stdout: stdout, stderr: stderr}
	cc.asJSON = fs.Bool("json", false, "print JSON for scripts instead of text")
	return cc
}

// followFlags registers --interval, for the commands that follow a build.
func (cc *clientCommand) followFlags() {
	cc.interval = cc.fs.Duration("interval", defaultPollInterval, "how often to ask the server while following a build")
}

// parse parses args; it returns done (help printed, or a usage error) and
// the error to return then. nargs is how many positional arguments the
// command takes (0 or 1), what names them.
func (cc *clientCommand) parse(args []string, nargs int, what string) (bool, error) {
	if done, err := parseFlags(cc.fs, args, cc.stdout, cc.stderr); done {
		return true, err
	}
	if nargs == 0 {
		err := noArgs(cc.fs, cc.stderr)
		return err != nil, err
	}
	err := requireOneArg(cc.fs, cc.stderr, what)
	return err != nil, err
}

// connect loads the server URL and API key and returns a client.
func (cc *clientCommand) connect() (*client.Client, error) {
	cfg, err := cc.cf.load(false)
	if err != nil {
		fmt.Fprintf(cc.stderr, "%v\n", err)
		return nil, errUsage
	}
	c, err := client.New(client.Options{BaseURL: cfg.ServerURL, APIKey: cfg.APIKey, UserAgent: "deskforge-cli/" + buildVersion()})
	if err != nil {
		fmt.Fprintf(cc.stderr, "%v\n", err)
		return nil, errUsage
	}
	return c, nil
}

// parseBuildID parses the flags and the one build id of a build command,
// then connects: done is true when the command must return err at once
// (help, a usage error or no server settings); the id is cc.fs.Arg(0).
func (cc *clientCommand) parseBuildID(args []string) (c *client.Client, done bool, err error) {
	if done, err := cc.parse(args, 1, "build id (build_…)"); done {
		return nil, true, err
	}
	c, err = cc.connect()
	return c, err != nil, err
}

// flagOfField names the flag that sets an API field, for 400 answers.
var flagOfField = map[string]string{
	"platform": "--platform", "arch": "--arch", "version": "--version", "status": "--status",
	"limit": "--limit", "cursor": "--cursor", "level": "--level", "after": "--after",
}

// requestError turns a failed request into the command's exit: 2 for an
// invalid value (named by its flag), 3 for anything else the server or the
// network answered.
func requestError(err error) error {
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Code == "invalid_request" {
		if f, ok := flagOfField[ae.Field]; ok {
			return &exitError{exitUsage, fmt.Errorf("%s: %s", f, ae.Message)}
		}
		return &exitError{exitUsage, err}
	}
	return &exitError{exitServer, err}
}

// resolveProject returns the --project given, or the only project the key
// sees.
func resolveProject(ctx context.Context, c *client.Client, given string) (string, error) {
	if given != "" {
		return given, nil
	}
	list, err := c.ListProjects(ctx, client.ListOptions{Limit: 2})
	if err != nil {
		return "", requestError(err)
	}
	if len(list.Projects) == 1 {
		return list.Projects[0].ID, nil
	}
	var names []string
	for _, p := range list.Projects {
		names = append(names, p.ID+" ("+p.Name+")")
	}
	return "", &exitError{exitUsage, fmt.Errorf("--project is required: this key sees %d projects (%s); 'deskforge project list' names them", list.Total, strings.Join(names, ", "))}
}

func runBuildTrigger(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCommand("build trigger", stdout, stderr)
	project := cc.fs.String("project", "", "project id (proj_…); default: the only project the API key sees")
	platform := cc.fs.String("platform", "", "target platform: mac, windows or linux (required)")
	arch := cc.fs.String("arch", "", "architecture: x64 or arm64 (default: the server's, x64)")
	version := cc.fs.String("version", "", "semantic version to build, e.g. 1.0.0 (default: the project's)")
	idemKey := cc.fs.String("idempotency-key", "", "send this Idempotency-Key: repeating the command answers the same build instead of a new one")
	wait := cc.fs.Bool("wait", false, "follow the build until it ends; exit 0 on success, 1 on failure")
	cc.followFlags()
	cc.fs.Usage = usageFunc(cc.fs, "deskforge build trigger [--project ID] --platform P [--arch A] [--version V] [--wait] [flags]",
		"Starts a build and prints its id. With --wait, follows it live (status, step, elapsed time) and exits\n"+
			"with its outcome.")
	if done, err := cc.parse(args, 0, ""); done {
		return err
	}
	if *platform == "" {
		fmt.Fprint(stderr, "build trigger needs --platform (mac, windows or linux)\n\n")
		cc.fs.SetOutput(stderr)
		cc.fs.Usage()
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
	created, err := c.TriggerBuild(ctx, projectID, client.TriggerRequest{Platform: *platform, Arch: *arch, Version: *version, IdempotencyKey: *idemKey})
	if err != nil {
		return requestError(err)
	}
	if !*wait {
		if *cc.asJSON {
			return printJSON(stdout, created)
		}
		fmt.Fprintf(stdout, "%s\n", created.ID)
		fmt.Fprintf(stderr, "Build %s queued: %s/%s %s. Follow it with: deskforge build logs --follow %s\n",
			created.ID, created.Platform, created.Arch, created.Version, created.ID)
		return nil
	}
	return cc.follow(ctx, c, created.ID, false, "")
}

// follow watches a build until it ends (the live view on a terminal,
// plain lines otherwise, the final build as JSON with --json) and returns
// the exit for its outcome.
func (cc *clientCommand) follow(ctx context.Context, f buildFollower, id string, logs bool, level string) error {
	view := newBuildView(cc.stdout, isTerminal(cc.stdout), *cc.asJSON, logs)
	defer view.stop()
	final, err := f.Watch(ctx, id, client.WatchOptions{Logs: logs, Level: level, Interval: *cc.interval}, func(u client.Update) error {
		view.update(u)
		return nil
	})
	switch {
	case err != nil && ctx.Err() != nil:
		view.stop()
		return &exitError{exitInterrupted, fmt.Errorf("stopped following %s; it goes on on the server (cancel it with 'deskforge build cancel %s')", id, id)}
	case err != nil:
		view.stop()
		return requestError(err)
	}
	view.finish(final)
	if *cc.asJSON && !logs {
		if err := printJSON(cc.stdout, final); err != nil {
			return err
		}
	}
	if final.Status != client.StatusSuccess {
		if final.Status == client.StatusFailed && !logs && !*cc.asJSON {
			fmt.Fprintf(cc.stderr, "See why with: deskforge build logs --level warning %s\n", id)
		}
		return &exitError{exitFailed, nil}
	}
	return nil
}

// buildFollower follows a build until it ends, delivering its changes.
// *client.Client polls the API; an event stream can take its place.
type buildFollower interface {
	Watch(ctx context.Context, id string, opts client.WatchOptions, fn func(client.Update) error) (*client.Build, error)
}

func runBuildList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCommand("build list", stdout, stderr)
	project := cc.fs.String("project", "", "project id (proj_…); default: the only project the API key sees")
	status := cc.fs.String("status", "", "only builds with this status: queued, building, success, failed, cancelled")
	platform := cc.fs.String("platform", "", "only builds for this platform: mac, windows, linux")
	arch := cc.fs.String("arch", "", "only builds for this architecture: x64, arm64")
	version := cc.fs.String("version", "", "only builds of this version")
	limit := cc.fs.Int("limit", 20, "show at most this many builds (newest first)")
	cc.fs.Usage = usageFunc(cc.fs, "deskforge build list [--project ID] [filters] [flags]",
		"Lists a project's builds, newest first. --json prints one build per line.")
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
	f := client.BuildFilter{Status: *status, Platform: *platform, Arch: *arch, Version: *version}
	var (
		builds []client.Build
		total  int64
	)
	for len(builds) < *limit {
		f.Limit = min(*limit-len(builds), 200)
		page, err := c.ListBuilds(ctx, projectID, f)
		if err != nil {
			return requestError(err)
		}
		builds, total = append(builds, page.Builds...), page.Total
		if page.NextCursor == nil {
			break
		}
		f.Cursor = *page.NextCursor
	}
	if *cc.asJSON {
		enc := json.NewEncoder(stdout)
		for _, b := range builds {
			if err := enc.Encode(b); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tTARGET\tVERSION\tCREATED\tDURATION")
	for _, b := range builds {
		fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s\t%s\t%s\n", b.ID, b.Status, b.Platform, b.Arch, b.Version,
			b.CreatedAt.UTC().Format(time.RFC3339), durationOf(b))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if int64(len(builds)) < total {
		fmt.Fprintf(stderr, "%d of %d builds shown; --limit shows more.\n", len(builds), total)
	}
	return nil
}

// durationOf is a build's duration for people ("-" until it is known).
func durationOf(b client.Build) string {
	if b.Duration == nil {
		return "-"
	}
	return (time.Duration(*b.Duration) * time.Second).String()
}

func runBuildGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCommand("build get", stdout, stderr)
	cc.fs.Usage = usageFunc(cc.fs, "deskforge build get [flags] BUILD_ID", "Shows a build; --json prints the API's JSON.")
	c, done, err := cc.parseBuildID(args)
	if done {
		return err
	}
	b, err := c.GetBuild(ctx, cc.fs.Arg(0))
	if err != nil {
		return requestError(err)
	}
	if *cc.asJSON {
		return printJSON(stdout, b)
	}
	return printBuild(stdout, b)
}

// printBuild shows a build as aligned "field value" lines.
func printBuild(w io.Writer, b *client.Build) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	timeOr := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	row("id", b.ID)
	row("project", b.ProjectID)
	row("target", b.Platform+"/"+b.Arch)
	row("version", b.Version)
	status := b.Status
	if b.Progress != nil && !client.IsFinal(b.Status) {
		status += fmt.Sprintf(" (step %d/%d: %s)", b.Progress.Step, b.Progress.Steps, b.Progress.Name)
	}
	row("status", status)
	if b.Error != nil {
		msg := b.Error.Message
		if b.Error.Step != nil {
			msg = fmt.Sprintf("step %q: %s", *b.Error.Step, msg)
		}
		row("error", msg+" ("+b.Error.Code+")")
	}
	row("created", b.CreatedAt.UTC().Format(time.RFC3339))
	row("started", timeOr(b.StartedAt))
	row("completed", timeOr(b.CompletedAt))
	row("duration", durationOf(*b))
	if b.ArtifactURL != nil {
		artifact := *b.ArtifactURL
		if b.ArtifactSize != nil {
			artifact += " (" + formatBytes(*b.ArtifactSize) + ")"
		}
		row("artifact", artifact)
	}
	row("log", b.BuildLog)
	if b.RetryOf != nil {
		row("retry of", *b.RetryOf)
	}
	return tw.Flush()
}

func runBuildLogs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCommand("build logs", stdout, stderr)
	follow := cc.fs.Bool("follow", false, "stream new entries until the build ends; exit 0 on success, 1 on failure")
	level := cc.fs.String("level", "", "only entries of this level and above: debug, info, warning, error")
	cc.followFlags()
	cc.fs.Usage = usageFunc(cc.fs, "deskforge build logs [--follow] [--level LEVEL] [flags] BUILD_ID",
		"Prints a build's log, one entry a line (2024-01-20T10:01:00Z [info] message); --json prints one JSON\n"+
			"object a line. With --follow, keeps printing new entries until the build ends.")
	c, done, err := cc.parseBuildID(args)
	if done {
		return err
	}
	id := cc.fs.Arg(0)
	if *follow {
		return cc.follow(ctx, c, id, true, *level)
	}
	view := newBuildView(stdout, false, *cc.asJSON, true)
	var after int64
	for {
		page, err := c.BuildLogs(ctx, id, client.LogOptions{After: after, Limit: 1000, Level: *level})
		if err != nil {
			return requestError(err)
		}
		view.update(client.Update{Logs: page.Logs})
		after = page.NextAfter
		if len(page.Logs) < 1000 {
			return nil
		}
	}
}

func runBuildCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCommand("build cancel", stdout, stderr)
	cc.fs.Usage = usageFunc(cc.fs, "deskforge build cancel [flags] BUILD_ID",
		"Cancels a build: at once when it was not dispatched yet, otherwise once GitHub confirms.")
	c, done, err := cc.parseBuildID(args)
	if done {
		return err
	}
	b, err := c.CancelBuild(ctx, cc.fs.Arg(0))
	if err != nil {
		return requestError(err)
	}
	if *cc.asJSON {
		return printJSON(stdout, b)
	}
	if b.Status == client.StatusCancelled {
		fmt.Fprintf(stdout, "Build %s cancelled.\n", b.ID)
	} else {
		fmt.Fprintf(stdout, "Cancelling build %s (%s): it becomes cancelled once GitHub confirms.\n", b.ID, b.Status)
	}
	return nil
}

func runBuildRetry(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCommand("build retry", stdout, stderr)
	wait := cc.fs.Bool("wait", false, "follow the new build until it ends; exit 0 on success, 1 on failure")
	cc.followFlags()
	cc.fs.Usage = usageFunc(cc.fs, "deskforge build retry [--wait] [flags] BUILD_ID",
		"Starts a new build of the same project, platform, arch and version, and prints its id.")
	c, done, err := cc.parseBuildID(args)
	if done {
		return err
	}
	b, err := c.RetryBuild(ctx, cc.fs.Arg(0))
	if err != nil {
		return requestError(err)
	}
	if *wait {
		return cc.follow(ctx, c, b.ID, false, "")
	}
	if *cc.asJSON {
		return printJSON(stdout, b)
	}
	fmt.Fprintln(stdout, b.ID)
	return nil
}

func runBuildDownload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCommand("build download", stdout, stderr)
	output := cc.fs.String("o", "", "write the installer to this file (default: its name, in the current directory; - for stdout)")
	cc.fs.Usage = usageFunc(cc.fs, "deskforge build download [-o FILE] [flags] BUILD_ID",
		"Downloads a successful build's installer, with a progress bar on a terminal. The bytes go to FILE.part\n"+
			"first; an interrupted download is resumed (also by running the command again). The size and, when\n"+
			"the server gives it, the SHA-256 are checked.")
	c, done, err := cc.parseBuildID(args)
	if done {
		return err
	}
	id := cc.fs.Arg(0)
	b, err := c.GetBuild(ctx, id)
	if err != nil {
		return requestError(err)
	}
	if b.Status != client.StatusSuccess {
		return &exitError{exitFailed, fmt.Errorf("build %s is %s: only a successful build has an installer to download", id, b.Status)}
	}
	if *output == "-" {
		a, err := c.OpenArtifact(ctx, id, 0)
		if err != nil {
			return requestError(err)
		}
		defer a.Body.Close()
		if _, err := io.Copy(stdout, a.Body); err != nil {
			return &exitError{exitServer, fmt.Errorf("download build %s: %w", id, err)}
		}
		return nil
	}
	dest := *output
	if dest == "" {
		dest = artifactName(b)
	}
	bar := newProgressBar(stderr, isTerminal(stderr) && !*cc.asJSON)
	res, err := c.DownloadFile(ctx, id, dest, client.DownloadOptions{
		Progress: bar.set,
		OnRetry: func(done int64, err error) {
			bar.note(fmt.Sprintf("interrupted at %s (%v); resuming", formatBytes(done), err))
		},
	})
	bar.stop()
	if err != nil {
		if ctx.Err() != nil {
			return &exitError{exitInterrupted, fmt.Errorf("download stopped; run the command again to resume from %s%s", dest, client.PartialSuffix)}
		}
		return requestError(err)
	}
	if *cc.asJSON {
		return printJSON(stdout, res)
	}
	resumed := ""
	if res.Resumed {
		resumed = ", resumed"
	}
	fmt.Fprintf(stdout, "%s (%s, sha256 %s%s)\n", res.Path, formatBytes(res.Size), res.SHA256, resumed)
	return nil
}

// artifactName is the installer's file name, from the build's artifactUrl.
func artifactName(b *client.Build) string {
	if b.ArtifactURL != nil {
		if u, err := url.Parse(*b.ArtifactURL); err == nil {
			if name := path.Base(u.Path); name != "" && name != "/" && name != "." {
				return name
			}
		}
	}
	return b.ID
}
