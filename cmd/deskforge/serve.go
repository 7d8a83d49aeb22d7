package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/riverqueue/river"

	"github.com/deskforge/deskforge/hooks"
	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/server"
	"github.com/deskforge/deskforge/workflows"
	"github.com/deskforge/deskforge/workflows/github"
)

// shutdownTimeout bounds the graceful shutdown of HTTP requests and of
// running River jobs, each.
const shutdownTimeout = 30 * time.Second

// webhookWorkers is the number of outbound webhook deliveries one process
// sends at once (their own River queue).
const webhookWorkers = 50

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cf := registerConfig(fs, os.Getenv, groupListen, groupServe, groupDatabase, groupLog)
	demo := fs.Bool("demo", false, "try DeskForge against an in-process GitHub SIMULATOR: database "+demoDatabaseURL+
		" (unless DESKFORGE_DATABASE_URL is set), a demo project and an admin key printed at start; no GitHub settings needed")
	fs.Usage = usageFunc(fs, "deskforge serve [--demo] [flags]",
		"Runs the HTTP API and the build engine. It migrates the database, starts the River job workers, serves\n"+
			"until SIGTERM or Ctrl-C, then stops accepting requests and drains running requests and jobs.\n"+
			"GitHub must be configured (a token, or a GitHub App) unless --demo is given.")
	if done, err := parseFlags(fs, args, stdout, stderr); done {
		return err
	}
	if err := noArgs(fs, stderr); err != nil {
		return err
	}
	cfg, err := cf.load(*demo)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	return serve(ctx, cfg, stdout, stderr, nil)
}

// serve runs DeskForge until ctx ends. listening, when not nil, is called
// with the HTTP listener's address once requests are accepted.
func serve(ctx context.Context, cfg Config, stdout, stderr io.Writer, listening func(net.Addr)) error {
	log := newLogger(cfg, stderr)
	db, err := openDatabase(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx, log); err != nil {
		return err
	}
	db.Outbox().SetRenderer(server.EventRenderer(cfg.PublicURL))
	store := models.NewStore(db)

	obs, err := startMetrics(ctx, cfg, db, log)
	if err != nil {
		return err
	}
	defer obs.Close()
	var (
		forge     workflows.Forge
		demo      *demoEnv
		forgeHost = workflows.ForgeHostOf(cfg.GitHubAPIURL)
	)
	if cfg.Demo {
		demo, forge, err = startDemo(ctx, &cfg, log, obs.transport())
		if err != nil {
			return err
		}
		defer demo.Close()
		forgeHost = demo.ForgeHost(cfg.Listen)
	} else {
		forge, err = buildForge(ctx, cfg, log, obs.transport())
		if err != nil {
			return err
		}
	}
	if cfg.GitHubWebhookSecret == "" {
		log.Warn("DESKFORGE_GITHUB_WEBHOOK_SECRET is not set: POST /webhooks/github is off and build status comes from polling GitHub only")
	}

	// Listening before the engine starts tells the public URL of a demo on
	// --listen (a port of 0 included).
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (DESKFORGE_LISTEN): %w", cfg.Listen, err)
	}
	defer ln.Close()
	if cfg.publicURLFromListener {
		cfg.PublicURL = localURL(ln.Addr())
	}
	engine := workflows.NewEngine(store, forge, nil, log, workflows.Options{
		PublicURL:          cfg.PublicURL,
		ForgeHost:          forgeHost,
		BuilderRepo:        cfg.BuilderRepo,
		BuilderWorkflow:    cfg.BuilderWorkflow,
		BuilderRef:         cfg.BuilderRef,
		Runners:            cfg.Runners,
		MaxBuildDuration:   cfg.MaxBuildDuration,
		StepPollInterval:   cfg.StepPollInterval,
		StepPollsPerMinute: cfg.StepPollsPerMinute,
		DownloadMode:       cfg.DownloadMode,
		ReconcileInterval:  cfg.ReconcileInterval,
		StaleAfter:         cfg.StaleAfter,
		LogWaitTimeout:     cfg.LogWaitTimeout,
		NoRunTimeout:       cfg.NoRunTimeout,
		Observer:           obs.engine(),
		HostQueues:         true,
	})
	workers := river.NewWorkers()
	engine.RegisterWorkers(workers)
	hooks.New(store, hooks.Options{AllowPrivate: cfg.WebhooksAllowPrivate, Log: log, Observer: obs.deliveries()}).RegisterWorkers(workers)
	jobs, err := river.NewClient[*sql.Tx](db.RiverDriver(), &river.Config{
		Queues: map[string]river.QueueConfig{
			river.QueueDefault:  {MaxWorkers: cfg.JobWorkers},
			models.WebhookQueue: {MaxWorkers: webhookWorkers},
			// The jobs about builds of this process's GitHub server
			// (HostQueues above).
			workflows.ForgeQueue(forgeHost): {MaxWorkers: cfg.JobWorkers},
		},
		Workers:      workers,
		PeriodicJobs: engine.PeriodicJobs(),
		Logger:       riverLogger(cfg, stderr),
		// A job left running by a process that died is run again within
		// minutes (River's default is an hour).
		JobTimeout:           workflows.JobTimeout,
		RescueStuckJobsAfter: workflows.RescueStuckJobsAfter,
	})
	if err != nil {
		return fmt.Errorf("create river client: %w", err)
	}
	if err := jobs.Start(ctx); err != nil {
		return fmt.Errorf("start river: %w", err)
	}
	defer stopJobs(jobs, log)

	api := server.New(server.Options{
		Store:         store,
		Engine:        engine,
		PublicURL:     cfg.PublicURL,
		WebhookSecret: []byte(cfg.GitHubWebhookSecret),
		ParseWebhook:  webhookParser(cfg),
		Demo:          cfg.Demo,
		Log:           log,
		RateLimits:    cfg.rateLimits(),
		CORSOrigins:   cfg.CORSOrigins,
		Requests:      obs.requests(),
		Webhooks:      obs.webhooks(),
		SigningKey:    []byte(cfg.SigningKey),
	})
	sharers := []replicaSharer{api}
	if obs.m != nil {
		sharers = append(sharers, obs.m)
	}
	if s, ok := forge.(replicaSharer); ok {
		sharers = append(sharers, s)
	}
	if !cfg.Demo {
		// A demo talks to a simulated GitHub of its own, with its own token:
		// other processes on the database share none of its limits.
		stopFollowing := followReplicas(ctx, db, store, ln.Addr().String(), log, sharers...)
		defer stopFollowing()
	}
	httpServer := api.HTTPServer()
	httpServer.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	served := make(chan error, 1)
	go func() { served <- httpServer.Serve(ln) }()
	log.Info("DeskForge is serving", "listen", ln.Addr().String(), "public_url", cfg.PublicURL,
		"database", db.Dialect, "demo", cfg.Demo)
	if demo != nil {
		if err := demo.Ready(ctx, store, localURL(ln.Addr()), stdout); err != nil {
			httpServer.Close()
			return err
		}
	}
	if listening != nil {
		listening(ln.Addr())
	}

	select {
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining HTTP requests and running jobs")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		log.Warn("HTTP shutdown cut short", "err", err)
	}
	return nil
}

// riverLogger is the logger River's own messages go to: warnings and
// errors only (River reports routine activity at info every few seconds),
// everything with DESKFORGE_LOG_LEVEL=debug.
func riverLogger(cfg Config, w io.Writer) *slog.Logger {
	if cfg.LogLevel > slog.LevelDebug && cfg.LogLevel < slog.LevelWarn {
		cfg.LogLevel = slog.LevelWarn
	}
	return newLogger(cfg, w).With("component", "river")
}

// stopJobs lets running River jobs finish (bounded by shutdownTimeout),
// then cancels what is left; cancelled jobs are retried after a restart.
func stopJobs(jobs *river.Client[*sql.Tx], log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := jobs.Stop(ctx); err != nil {
		log.Warn("River did not stop in time; cancelling running jobs", "err", err)
		cancelCtx, cancelCancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancelCancel()
		if err := jobs.StopAndCancel(cancelCtx); err != nil {
			log.Warn("River did not stop after cancelling its jobs", "err", err)
		}
	}
}

// buildForge returns the GitHub client cfg describes (a token, or a GitHub
// App installation), on GitHub.com or the GitHub Enterprise Server at
// DESKFORGE_GITHUB_API_URL.
func buildForge(ctx context.Context, cfg Config, log *slog.Logger, transport func(http.RoundTripper) http.RoundTripper) (workflows.Forge, error) {
	opts, err := forgeOptions(cfg, log)
	if err != nil {
		return nil, err
	}
	if transport != nil {
		opts.HTTPClient = &http.Client{Transport: transport(nil)}
	}
	if cfg.Forge == ForgeGitea {
		client, err := github.NewGitea(ctx, github.GiteaOptions{Options: opts, WebUser: cfg.GiteaUsername, WebPassword: cfg.GiteaPassword})
		if err != nil {
			return nil, fmt.Errorf("configure Gitea: %w", err)
		}
		if !client.CanCancel() {
			log.Warn("DESKFORGE_GITEA_USERNAME is not set: cancelling a build will not stop its Gitea run (Gitea has no REST cancel; DeskForge cancels through its web route when it can sign in)")
		}
		go checkGitHub(ctx, client, cfg.BuilderRepo, log)
		return client, nil
	}
	client, err := github.New(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("configure GitHub: %w", err)
	}
	go checkGitHub(ctx, client, cfg.BuilderRepo, log)
	return client, nil
}

// accessChecker is what checkGitHub needs of a forge client.
type accessChecker interface {
	CheckAccess(ctx context.Context, repo string) error
	BaseURL() string
}

// webhookParser is the parser of the configured forge's deliveries.
func webhookParser(cfg Config) func(string, []byte) (workflows.WebhookEvent, error) {
	if cfg.Forge == ForgeGitea && !cfg.Demo {
		return github.ParseGiteaWebhook
	}
	return github.ParseWebhook
}

// checkGitHub checks once, at start, that GitHub answers DeskForge's
// credentials (and sees the builder repository), and says loudly when it
// does not: builds would otherwise wait in queued, retrying.
func checkGitHub(ctx context.Context, client accessChecker, builderRepo string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := client.CheckAccess(ctx, builderRepo); err != nil {
		log.Error("GITHUB CHECK FAILED: DeskForge cannot use its GitHub credentials; builds will not be dispatched until this is fixed "+
			"(check DESKFORGE_GITHUB_TOKEN or the GitHub App settings, DESKFORGE_GITHUB_API_URL and DESKFORGE_BUILDER_REPO)",
			"github_base_url", client.BaseURL(), "err", err)
		return
	}
	log.Info("GitHub credentials checked", "github_base_url", client.BaseURL(), "builder_repo", builderRepo)
}

// forgeOptions are the GitHub client's options cfg describes.
func forgeOptions(cfg Config, log *slog.Logger) (github.Options, error) {
	opts := github.Options{
		BaseURL:           cfg.GitHubAPIURL,
		Token:             cfg.GitHubToken,
		WritesPerMinute:   cfg.DispatchesPerMinute,
		WritesPerHour:     cfg.DispatchesPerHour,
		Logger:            log,
		DisableRunDetails: !cfg.GitHubRunDetails,
	}
	if cfg.GitHubToken == "" {
		key, err := os.ReadFile(cfg.GitHubAppPrivateKeyFile)
		if err != nil {
			return opts, fmt.Errorf("read DESKFORGE_GITHUB_APP_PRIVATE_KEY_FILE: %w", err)
		}
		opts.AppID, opts.AppPrivateKey, opts.InstallationID = cfg.GitHubAppID, key, cfg.GitHubInstallationID
	}
	return opts, nil
}

// startDemo starts demo mode's in-process GitHub simulator (demo.go), points
// cfg at it (builder repository, webhook secret) and returns it with a forge
// talking to it.
func startDemo(ctx context.Context, cfg *Config, log *slog.Logger, transport func(http.RoundTripper) http.RoundTripper) (*demoEnv, workflows.Forge, error) {
	d, err := startDemoSim(ctx, cfg.SimFaults, cfg.demoTiming, log)
	if err != nil {
		return nil, nil, err
	}
	cfg.BuilderRepo = d.BuilderRepo()
	cfg.GitHubWebhookSecret = d.WebhookSecret()
	opts := d.ForgeOptions()
	if transport != nil {
		base := http.DefaultTransport
		if opts.HTTPClient != nil && opts.HTTPClient.Transport != nil {
			base = opts.HTTPClient.Transport
		}
		opts.HTTPClient = &http.Client{Transport: transport(base)}
	}
	opts.WritesPerMinute = cfg.DispatchesPerMinute
	opts.WritesPerHour = cfg.DispatchesPerHour
	opts.Logger = log
	forge, err := github.New(ctx, opts)
	if err != nil {
		d.Close()
		return nil, nil, fmt.Errorf("demo: configure the simulated GitHub: %w", err)
	}
	return d, forge, nil
}

// localURL is the loopback URL of a listener, for callers on this machine
// (the demo's simulator delivering webhooks, the health check).
func localURL(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "http://" + addr.String()
	}
	host := tcp.IP.String()
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(tcp.Port))
}
