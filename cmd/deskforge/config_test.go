package main

import (
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/server"
	"github.com/deskforge/deskforge/templates"
)

// loadServeConfig parses args and env as `deskforge serve` does.
func loadServeConfig(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cf := registerConfig(fs, func(k string) string { return env[k] }, groupListen, groupServe, groupDatabase, groupLog)
	demo := fs.Bool("demo", false, "")
	require.NoError(t, fs.Parse(args))
	return cf.load(*demo)
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := loadServeConfig(t, map[string]string{"DESKFORGE_GITHUB_TOKEN": "ghp_x"})
	require.NoError(t, err)
	require.Equal(t, Config{
		Listen:              ":8080",
		PublicURL:           "http://localhost:8080",
		DatabaseURL:         "sqlite://deskforge.db",
		GitHubToken:         "ghp_x",
		Forge:               ForgeGitHub,
		BuilderWorkflow:     "deskforge.yml",
		BuilderRef:          "main",
		Runners:             templates.DefaultRunners,
		MaxBuildDuration:    6 * time.Hour,
		ReconcileInterval:   30 * time.Second,
		StaleAfter:          time.Minute,
		LogWaitTimeout:      2 * time.Minute,
		NoRunTimeout:        10 * time.Minute,
		DispatchesPerMinute: 60,
		DispatchesPerHour:   500,
		JobWorkers:          10,
		StepPollInterval:    8 * time.Second,
		StepPollsPerMinute:  300,
		DownloadMode:        "redirect",
		LogLevel:            slog.LevelInfo,
		ReadRate:            server.Rate{PerSecond: 50, Burst: 200},
		WriteRate:           server.Rate{PerSecond: 1, Burst: 30},
		GitHubRunDetails:    true,
	}, cfg)
}

func TestConfigEnvironmentAndFlags(t *testing.T) {
	t.Parallel()
	keyFile := filepath.Join(t.TempDir(), "app.pem")
	require.NoError(t, os.WriteFile(keyFile, []byte("-----BEGIN RSA PRIVATE KEY-----\n"), 0o600))
	env := map[string]string{
		"DESKFORGE_LISTEN":                      "127.0.0.1:9000",
		"DESKFORGE_PUBLIC_URL":                  "https://deskforge.example.com/",
		"DESKFORGE_DATABASE_URL":                "postgres://u:p@db:5432/deskforge",
		"DESKFORGE_GITHUB_APP_ID":               "12345",
		"DESKFORGE_GITHUB_APP_PRIVATE_KEY_FILE": keyFile,
		"DESKFORGE_GITHUB_INSTALLATION_ID":      "678",
		"DESKFORGE_GITHUB_API_URL":              "https://ghes.example.com/api/v3/",
		"DESKFORGE_GITHUB_WEBHOOK_SECRET":       "s3cret",
		"DESKFORGE_BUILDER_REPO":                "acme/builder",
		"DESKFORGE_BUILDER_WORKFLOW":            "build.yaml",
		"DESKFORGE_BUILDER_REF":                 "release",
		"DESKFORGE_RUNNERS":                     "mac/arm64=macos-26, linux/x64=ubuntu-22.04",
		"DESKFORGE_MAX_BUILD_DURATION":          "90m",
		"DESKFORGE_RECONCILE_INTERVAL":          "45s",
		"DESKFORGE_STALE_AFTER":                 "3m",
		"DESKFORGE_LOG_WAIT_TIMEOUT":            "5m",
		"DESKFORGE_NO_RUN_TIMEOUT":              "20m",
		"DESKFORGE_DISPATCHES_PER_MINUTE":       "30",
		"DESKFORGE_DISPATCHES_PER_HOUR":         "400",
		"DESKFORGE_JOB_WORKERS":                 "12",
		"DESKFORGE_DOWNLOAD_MODE":               "proxy",
		"DESKFORGE_LOG_LEVEL":                   "debug",
		"DESKFORGE_LOG_FORMAT":                  "text",
		"DESKFORGE_RATE_LIMIT_READS":            "0.5/s:10",
		"DESKFORGE_RATE_LIMIT_WRITES":           "off",
		"DESKFORGE_CORS_ORIGINS":                "https://app.example.com/, http://localhost:3000",
		"DESKFORGE_GITHUB_RUN_DETAILS":          "false",
		"DESKFORGE_METRICS_LISTEN":              "127.0.0.1:9090",
	}
	cfg, err := loadServeConfig(t, env)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9000", cfg.Listen)
	require.Equal(t, "https://deskforge.example.com", cfg.PublicURL, "trailing slash trimmed")
	require.Equal(t, "postgres://u:p@db:5432/deskforge", cfg.DatabaseURL)
	require.Equal(t, int64(12345), cfg.GitHubAppID)
	require.Equal(t, int64(678), cfg.GitHubInstallationID)
	require.True(t, cfg.GitHubConfigured())
	require.Equal(t, "s3cret", cfg.GitHubWebhookSecret)
	require.Equal(t, "macos-26", cfg.Runners.Runner("mac", "arm64"))
	require.Equal(t, "ubuntu-22.04", cfg.Runners.Runner("linux", "x64"))
	require.Equal(t, "windows-2025", cfg.Runners.Runner("windows", "x64"), "other entries keep their default")
	require.Equal(t, "macos-15", templates.DefaultRunners.Runner("mac", "arm64"), "the default table is not modified")
	require.Equal(t, 90*time.Minute, cfg.MaxBuildDuration)
	require.Equal(t, 45*time.Second, cfg.ReconcileInterval)
	require.Equal(t, 3*time.Minute, cfg.StaleAfter)
	require.Equal(t, 5*time.Minute, cfg.LogWaitTimeout)
	require.Equal(t, 20*time.Minute, cfg.NoRunTimeout)
	require.Equal(t, 30, cfg.DispatchesPerMinute)
	require.Equal(t, 400, cfg.DispatchesPerHour)
	require.Equal(t, 12, cfg.JobWorkers)
	require.Equal(t, "proxy", cfg.DownloadMode)
	require.Equal(t, slog.LevelDebug, cfg.LogLevel)
	require.Equal(t, "text", cfg.LogFormat)
	require.Equal(t, server.Rate{PerSecond: 0.5, Burst: 10}, cfg.ReadRate)
	require.Equal(t, server.Rate{}, cfg.WriteRate, "off")
	require.Equal(t, &server.RateLimits{Read: server.Rate{PerSecond: 0.5, Burst: 10}}, cfg.rateLimits())
	require.Equal(t, []string{"https://app.example.com", "http://localhost:3000"}, cfg.CORSOrigins)
	require.False(t, cfg.GitHubRunDetails)
	require.Equal(t, "127.0.0.1:9090", cfg.MetricsListen)

	// Flags override the environment.
	cfg, err = loadServeConfig(t, env, "--listen", ":7000", "--download-mode", "redirect", "--builder-repo", "acme/other", "--log-wait-timeout", "90s")
	require.NoError(t, err)
	require.Equal(t, 90*time.Second, cfg.LogWaitTimeout)
	require.Equal(t, ":7000", cfg.Listen)
	require.Equal(t, "redirect", cfg.DownloadMode)
	require.Equal(t, "acme/other", cfg.BuilderRepo)
}

func TestConfigDemo(t *testing.T) {
	t.Parallel()
	cfg, err := loadServeConfig(t, nil, "--demo")
	require.NoError(t, err, "no GitHub settings needed")
	require.True(t, cfg.Demo)
	require.Equal(t, demoDatabaseURL, cfg.DatabaseURL)

	cfg, err = loadServeConfig(t, map[string]string{"DESKFORGE_DATABASE_URL": "sqlite://mine.db"}, "--demo")
	require.NoError(t, err)
	require.Equal(t, "sqlite://mine.db", cfg.DatabaseURL, "an explicit database wins")
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	token := map[string]string{"DESKFORGE_GITHUB_TOKEN": "ghp_x"}
	with := func(k, v string) map[string]string {
		env := map[string]string{"DESKFORGE_GITHUB_TOKEN": "ghp_x"}
		env[k] = v
		return env
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"NoGitHub", nil, nil, "GitHub is not configured"},
		{"PartialApp", map[string]string{"DESKFORGE_GITHUB_APP_ID": "1"}, nil, "set all of DESKFORGE_GITHUB_APP_ID"},
		{"AppIDNotNumber", with("DESKFORGE_GITHUB_APP_ID", "abc"), nil, "DESKFORGE_GITHUB_APP_ID: \"abc\" is not a positive number"},
		{"MissingKeyFile", map[string]string{"DESKFORGE_GITHUB_APP_ID": "1", "DESKFORGE_GITHUB_INSTALLATION_ID": "2", "DESKFORGE_GITHUB_APP_PRIVATE_KEY_FILE": "/nonexistent/key.pem"}, nil, "cannot read the private key file"},
		{"Listen", with("DESKFORGE_LISTEN", "8080"), nil, "--listen / DESKFORGE_LISTEN: \"8080\" is not host:port"},
		{"PublicURL", token, []string{"--public-url", "localhost:8080"}, "--public-url / DESKFORGE_PUBLIC_URL"},
		{"DatabaseURL", with("DESKFORGE_DATABASE_URL", "mysql://x"), nil, "must start with sqlite://"},
		{"APIURL", with("DESKFORGE_GITHUB_API_URL", "ghes.example.com"), nil, "https://HOST/api/v3/"},
		{"BuilderRepo", with("DESKFORGE_BUILDER_REPO", "builder"), nil, "is not owner/name"},
		{"BuilderWorkflow", with("DESKFORGE_BUILDER_WORKFLOW", "build"), nil, "is not a workflow file name"},
		{"BuilderRef", with("DESKFORGE_BUILDER_REF", "a b"), nil, "is not a branch or tag name"},
		{"RunnersSyntax", with("DESKFORGE_RUNNERS", "mac-arm64:macos"), nil, "is not platform/arch=label"},
		{"RunnersPlatform", with("DESKFORGE_RUNNERS", "ios/arm64=macos-26"), nil, "platform must be one of mac, windows, linux"},
		{"Duration", with("DESKFORGE_MAX_BUILD_DURATION", "6"), nil, "is not a positive duration"},
		{"ReconcileDuration", with("DESKFORGE_STALE_AFTER", "-1m"), nil, "--stale-after / DESKFORGE_STALE_AFTER: \"-1m\" is not a positive duration"},
		{"DispatchRate", with("DESKFORGE_DISPATCHES_PER_MINUTE", "-1"), nil, "is not a positive integer"},
		{"DispatchHourlyBudget", with("DESKFORGE_DISPATCHES_PER_HOUR", "many"), nil, "is not a positive integer"},
		{"JobWorkers", with("DESKFORGE_JOB_WORKERS", "0"), nil, "is not a positive integer"},
		{"TooManyJobWorkers", with("DESKFORGE_JOB_WORKERS", "5000"), nil, "is more than 1000"},
		{"DownloadMode", with("DESKFORGE_DOWNLOAD_MODE", "stream"), nil, "use redirect or proxy"},
		{"LogLevel", with("DESKFORGE_LOG_LEVEL", "loud"), nil, "use debug, info, warn or error"},
		{"LogFormat", with("DESKFORGE_LOG_FORMAT", "xml"), nil, "use json or text"},
		{"RateSyntax", with("DESKFORGE_RATE_LIMIT_READS", "50"), nil, "--rate-limit-reads / DESKFORGE_RATE_LIMIT_READS: \"50\" is not PER_SECOND/s:BURST"},
		{"RateBurst", with("DESKFORGE_RATE_LIMIT_WRITES", "1/s:0"), nil, "is not PER_SECOND/s:BURST"},
		{"CORSOrigin", with("DESKFORGE_CORS_ORIGINS", "app.example.com"), nil, "is not an origin"},
		{"CORSOriginPath", with("DESKFORGE_CORS_ORIGINS", "https://app.example.com/x"), nil, "is not an origin"},
		{"RunDetails", with("DESKFORGE_GITHUB_RUN_DETAILS", "maybe"), nil, "is not a boolean"},
		{"MetricsListen", with("DESKFORGE_METRICS_LISTEN", "9090"), nil, "--metrics-listen / DESKFORGE_METRICS_LISTEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadServeConfig(t, tt.env, tt.args...)
			require.ErrorContains(t, err, tt.want)
		})
	}

	// Every error is reported at once.
	_, err := loadServeConfig(t, map[string]string{"DESKFORGE_LISTEN": "x", "DESKFORGE_DOWNLOAD_MODE": "y"})
	require.Equal(t, 3, strings.Count(err.Error(), "\n")+1, "%v", err)
}

func TestHelpNamesEveryEnvironmentVariable(t *testing.T) {
	t.Parallel()
	var out, errOut strings.Builder
	require.NoError(t, runServe(t.Context(), []string{"--help"}, &out, &errOut))
	for g, group := range allSettings() {
		if g == groupClient {
			continue
		}
		for _, s := range group {
			require.Contains(t, out.String(), s.env)
			require.Contains(t, out.String(), "--"+s.flag)
		}
	}
	require.Contains(t, out.String(), "--demo")
	require.Contains(t, out.String(), "(default 60)", "defaults are shown as they are typed")
	require.NotContains(t, out.String(), `(default "`)
	require.Empty(t, errOut.String())

	for _, cmd := range [][]string{{"migrate", "--help"}, {"project", "create", "--help"}, {"project", "list", "--help"},
		{"project", "show", "--help"}, {"apikey", "create", "--help"}, {"apikey", "list", "--help"}, {"apikey", "revoke", "--help"}} {
		var out strings.Builder
		require.NoError(t, commands()[cmd[0]].run(t.Context(), cmd[1:], &out, io.Discard), cmd)
		require.Contains(t, out.String(), "DESKFORGE_DATABASE_URL", cmd)
		require.Contains(t, out.String(), "Usage: deskforge "+cmd[0], cmd)
	}
	for _, sub := range []string{"trigger", "list", "get", "logs", "download", "cancel", "retry"} {
		var out strings.Builder
		require.NoError(t, runBuild(t.Context(), []string{sub, "--help"}, &out, io.Discard), sub)
		require.Contains(t, out.String(), "Usage: deskforge build "+sub)
		require.Contains(t, out.String(), "DESKFORGE_URL")
		require.Contains(t, out.String(), "DESKFORGE_API_KEY")
		require.Contains(t, out.String(), "--json")
	}
	var verOut strings.Builder
	require.NoError(t, runVersion(t.Context(), []string{"--help"}, &verOut, io.Discard))
	require.Contains(t, verOut.String(), "DESKFORGE_LISTEN")
}

func TestConfigRunDetailsReachTheGitHubClient(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		env         string
		wantDisable bool
	}{{"", false}, {"true", false}, {"false", true}} {
		env := map[string]string{"DESKFORGE_GITHUB_TOKEN": "ghp_x", "DESKFORGE_GITHUB_RUN_DETAILS": tt.env}
		cfg, err := loadServeConfig(t, env)
		require.NoError(t, err)
		opts, err := forgeOptions(cfg, nil)
		require.NoError(t, err)
		require.Equal(t, tt.wantDisable, opts.DisableRunDetails, "DESKFORGE_GITHUB_RUN_DETAILS=%q", tt.env)
	}
}

func TestConfigForgeKind(t *testing.T) {
	t.Parallel()
	api := "http://127.0.0.1:3000/api/v1/"
	cfg, err := loadServeConfig(t, map[string]string{"DESKFORGE_GITHUB_TOKEN": "t", "DESKFORGE_FORGE": "gitea",
		"DESKFORGE_FORGE_URL": api, "DESKFORGE_GITEA_USERNAME": "ops", "DESKFORGE_GITEA_PASSWORD": "pw"})
	require.NoError(t, err)
	require.Equal(t, ForgeGitea, cfg.Forge)
	require.Equal(t, api, cfg.GitHubAPIURL, "DESKFORGE_FORGE_URL is DESKFORGE_GITHUB_API_URL's alias")
	require.Equal(t, "ops", cfg.GiteaUsername)
	require.Equal(t, "pw", cfg.GiteaPassword)

	cfg, err = loadServeConfig(t, map[string]string{"DESKFORGE_GITHUB_TOKEN": "t", "DESKFORGE_FORGE": "Forgejo", "DESKFORGE_GITHUB_API_URL": api})
	require.NoError(t, err)
	require.Equal(t, ForgeGitea, cfg.Forge, "Forgejo speaks Gitea's API")

	for _, tt := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"unknown kind", map[string]string{"DESKFORGE_FORGE": "gitlab"}, `"gitlab" is not a forge; use github or gitea`},
		{"gitea without url", map[string]string{"DESKFORGE_FORGE": "gitea"}, "gitea needs the API root"},
		{"two different urls", map[string]string{"DESKFORGE_FORGE": "gitea", "DESKFORGE_FORGE_URL": api, "DESKFORGE_GITHUB_API_URL": "http://x/api/v1/"}, "set one of the two"},
		{"gitea app", map[string]string{"DESKFORGE_FORGE": "gitea", "DESKFORGE_FORGE_URL": api, "DESKFORGE_GITHUB_APP_ID": "1"}, "gitea has no GitHub Apps"},
		{"username without password", map[string]string{"DESKFORGE_FORGE": "gitea", "DESKFORGE_FORGE_URL": api, "DESKFORGE_GITEA_USERNAME": "ops"}, "set both DESKFORGE_GITEA_USERNAME and DESKFORGE_GITEA_PASSWORD"},
		{"username on github", map[string]string{"DESKFORGE_GITEA_USERNAME": "ops"}, "only used with DESKFORGE_FORGE=gitea"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["DESKFORGE_GITHUB_TOKEN"] = "t"
			_, err := loadServeConfig(t, tt.env)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestWebhookParserFollowsTheForge(t *testing.T) {
	t.Parallel()
	// A Gitea job payload numbers its steps from 0; its parser renumbers.
	payload := []byte(`{"action":"in_progress","repository":{"full_name":"acme/builder"},"workflow_job":{"id":4,"run_id":4,"status":"in_progress",
		"steps":[{"name":"Show inputs","number":0,"status":"completed"},{"name":"Build installer","number":1,"status":"in_progress"}]}}`)
	ev, err := webhookParser(Config{Forge: ForgeGitea})("workflow_job", payload)
	require.NoError(t, err)
	require.Equal(t, []int{1, 2}, []int{ev.Job.Steps[0].Number, ev.Job.Steps[1].Number})
	ev, err = webhookParser(Config{Forge: ForgeGitHub})("workflow_job", payload)
	require.NoError(t, err)
	require.Equal(t, 0, ev.Job.Steps[0].Number, "GitHub's parser is unchanged")
}
