package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/templates"
	"github.com/deskforge/deskforge/workflows"
	"github.com/deskforge/deskforge/workflows/ghsim"
	"github.com/deskforge/deskforge/workflows/github"
)

// Demo mode runs DeskForge against an in-process GitHub simulator: nothing
// reaches github.com, and every log line says so.
const (
	demoDatabaseURL = "sqlite://deskforge-demo.db"
	demoBuilderRepo = "deskforge-demo/builder"
	demoProjectName = "DeskForge Demo"
	demoKeyPrefix   = "demo admin"
	demoToken       = "ghs_simulated_demo_token" //nolint:gosec // G101: the in-process simulator's token, valid nowhere else
	// demoReleaseVersion is the version the banner's release example uses.
	demoReleaseVersion = "1.1.0"
)

// demoEnv is the simulated GitHub that `serve --demo` drives.
type demoEnv struct {
	sim    *ghsim.Sim
	srv    *http.Server
	secret string
	cancel context.CancelFunc
	done   chan struct{}
	log    *slog.Logger
}

// startDemoSim starts the GitHub simulator on a loopback port, with the builder
// repository holding the embedded templates, and its runner advancing runs in
// real time (about 20 s per build, unless timing says otherwise). faults is
// DESKFORGE_SIM_FAULTS.
func startDemoSim(ctx context.Context, faults string, timing ghsim.Timing, log *slog.Logger) (*demoEnv, error) {
	f, err := ghsim.ParseFaults(faults)
	if err != nil {
		return nil, fmt.Errorf("DESKFORGE_SIM_FAULTS: %w", err)
	}
	// Run ids from the clock: the demo database keeps the builds of earlier
	// demo runs, whose run ids this simulator must never hand out again.
	sim := ghsim.New(ghsim.Options{Faults: f, Timing: timing, Tokens: []string{demoToken}, Logger: log, IDsFromClock: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: listen for the GitHub simulator: %w", err)
	}
	sim.SetBaseURL("http://" + ln.Addr().String())
	if err := sim.AddRepo(demoBuilderRepo, ghsim.RepoOptions{}); err != nil {
		ln.Close()
		return nil, fmt.Errorf("demo: %w", err)
	}
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		ln.Close()
		return nil, fmt.Errorf("demo: webhook secret: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d := &demoEnv{
		sim:    sim,
		srv:    &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second},
		secret: hex.EncodeToString(secret),
		cancel: cancel,
		done:   make(chan struct{}),
		log:    log,
	}
	go func() {
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("GitHub simulator stopped", "err", err)
		}
	}()
	go func() {
		defer close(d.done)
		_ = sim.Run(runCtx) // returns the context's error when the demo stops
	}()
	log.Warn("demo mode: GitHub is SIMULATED in-process; no request reaches github.com", "simulator", sim.BaseURL(), "faults", f.String())
	return d, nil
}

// ForgeOptions are the options of the go-github client pointed at the
// simulator.
func (d *demoEnv) ForgeOptions() github.Options {
	return github.Options{BaseURL: d.sim.BaseURL() + "/", Token: demoToken}
}

// ForgeHost names the simulated GitHub in the builds it runs (their forge
// host). A demo restarted on the same port of the same machine (the
// previous one is gone: the port was its) is the same server, so it takes
// its predecessor's builds over and finds their runs gone; demos side by
// side on one database (other ports, or port 0) are different servers,
// each following its own builds.
func (d *demoEnv) ForgeHost(listen string) string {
	_, port, err := net.SplitHostPort(listen)
	if err != nil || port == "" || port == "0" {
		return strings.TrimPrefix(d.sim.BaseURL(), "http://")
	}
	host, _ := os.Hostname()
	return "ghsim." + strings.ToLower(host) + ":" + port
}

// WebhookSecret is the secret the simulator signs its webhooks with.
func (d *demoEnv) WebhookSecret() string { return d.secret }

// BuilderRepo is the simulated builder repository.
func (d *demoEnv) BuilderRepo() string { return demoBuilderRepo }

// Ready runs once the DeskForge server listens at serverURL: it points the
// simulator's webhooks at it, makes sure the demo project exists, creates a
// fresh admin key (revoking the keys earlier starts of this demo printed,
// whose plaintext is gone, but not other demos' keys: rotateDemoKey) and
// prints the banner with ready-to-paste curl commands.
func (d *demoEnv) Ready(ctx context.Context, store *models.Store, serverURL string, out io.Writer) error {
	d.sim.SetWebhook(serverURL+"/webhooks/github", d.secret)
	project, err := demoProject(ctx, store)
	if err != nil {
		return err
	}
	key, err := rotateDemoKey(ctx, store, demoKeyName(serverURL))
	if err != nil {
		return err
	}
	downloads := map[string]string{}
	for _, name := range []string{workflows.TauriManifestAsset, workflows.ChecksumsAsset} {
		downloads[name] = d.sim.ReleaseDownloadURL(demoBuilderRepo, templates.ReleaseTag(demoReleaseVersion), name)
	}
	fmt.Fprint(out, demoBanner(serverURL, d.sim.BaseURL(), project.ID, key, downloads))
	return nil
}

// demoKeyName names the admin key of the demo serving at serverURL on this
// host. Two demos sharing a database (PostgreSQL) run on different hosts or
// addresses, so their keys have different names.
func demoKeyName(serverURL string) string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown host"
	}
	return fmt.Sprintf("%s (%s, %s)", demoKeyPrefix, host, serverURL)
}

// rotateDemoKey creates a fresh admin key named name and revokes the
// earlier keys of that name: those a previous start of this same demo
// printed, whose plaintext is gone. Keys of other demos on the same
// database (other names) are left alone.
func rotateDemoKey(ctx context.Context, store *models.Store, name string) (string, error) {
	keys, err := store.ListAPIKeys(ctx, "")
	if err != nil {
		return "", fmt.Errorf("demo: list keys: %w", err)
	}
	for _, k := range keys {
		if k.Name == name && k.RevokedAt == nil {
			if _, err := store.RevokeAPIKey(ctx, k.ID); err != nil {
				return "", fmt.Errorf("demo: revoke this demo's previous key: %w", err)
			}
		}
	}
	_, key, err := store.CreateAPIKey(ctx, models.NewAPIKeyParams{Name: name, Role: models.RoleAdmin})
	if err != nil {
		return "", fmt.Errorf("demo: create admin key: %w", err)
	}
	return key, nil
}

// Close stops the simulator.
func (d *demoEnv) Close() {
	d.cancel()
	<-d.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.srv.Shutdown(ctx); err != nil {
		d.log.Warn("GitHub simulator did not stop in time", "err", err)
	}
}

// demoProject returns the demo web-app project (with features.autoUpdate,
// so that its releases carry latest.json), creating it on first start.
func demoProject(ctx context.Context, store *models.Store) (models.Project, error) {
	projects, _, err := store.ListProjects(ctx, models.ProjectFilter{Limit: 200})
	if err != nil {
		return models.Project{}, fmt.Errorf("demo: list projects: %w", err)
	}
	for _, p := range projects {
		if p.Name != demoProjectName {
			continue
		}
		if p.FeatureAutoUpdate {
			return p, nil
		}
		// A demo database from before releases: its project gets the
		// update manifests the banner's release shows.
		p, err := store.UpdateProject(ctx, p.ID, func(p *models.Project) error {
			p.FeatureAutoUpdate = true
			return nil
		})
		if err != nil {
			return models.Project{}, fmt.Errorf("demo: enable autoUpdate on the demo project: %w", err)
		}
		return p, nil
	}
	p := models.Project{
		Name:      demoProjectName,
		URL:       "https://example.com",
		Author:    "DeskForge",
		Version:   "1.0.0",
		AppID:     "com.example.deskforgedemo",
		Platforms: "mac,windows,linux",
	}
	models.ApplyProjectDefaults(&p)
	p.WindowResizable = true
	p.FeatureTray = true
	p.FeatureAutoUpdate = true
	if err := store.CreateProject(ctx, &p); err != nil {
		return models.Project{}, fmt.Errorf("demo: create project: %w", err)
	}
	return p, nil
}

// demoBanner is what `serve --demo` prints once it listens. downloads maps
// "latest.json" and "SHA256SUMS" to where the simulated GitHub serves them
// for the banner's release.
func demoBanner(serverURL, simURL, projectID, key string, downloads map[string]string) string {
	return fmt.Sprintf(`
================================================================================
 DeskForge DEMO MODE: GitHub is SIMULATED (in-process simulator at %[2]s).
 Nothing is sent to github.com; builds take about 20 s and produce placeholder
 installers.

 Admin API key (shown once; a new one is printed at every demo start):
   %[4]s

 Dashboard (signs this browser tab in with the key):
   %[1]s/#key=%[4]s

 Try it:
   export DESKFORGE_KEY=%[4]s
   curl -s -X POST %[1]s/projects/%[3]s/builds \
     -H "Authorization: Bearer $DESKFORGE_KEY" -H "Content-Type: application/json" \
     -d '{"platform": "mac", "arch": "arm64", "version": "1.0.0"}'
   curl -s %[1]s/projects/%[3]s/builds -H "Authorization: Bearer $DESKFORGE_KEY"
   curl -s %[1]s/builds/BUILD_ID -H "Authorization: Bearer $DESKFORGE_KEY"
   curl -s %[1]s/builds/BUILD_ID/logs -H "Authorization: Bearer $DESKFORGE_KEY"
   curl -s -L -o app.dmg %[1]s/builds/BUILD_ID/download -H "Authorization: Bearer $DESKFORGE_KEY"

 Or with the command-line client (go build -o deskforge ./cmd/deskforge), live:
   export DESKFORGE_URL=%[1]s DESKFORGE_API_KEY=%[4]s
   deskforge build trigger --platform mac --arch arm64 --version 1.0.0 --wait

 A version with a "-fail" pre-release (e.g. 1.0.0-fail) shows a failing build.

 Release a version to all six targets (mac, windows, linux on x64 and arm64):
 six builds, then one GitHub release published with SHA256SUMS and the Tauri
 updater's latest.json once every target succeeded:
   curl -s -X POST %[1]s/projects/%[3]s/releases \
     -H "Authorization: Bearer $DESKFORGE_KEY" -H "Content-Type: application/json" \
     -d '{"version": "1.1.0", "notes": "First release"}'
   curl -s %[1]s/releases/RELEASE_ID -H "Authorization: Bearer $DESKFORGE_KEY"
   deskforge release create --version 1.1.0 --notes "First release" --wait
 Once it is published, fetch its files from the simulated GitHub, and ask the
 update endpoint what a Tauri app on 1.0.0 would:
   curl -sL %[5]s
   curl -sL %[6]s
   curl -s %[1]s/updates/%[3]s/darwin/aarch64/1.0.0

 Outbound webhooks (private addresses are allowed in the demo): start a local
 receiver on port 9000 (any HTTP server answering 2xx to POST; verify with a
 Standard Webhooks library), subscribe it, trigger a build, and list the signed
 deliveries (build.queued, build.started, build.succeeded):
   curl -s -X POST %[1]s/webhooks -H "Authorization: Bearer $DESKFORGE_KEY" \
     -H "Content-Type: application/json" \
     -d '{"url": "http://127.0.0.1:9000/hook", "events": ["build.*"]}'
   curl -s %[1]s/webhooks/WEBHOOK_ID/deliveries -H "Authorization: Bearer $DESKFORGE_KEY"
 The answer to the first call holds the signing secret (whsec_…), shown once.
================================================================================
`, serverURL, simURL, projectID, key, downloads["latest.json"], downloads["SHA256SUMS"])
}
