package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/deskforge/deskforge/server"
	"github.com/deskforge/deskforge/templates"
	"github.com/deskforge/deskforge/workflows/ghsim"
)

// Config is DeskForge's configuration, loaded from flags and DESKFORGE_*
// environment variables (a flag overrides its variable) and validated by
// loadConfig.
type Config struct {
	Listen      string
	PublicURL   string
	DatabaseURL string

	GitHubToken             string
	GitHubAppID             int64
	GitHubAppPrivateKeyFile string
	GitHubInstallationID    int64
	GitHubAPIURL            string
	GitHubWebhookSecret     string
	SigningKey              string // keys signed download links; "" = generated and stored
	BuilderRepo             string
	BuilderWorkflow         string
	BuilderRef              string
	Runners                 templates.RunnerTable
	MaxBuildDuration        time.Duration
	ReconcileInterval       time.Duration
	StaleAfter              time.Duration
	LogWaitTimeout          time.Duration
	NoRunTimeout            time.Duration
	DispatchesPerMinute     int
	DispatchesPerHour       int
	JobWorkers              int
	StepPollInterval        time.Duration
	StepPollsPerMinute      int
	DownloadMode            string
	LogLevel                slog.Level
	LogFormat               string // "json", "text" or "" (text on a terminal, else json)
	SimFaults               string
	Demo                    bool
	// WebhooksAllowPrivate lets outbound webhooks reach loopback and
	// private addresses (on by default in the demo).
	WebhooksAllowPrivate bool
	// ReadRate and WriteRate are the per-key request limits (rate limits
	// off when both are zero: "off").
	ReadRate, WriteRate server.Rate
	// CORSOrigins are the browser origins allowed to call the API.
	CORSOrigins []string
	// GitHubRunDetails: dispatches ask for return_run_details (false for
	// GitHub Enterprise Server releases that reject it).
	GitHubRunDetails bool
	// MetricsListen is the address of the Prometheus endpoint (empty: off).
	MetricsListen string
	// Forge is the kind of forge: ForgeGitHub (GitHub.com or GitHub
	// Enterprise Server) or ForgeGitea (Gitea or Forgejo, at GitHubAPIURL).
	Forge string
	// GiteaUsername and GiteaPassword sign in to Gitea's web interface to
	// cancel runs (Gitea has no REST cancel).
	GiteaUsername, GiteaPassword string
	// publicURLFromListener: the public URL is the listener's local URL (a
	// demo without DESKFORGE_PUBLIC_URL, so that links follow --listen).
	publicURLFromListener bool
	// demoTiming paces the demo's simulated runs (zero: about 20 s a
	// build); tests make it fast.
	demoTiming ghsim.Timing

	// ServerURL and APIKey are where the client commands (build) send
	// their requests, and with which key.
	ServerURL string
	APIKey    string
}

// maxJobWorkers bounds DESKFORGE_JOB_WORKERS: each worker may hold a
// database connection and a GitHub request at once.
const maxJobWorkers = 1000

// GitHubConfigured reports whether a token or a complete GitHub App
// identity is set.
func (c Config) GitHubConfigured() bool {
	return c.GitHubToken != "" || (c.GitHubAppID != 0 && c.GitHubAppPrivateKeyFile != "" && c.GitHubInstallationID != 0)
}

// setting is one configuration value: a flag, its environment variable and
// its default.
type setting struct {
	flag   string
	arg    string // placeholder of the value in --help
	env    string
	def    string
	usage  string
	secret bool // never shown as a default in --help
	value  string
	given  bool // set by the flag or the environment
}

// Groups of settings, registered per subcommand.
const (
	groupDatabase = iota
	groupLog
	groupListen
	groupServe
	groupClient
)

func allSettings() map[int][]*setting {
	return map[int][]*setting{
		groupDatabase: {
			{flag: "database-url", arg: "URL", env: "DESKFORGE_DATABASE_URL", def: "sqlite://deskforge.db", usage: "database: sqlite://path/to/file.db (embedded) or postgres://user:pass@host:5432/db"}, //nolint:gosec // G101: an example URL in help text
		},
		groupLog: {
			{flag: "log-level", arg: "LEVEL", env: "DESKFORGE_LOG_LEVEL", def: "info", usage: "log level: debug, info, warn or error"},
			{flag: "log-format", arg: "FORMAT", env: "DESKFORGE_LOG_FORMAT", def: "", usage: "log format: json or text (default: text when stderr is a terminal, else json)"},
		},
		groupListen: {
			{flag: "listen", arg: "ADDR", env: "DESKFORGE_LISTEN", def: ":8080", usage: "address the HTTP API listens on"},
		},
		groupClient: {
			{flag: "url", arg: "URL", env: "DESKFORGE_URL", def: "http://localhost:8080", usage: "base URL of the DeskForge server"},
			{flag: "api-key", arg: "KEY", env: "DESKFORGE_API_KEY", usage: "API key (df_…) sent as the bearer token; 'deskforge apikey create' makes one", secret: true},
		},
		groupServe: {
			{flag: "public-url", arg: "URL", env: "DESKFORGE_PUBLIC_URL", def: "http://localhost:8080", usage: "external base URL of the API, used in buildLog, artifactUrl and Location"},
			{flag: "github-token", arg: "TOKEN", env: "DESKFORGE_GITHUB_TOKEN", usage: "GitHub token (PAT or installation token) with actions and contents write access", secret: true},
			{flag: "github-app-id", arg: "ID", env: "DESKFORGE_GITHUB_APP_ID", usage: "GitHub App id (instead of a token, with the two next settings)"},
			{flag: "github-app-private-key-file", arg: "FILE", env: "DESKFORGE_GITHUB_APP_PRIVATE_KEY_FILE", usage: "PEM file of the GitHub App's private key"},
			{flag: "github-installation-id", arg: "ID", env: "DESKFORGE_GITHUB_INSTALLATION_ID", usage: "GitHub App installation id"},
			{flag: "github-api-url", arg: "URL", env: "DESKFORGE_GITHUB_API_URL", usage: "GitHub REST API root for GitHub Enterprise Server (https://host/api/v3/) or Gitea/Forgejo (https://host/api/v1/); empty = api.github.com"},
			{flag: "github-webhook-secret", arg: "SECRET", env: "DESKFORGE_GITHUB_WEBHOOK_SECRET", usage: "secret of the GitHub webhook pointed at /webhooks/github; empty = webhooks off, status by polling", secret: true},
			{flag: "signing-key", arg: "KEY", env: "DESKFORGE_SIGNING_KEY", usage: "key (32+ characters) of signed download links; empty = generated on first start and stored in the database", secret: true},
			{flag: "builder-repo", arg: "OWNER/NAME", env: "DESKFORGE_BUILDER_REPO", usage: "owner/name of the repository that builds web-app projects (holds templates/webapp.yml)"},
			{flag: "builder-workflow", arg: "FILE", env: "DESKFORGE_BUILDER_WORKFLOW", def: "deskforge.yml", usage: "workflow file of the builder repository"},
			{flag: "builder-ref", arg: "REF", env: "DESKFORGE_BUILDER_REF", def: "main", usage: "branch or tag of the builder repository to run"},
			{flag: "runners", arg: "LIST", env: "DESKFORGE_RUNNERS", usage: "runner labels overriding the defaults, e.g. mac/arm64=macos-26,linux/x64=ubuntu-24.04"},
			{flag: "max-build-duration", arg: "DURATION", env: "DESKFORGE_MAX_BUILD_DURATION", def: "6h", usage: "a build still building after this fails as timed out"},
			{flag: "reconcile-interval", arg: "DURATION", env: "DESKFORGE_RECONCILE_INTERVAL", def: "30s", usage: "how often unfinished builds are checked for staleness (polled on GitHub when webhooks are late or lost)"},
			{flag: "stale-after", arg: "DURATION", env: "DESKFORGE_STALE_AFTER", def: "60s", usage: "an unfinished build not updated for this long is polled on GitHub"},
			{flag: "log-wait-timeout", arg: "DURATION", env: "DESKFORGE_LOG_WAIT_TIMEOUT", def: "2m", usage: "how long after a job completed its log is awaited (GitHub answers 404 or fails) before the build ends without it"},
			{flag: "no-run-timeout", arg: "DURATION", env: "DESKFORGE_NO_RUN_TIMEOUT", def: "10m", usage: "a build whose dispatch GitHub accepted but whose workflow run never appeared fails after this long"},
			{flag: "dispatches-per-minute", arg: "N", env: "DESKFORGE_DISPATCHES_PER_MINUTE", def: "60", usage: "pace of workflow dispatches (GitHub writes) per token"},
			{flag: "job-workers", arg: "N", env: "DESKFORGE_JOB_WORKERS", def: "10", usage: "engine jobs (dispatches, webhook events, polls, log fetches) one process runs at once"},
			{flag: "dispatches-per-hour", arg: "N", env: "DESKFORGE_DISPATCHES_PER_HOUR", def: "500", usage: "budget of workflow dispatches (GitHub writes) per hour and token: GitHub allows 500 content-creating requests an hour"},
			{flag: "step-poll-interval", arg: "DURATION", env: "DESKFORGE_STEP_POLL_INTERVAL", def: "8s", usage: "how often a building build's job steps are read for live progress (conditional requests)"},
			{flag: "step-polls-per-minute", arg: "N", env: "DESKFORGE_STEP_POLLS_PER_MINUTE", def: "300", usage: "cap on those reads per process"},
			{flag: "download-mode", arg: "MODE", env: "DESKFORGE_DOWNLOAD_MODE", def: "redirect", usage: "artifact downloads: redirect (to GitHub) or proxy (streamed through DeskForge)"},
			{flag: "webhooks-allow-private", arg: "BOOL", env: "DESKFORGE_WEBHOOKS_ALLOW_PRIVATE", def: "false", usage: "let outbound webhooks reach loopback, private and link-local addresses (on-premises receivers; true by default with --demo)"},
			{flag: "rate-limit-reads", arg: "RATE", env: "DESKFORGE_RATE_LIMIT_READS", def: "50/s:200", usage: "reads (GET) per API key or client address: PER_SECOND/s:BURST, or off; per replica"},
			{flag: "rate-limit-writes", arg: "RATE", env: "DESKFORGE_RATE_LIMIT_WRITES", def: "1/s:30", usage: "triggers and other writes per API key: PER_SECOND/s:BURST, or off; per replica"},
			{flag: "cors-origins", arg: "LIST", env: "DESKFORGE_CORS_ORIGINS", usage: "browser origins allowed to call the API, comma-separated (e.g. https://app.example.com), or *"},
			{flag: "github-run-details", arg: "BOOL", env: "DESKFORGE_GITHUB_RUN_DETAILS", def: "true", usage: "ask GitHub to return the run of a dispatch (false for GitHub Enterprise Server releases without return_run_details)"},
			{flag: "metrics-listen", arg: "ADDR", env: "DESKFORGE_METRICS_LISTEN", usage: "address of the Prometheus /metrics endpoint, e.g. 127.0.0.1:9090 (empty: off)"},
			{flag: "sim-faults", arg: "LIST", env: "DESKFORGE_SIM_FAULTS", usage: "demo only: simulator faults, e.g. drop=0.3,duplicate=0.2,api5xx=0.1,seed=7"},
			{flag: "forge-url", arg: "URL", env: "DESKFORGE_FORGE_URL", usage: "alias of --github-api-url (the forge's REST API root); set one of the two"},
			{flag: "forge", arg: "KIND", env: "DESKFORGE_FORGE", def: ForgeGitHub, usage: "the forge running the builds: github (GitHub.com, GitHub Enterprise Server) or gitea (Gitea or Forgejo Actions, which speaks Gitea's API)"},
			{flag: "gitea-username", arg: "USER", env: "DESKFORGE_GITEA_USERNAME", usage: "gitea only: user signing in to Gitea's web interface to cancel runs (Gitea has no REST cancel); empty = cancel unsupported"},
			{flag: "gitea-password", arg: "PASSWORD", env: "DESKFORGE_GITEA_PASSWORD", usage: "gitea only: that user's password", secret: true},
		},
	}
}

// configFlags holds the settings registered on one flag set.
type configFlags struct {
	fs       *flag.FlagSet
	settings []*setting
	getenv   func(string) string
}

// registerConfig registers the settings of groups as flags of fs. Call
// load after fs.Parse.
func registerConfig(fs *flag.FlagSet, getenv func(string) string, groups ...int) *configFlags {
	cf := &configFlags{fs: fs, getenv: getenv}
	all := allSettings()
	for _, g := range groups {
		for _, s := range all[g] {
			usage := fmt.Sprintf("%s (env %s)", s.usage, s.env)
			fs.StringVar(&s.value, s.flag, s.def, usage)
			cf.settings = append(cf.settings, s)
		}
	}
	return cf
}

// load resolves every registered setting (flag, else environment, else
// default) and validates the result. demo switches the database default to
// the demo's file and lifts the GitHub requirement.
func (cf *configFlags) load(demo bool) (Config, error) {
	explicit := map[string]bool{}
	cf.fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	for _, s := range cf.settings {
		s.given = explicit[s.flag]
		if !s.given {
			if v, ok := lookupEnv(cf.getenv, s.env); ok {
				s.value, s.given = v, true
			}
		}
	}
	return cf.build(demo)
}

func lookupEnv(getenv func(string) string, name string) (string, bool) {
	v := strings.TrimSpace(getenv(name))
	return v, v != ""
}

func (cf *configFlags) get(flagName string) (*setting, bool) {
	for _, s := range cf.settings {
		if s.flag == flagName {
			return s, true
		}
	}
	return nil, false
}

// errorf names a setting by flag and variable in a configuration error.
func (s *setting) errorf(format string, args ...any) error {
	return fmt.Errorf("--%s / %s: %s", s.flag, s.env, fmt.Sprintf(format, args...))
}

var (
	repoRe         = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$`)
	workflowFileRe = regexp.MustCompile(`^[A-Za-z0-9._-]+\.ya?ml$`)
)

// build converts and validates the resolved values; every error says which
// setting is wrong and how to fix it, and all errors are reported at once.
func (cf *configFlags) build(demo bool) (Config, error) {
	cfg := Config{Demo: demo, LogLevel: slog.LevelInfo, Runners: templates.DefaultRunners}
	var errs []error
	str := func(name string) (*setting, string) {
		s, ok := cf.get(name)
		if !ok {
			return nil, ""
		}
		return s, s.value
	}
	if s, v := str("listen"); s != nil {
		if _, _, err := net.SplitHostPort(v); err != nil {
			errs = append(errs, s.errorf("%q is not host:port; use e.g. :8080 or 127.0.0.1:8080", v))
		}
		cfg.Listen = v
	}
	if s, v := str("public-url"); s != nil {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			errs = append(errs, s.errorf("%q is not an absolute http(s) URL; use e.g. https://deskforge.example.com", v))
		}
		cfg.PublicURL = strings.TrimSuffix(v, "/")
		cfg.publicURLFromListener = demo && !s.given
	}
	if s, v := str("database-url"); s != nil {
		if demo && !s.given {
			v = demoDatabaseURL
		}
		if !strings.HasPrefix(v, "sqlite://") && !strings.HasPrefix(v, "postgres://") && !strings.HasPrefix(v, "postgresql://") {
			errs = append(errs, s.errorf("must start with sqlite:// (e.g. sqlite://deskforge.db) or postgres:// (e.g. postgres://user:pass@localhost:5432/deskforge)"))
		}
		cfg.DatabaseURL = v
	}
	if s, v := str("log-level"); s != nil {
		switch strings.ToLower(v) {
		case "debug":
			cfg.LogLevel = slog.LevelDebug
		case "info":
			cfg.LogLevel = slog.LevelInfo
		case "warn", "warning":
			cfg.LogLevel = slog.LevelWarn
		case "error":
			cfg.LogLevel = slog.LevelError
		default:
			errs = append(errs, s.errorf("%q is not a log level; use debug, info, warn or error", v))
		}
	}
	if s, v := str("log-format"); s != nil {
		if v != "" && v != "json" && v != "text" {
			errs = append(errs, s.errorf("%q is not a log format; use json or text", v))
		}
		cfg.LogFormat = v
	}
	if s, v := str("url"); s != nil {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, s.errorf("%q is not an absolute http(s) URL; use e.g. http://localhost:8080", v))
		}
		cfg.ServerURL = strings.TrimSuffix(v, "/")
	}
	if s, v := str("api-key"); s != nil {
		if v == "" {
			errs = append(errs, s.errorf("no API key; set DESKFORGE_API_KEY (or --api-key) to a key printed by 'deskforge apikey create' or by 'serve --demo'"))
		}
		cfg.APIKey = v
	}
	if s, _ := str("github-token"); s == nil {
		// Not a serving command: nothing GitHub-related to check.
		return cfg, errors.Join(errs...)
	}
	_, cfg.GitHubToken = str("github-token")
	_, cfg.GitHubAppPrivateKeyFile = str("github-app-private-key-file")
	_, cfg.GitHubWebhookSecret = str("github-webhook-secret")
	if s, v := str("signing-key"); v != "" && len(v) < 32 {
		errs = append(errs, s.errorf("is %d characters; use 32 or more (e.g. openssl rand -hex 32), or leave it empty to have one generated and stored", len(v)))
	}
	_, cfg.SigningKey = str("signing-key")
	_, cfg.SimFaults = str("sim-faults")
	for _, n := range []struct {
		name string
		dst  *int64
	}{{"github-app-id", &cfg.GitHubAppID}, {"github-installation-id", &cfg.GitHubInstallationID}} {
		s, v := str(n.name)
		if v == "" {
			continue
		}
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			errs = append(errs, s.errorf("%q is not a positive number; copy it from the GitHub App's settings page", v))
		}
		*n.dst = id
	}
	appParts := 0
	for _, set := range []bool{cfg.GitHubAppID != 0, cfg.GitHubAppPrivateKeyFile != "", cfg.GitHubInstallationID != 0} {
		if set {
			appParts++
		}
	}
	if appParts != 0 && appParts != 3 {
		errs = append(errs, errors.New("GitHub App: set all of DESKFORGE_GITHUB_APP_ID, DESKFORGE_GITHUB_APP_PRIVATE_KEY_FILE and DESKFORGE_GITHUB_INSTALLATION_ID, or none (and DESKFORGE_GITHUB_TOKEN instead)"))
	}
	if cfg.GitHubAppPrivateKeyFile != "" {
		if _, err := os.Stat(cfg.GitHubAppPrivateKeyFile); err != nil {
			s, _ := str("github-app-private-key-file")
			errs = append(errs, s.errorf("cannot read the private key file: %v", err))
		}
	}
	if !demo && !cfg.GitHubConfigured() {
		errs = append(errs, errors.New("GitHub is not configured: set DESKFORGE_GITHUB_TOKEN (or DESKFORGE_GITHUB_APP_ID, DESKFORGE_GITHUB_APP_PRIVATE_KEY_FILE and DESKFORGE_GITHUB_INSTALLATION_ID), or run `deskforge serve --demo` to try DeskForge against a simulated GitHub"))
	}
	if s, v := str("github-api-url"); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, s.errorf("%q is not an http(s) URL; for GitHub Enterprise Server use https://HOST/api/v3/", v))
		}
		cfg.GitHubAPIURL = v
	}
	if s, v := str("forge-url"); v != "" {
		u, err := url.Parse(v)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs = append(errs, s.errorf("%q is not an http(s) URL; use e.g. https://gitea.example.com/api/v1/", v))
		case cfg.GitHubAPIURL != "" && cfg.GitHubAPIURL != v:
			errs = append(errs, s.errorf("%q differs from DESKFORGE_GITHUB_API_URL %q: set one of the two", v, cfg.GitHubAPIURL))
		}
		cfg.GitHubAPIURL = v
	}
	errs = append(errs, cf.buildForgeKind(&cfg)...)
	if s, v := str("builder-repo"); v != "" {
		if !repoRe.MatchString(v) {
			errs = append(errs, s.errorf("%q is not owner/name; use e.g. acme/deskforge-builder", v))
		}
		cfg.BuilderRepo = v
	}
	if s, v := str("builder-workflow"); s != nil {
		if !workflowFileRe.MatchString(v) {
			errs = append(errs, s.errorf("%q is not a workflow file name; use e.g. deskforge.yml", v))
		}
		cfg.BuilderWorkflow = v
	}
	if s, v := str("builder-ref"); s != nil {
		if v == "" || strings.ContainsAny(v, " \t~^:?*[\\") {
			errs = append(errs, s.errorf("%q is not a branch or tag name; use e.g. main", v))
		}
		cfg.BuilderRef = v
	}
	if s, v := str("runners"); v != "" {
		runners, err := parseRunners(v)
		if err != nil {
			errs = append(errs, s.errorf("%v", err))
		}
		cfg.Runners = runners
	}
	for _, d := range []struct {
		name, example string
		dst           *time.Duration
	}{
		{"max-build-duration", "6h or 90m", &cfg.MaxBuildDuration},
		{"reconcile-interval", "30s or 1m", &cfg.ReconcileInterval},
		{"stale-after", "60s or 2m", &cfg.StaleAfter},
		{"log-wait-timeout", "2m or 5m", &cfg.LogWaitTimeout},
		{"no-run-timeout", "10m or 30m", &cfg.NoRunTimeout},
	} {
		s, v := str(d.name)
		if s == nil {
			continue
		}
		parsed, err := time.ParseDuration(v)
		if err != nil || parsed <= 0 {
			errs = append(errs, s.errorf("%q is not a positive duration; use e.g. %s", v, d.example))
		}
		*d.dst = parsed
	}
	for _, c := range []struct {
		name string
		max  int // 0: no bound
		hint string
		dst  *int
	}{
		{"dispatches-per-minute", 0, "60 (GitHub allows about 80 writes a minute)", &cfg.DispatchesPerMinute},
		{"dispatches-per-hour", 0, "500 (GitHub allows 500 content-creating requests an hour)", &cfg.DispatchesPerHour},
		{"job-workers", maxJobWorkers, "10", &cfg.JobWorkers},
		{"step-polls-per-minute", 0, "300", &cfg.StepPollsPerMinute},
	} {
		s, v := str(c.name)
		if s == nil {
			continue
		}
		n, err := strconv.Atoi(v)
		switch {
		case err != nil || n <= 0:
			errs = append(errs, s.errorf("%q is not a positive integer; use e.g. %s", v, c.hint))
		case c.max > 0 && n > c.max:
			errs = append(errs, s.errorf("%q is more than %d; use e.g. %s", v, c.max, c.hint))
		}
		*c.dst = n
	}
	if s, v := str("step-poll-interval"); s != nil {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			errs = append(errs, s.errorf("%q is not a duration of at least 1s; use e.g. 8s", v))
		}
		cfg.StepPollInterval = d
	}
	if s, v := str("download-mode"); s != nil {
		if v != "redirect" && v != "proxy" {
			errs = append(errs, s.errorf("%q is not a download mode; use redirect or proxy", v))
		}
		cfg.DownloadMode = v
	}
	if s, v := str("webhooks-allow-private"); s != nil {
		allow, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, s.errorf("%q is not a boolean; use true or false", v))
		}
		cfg.WebhooksAllowPrivate = allow || (demo && !s.given)
	}
	errs = append(errs, cf.buildProduction(&cfg)...)
	return cfg, errors.Join(errs...)
}

// parseRunners reads "platform/arch=label,…" over a copy of the default
// runner table.
func parseRunners(v string) (templates.RunnerTable, error) {
	table := templates.RunnerTable{}
	for k, label := range templates.DefaultRunners {
		table[k] = label
	}
	for _, entry := range strings.Split(v, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		key, label, ok := strings.Cut(entry, "=")
		platform, arch, okKey := strings.Cut(strings.TrimSpace(key), "/")
		label = strings.TrimSpace(label)
		if !ok || !okKey || label == "" {
			return nil, fmt.Errorf("%q is not platform/arch=label; use e.g. mac/arm64=macos-26", entry)
		}
		if !slices.Contains(templates.Platforms, platform) || !slices.Contains(templates.Arches, arch) {
			return nil, fmt.Errorf("%q: platform must be one of %s and arch one of %s", entry,
				strings.Join(templates.Platforms, ", "), strings.Join(templates.Arches, ", "))
		}
		table[platform+"/"+arch] = label
	}
	return table, nil
}

// newLogger returns the slog logger cfg asks for, writing to w.
func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	format := cfg.LogFormat
	if format == "" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	var log *slog.Logger
	if format == "text" {
		log = slog.New(slog.NewTextHandler(w, opts))
	} else {
		log = slog.New(slog.NewJSONHandler(w, opts))
	}
	if cfg.Demo {
		// Demo mode: every line says plainly that GitHub is not real.
		log = log.With("github", "SIMULATED")
	}
	return log
}

// isTerminal reports whether w is a terminal (not a pipe, a file or
// /dev/null).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// parseFlags parses args; --help prints the usage on stdout (done, nil); a
// bad flag prints the error and the usage on stderr (done, errUsage).
// Flags may follow positional arguments (deskforge build get ID --json);
// fs.Args() holds the positional ones afterwards. A bool flag written with
// its value after a space (--resizable false) is refused: the flag package
// would read it as --resizable=true and a stray argument "false".
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (bool, error) {
	fs.SetOutput(io.Discard)
	var positional []string
	for {
		err := fs.Parse(args)
		switch {
		case errors.Is(err, flag.ErrHelp):
			fs.SetOutput(stdout)
			fs.Usage()
			return true, nil
		case err != nil:
			return true, usageError(fs, stderr, err.Error())
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		consumed := args[:len(args)-len(rest)]
		if len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		if name, ok := boolFlagBefore(fs, consumed); ok && (rest[0] == "true" || rest[0] == "false") {
			return true, usageError(fs, stderr, fmt.Sprintf("--%s is a switch: write --%s=%s (with =), not --%s %s", name, name, rest[0], name, rest[0]))
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Parsing "--" alone keeps the flags' values and sets fs.Args().
	_ = fs.Parse(append([]string{"--"}, positional...))
	return false, nil
}

// boolFlagBefore returns the bool flag that is the last of consumed, when it
// was given without "=value".
func boolFlagBefore(fs *flag.FlagSet, consumed []string) (string, bool) {
	if len(consumed) == 0 {
		return "", false
	}
	last := consumed[len(consumed)-1]
	name := strings.TrimLeft(last, "-")
	if name == last || strings.Contains(name, "=") {
		return "", false
	}
	f := fs.Lookup(name)
	if f == nil {
		return "", false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return name, ok && b.IsBoolFlag()
}

// usageError prints msg and the usage on stderr and returns errUsage.
func usageError(fs *flag.FlagSet, stderr io.Writer, msg string) error {
	fmt.Fprintf(stderr, "%s\n\n", msg)
	fs.SetOutput(stderr)
	fs.Usage()
	return errUsage
}

// usageFunc prints what a command does, its synopsis and its flags (with
// their environment variables).
func usageFunc(fs *flag.FlagSet, synopsis, description string) func() {
	placeholders := map[string]string{}
	for _, group := range allSettings() {
		for _, s := range group {
			placeholders[s.flag] = s.arg
		}
	}
	return func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: %s\n\n%s\n\nFlags (a flag overrides its environment variable):\n", synopsis, description)
		fs.VisitAll(func(f *flag.Flag) {
			arg, usage := flag.UnquoteUsage(f)
			if p, ok := placeholders[f.Name]; ok {
				arg = p
			}
			if _, isBool := f.Value.(interface{ IsBoolFlag() bool }); isBool {
				arg = ""
			}
			if arg != "" {
				arg = " " + arg
			}
			fmt.Fprintf(w, "  --%s%s\n    \t%s", f.Name, arg, usage)
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
				def := f.DefValue
				if strings.ContainsAny(def, " \t") {
					def = strconv.Quote(def)
				}
				fmt.Fprintf(w, " (default %s)", def)
			}
			fmt.Fprintln(w)
		})
	}
}

// Forge kinds (DESKFORGE_FORGE).
const (
	ForgeGitHub = "github"
	ForgeGitea  = "gitea"
)

// buildForgeKind reads DESKFORGE_FORGE and the Gitea settings: gitea needs
// the API URL and a token (Gitea has no GitHub Apps).
func (cf *configFlags) buildForgeKind(cfg *Config) []error {
	s, ok := cf.get("forge")
	if !ok {
		return nil
	}
	var errs []error
	kind := strings.ToLower(s.value)
	switch kind {
	case "", ForgeGitHub:
		kind = ForgeGitHub
	case ForgeGitea, "forgejo":
		kind = ForgeGitea
	default:
		errs = append(errs, s.errorf("%q is not a forge; use github or gitea (also for Forgejo)", s.value))
	}
	cfg.Forge = kind
	if u, ok := cf.get("gitea-username"); ok {
		cfg.GiteaUsername = u.value
	}
	if p, ok := cf.get("gitea-password"); ok {
		cfg.GiteaPassword = p.value
	}
	if kind != ForgeGitea || cfg.Demo {
		if cfg.GiteaUsername != "" && !cfg.Demo {
			u, _ := cf.get("gitea-username")
			errs = append(errs, u.errorf("is only used with DESKFORGE_FORGE=gitea"))
		}
		return errs
	}
	if cfg.GitHubAPIURL == "" {
		errs = append(errs, s.errorf("gitea needs the API root of the Gitea or Forgejo server: set DESKFORGE_FORGE_URL (or DESKFORGE_GITHUB_API_URL), e.g. https://gitea.example.com/api/v1/"))
	}
	if cfg.GitHubAppID != 0 || cfg.GitHubAppPrivateKeyFile != "" || cfg.GitHubInstallationID != 0 {
		errs = append(errs, s.errorf("gitea has no GitHub Apps: set DESKFORGE_GITHUB_TOKEN to a Gitea access token (scopes write:repository and read:user) instead of the DESKFORGE_GITHUB_APP_* settings"))
	}
	if (cfg.GiteaUsername == "") != (cfg.GiteaPassword == "") {
		errs = append(errs, s.errorf("set both DESKFORGE_GITEA_USERNAME and DESKFORGE_GITEA_PASSWORD, or neither (then DeskForge cannot cancel runs)"))
	}
	return errs
}
