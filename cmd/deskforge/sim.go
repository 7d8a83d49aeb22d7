package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deskforge/deskforge/templates"
	"github.com/deskforge/deskforge/workflows/ghsim"
)

// simStatsPath is the standalone simulator's statistics endpoint.
const simStatsPath = "/_sim/stats"

// simBuilderRepo is the builder repository the standalone simulator holds.
const simBuilderRepo = "deskforge-sim/builder"

// webhookURLs is a repeatable --webhook-url flag.
type webhookURLs []*url.URL

func (w *webhookURLs) String() string {
	s := make([]string, len(*w))
	for i, u := range *w {
		s[i] = u.String()
	}
	return strings.Join(s, ",")
}

func (w *webhookURLs) Set(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL; use e.g. http://127.0.0.1:8080/webhooks/github", v)
	}
	*w = append(*w, u)
	return nil
}

// runSim implements `deskforge sim`: the GitHub simulator of the demo,
// served on its own port for `deskforge serve` processes in GitHub mode.
func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8090", "`ADDR`ess to serve the simulated GitHub REST API on")
	var hooks webhookURLs
	fs.Var(&hooks, "webhook-url", "`URL` receiving every webhook delivery (a serve's .../webhooks/github); repeat for several receivers")
	timing := fs.String("timing", "demo", "pace of simulated runs: `demo` (about 20 s a build) or fast (under a second)")
	faults := fs.String("faults", os.Getenv("DESKFORGE_SIM_FAULTS"), "injected `FAULTS`, e.g. drop=0.3,duplicate=0.2,api5xx=0.1,seed=7 (env DESKFORGE_SIM_FAULTS)")
	builderRepo := fs.String("builder-repo", simBuilderRepo, "the builder `REPO`sitory (owner/name) the simulator holds, with the embedded workflow templates")
	fs.Usage = usageFunc(fs, "deskforge sim --listen ADDR [--webhook-url URL]… [flags]",
		"Serves the GitHub simulator of `serve --demo` on its own port, so that several `deskforge serve` processes\n"+
			"in GitHub mode can share one fake GitHub. It prints the environment a serve needs on stdout (eval it),\n"+
			"delivers its webhooks to every --webhook-url, and answers GET "+simStatsPath+" with its request counts per\n"+
			"GitHub route and its dispatches per DeskForge build id. Its state lives in memory and survives nothing:\n"+
			"a restart forgets every run, release and delivery (builds whose runs it forgot fail as runs gone).")
	if done, err := parseFlags(fs, args, stdout, stderr); done {
		return err
	}
	if err := noArgs(fs, stderr); err != nil {
		return err
	}
	var pace ghsim.Timing
	switch *timing {
	case "demo":
		pace = ghsim.DemoTiming()
	case "fast":
		pace = ghsim.FastTiming()
	default:
		fmt.Fprintf(stderr, "deskforge sim: --timing must be demo or fast, not %q\n", *timing)
		return errUsage
	}
	if !repoRe.MatchString(*builderRepo) {
		fmt.Fprintf(stderr, "deskforge sim: --builder-repo %q is not owner/name\n", *builderRepo)
		return errUsage
	}
	f, err := ghsim.ParseFaults(*faults)
	if err != nil {
		return fmt.Errorf("DESKFORGE_SIM_FAULTS: %w", err)
	}
	faultText := f.String()
	if faultText == "" {
		faultText = "none"
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	token, secret, err := simSecrets()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	defer ln.Close()
	base := localURL(ln.Addr())

	fan := &fanOut{targets: hooks, next: http.DefaultTransport}
	client := &http.Client{Timeout: 10 * time.Second, Transport: fan}
	sim := ghsim.New(ghsim.Options{
		PublicURL: base, Timing: pace, Faults: f, Tokens: []string{token}, Logger: log,
		IDsFromClock: true, HTTPClient: client,
	})
	if err := sim.AddRepo(*builderRepo, ghsim.RepoOptions{}); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if len(hooks) > 0 {
		// The simulator delivers to the first URL; fanOut sends each
		// delivery to every URL.
		sim.SetWebhook(hooks[0].String(), secret)
	}

	mux := http.NewServeMux()
	mux.Handle("/", sim.Handler())
	mux.HandleFunc("GET "+simStatsPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		stats := simStatsOf(sim, *builderRepo)
		stats.Webhooks = fan.stats()
		_ = json.NewEncoder(w).Encode(stats)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { _ = sim.Run(runCtx) })
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	fmt.Fprintf(stdout, "# deskforge sim: a SIMULATED GitHub at %s (faults: %s). Its state lives in memory and\n"+
		"# survives nothing: when this process stops, every run, release and delivery is gone.\n", base, faultText)
	fmt.Fprintf(stdout, "export DESKFORGE_GITHUB_API_URL=%s/\n", base)
	fmt.Fprintf(stdout, "export DESKFORGE_GITHUB_TOKEN=%s\n", token)
	fmt.Fprintf(stdout, "export DESKFORGE_GITHUB_WEBHOOK_SECRET=%s\n", secret)
	fmt.Fprintf(stdout, "export DESKFORGE_BUILDER_REPO=%s\n", *builderRepo)
	log.Warn("GitHub is SIMULATED; its state survives nothing", "url", base, "webhooks", hooks.String(), "faults", faultText)

	select {
	case err = <-serveErr:
		cancel()
		wg.Wait()
		return fmt.Errorf("sim: serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer stop()
	err = srv.Shutdown(shutdownCtx)
	cancel()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("sim: shutdown: %w", err)
	}
	return nil
}

// simSecrets returns a fresh token and webhook secret.
func simSecrets() (token, secret string, err error) {
	b := make([]byte, 40)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("sim: random secrets: %w", err)
	}
	return "ghs_sim_" + hex.EncodeToString(b[:20]), hex.EncodeToString(b[20:]), nil
}

// simStats is the answer of GET /_sim/stats.
type simStats struct {
	// Requests counts the REST requests by "<METHOD> <route>", the route
	// being GitHub's path pattern ("unmatched" for unknown paths).
	Requests map[string]int `json:"requests"`
	// Dispatches counts the workflow runs created per DeskForge build id
	// (from the run's title, else its build_id input). Re-runs of one run
	// do not count; more than one means the build was dispatched twice.
	Dispatches map[string]int `json:"dispatches"`
	// Webhooks counts the deliveries sent to the --webhook-url receivers
	// (an extension; deliveries the drop fault withholds are not sent, and
	// pings are not counted).
	Webhooks webhookStats `json:"webhooks"`
}

// webhookStats counts the simulator's webhook deliveries.
type webhookStats struct {
	// Sent is the deliveries sent (each to every receiver).
	Sent int64 `json:"sent"`
	// Partial is the deliveries some receiver failed and another took.
	Partial int64 `json:"partial"`
	// Lost is the deliveries no receiver took (2xx).
	Lost int64 `json:"lost"`
}

func simStatsOf(sim *ghsim.Sim, repo string) simStats {
	out := simStats{Requests: map[string]int{}, Dispatches: map[string]int{}}
	for route, c := range sim.Counters().Endpoints {
		out.Requests[route] = c.Requests
	}
	for _, rn := range sim.Runs(repo) {
		id := templates.RunNameBuildID(rn.DisplayTitle)
		if id == "" {
			id = rn.Inputs["build_id"]
		}
		if id != "" {
			out.Dispatches[id]++
		}
	}
	return out
}

// fanOut is the simulator's webhook transport: it sends each delivery to
// every target URL (as GitHub does to each hook of a repository), and
// answers the simulator 2xx only when every target did.
type fanOut struct {
	targets []*url.URL
	next    http.RoundTripper

	sent, partial, lost atomic.Int64
}

func (f *fanOut) stats() webhookStats {
	return webhookStats{Sent: f.sent.Load(), Partial: f.partial.Load(), Lost: f.lost.Load()}
}

func (f *fanOut) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("fan-out: read delivery: %w", err)
	}
	type result struct {
		target string
		status int
		err    error
	}
	results := make([]result, len(f.targets))
	var wg sync.WaitGroup
	for i, target := range f.targets {
		wg.Go(func() {
			out := req.Clone(req.Context())
			out.URL, out.Host = target, target.Host
			out.Body = io.NopCloser(bytes.NewReader(body))
			out.ContentLength = int64(len(body))
			resp, err := f.next.RoundTrip(out)
			results[i] = result{target: target.String(), err: err}
			if err == nil {
				results[i].status = resp.StatusCode
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	status, failures := http.StatusOK, []string{}
	for _, r := range results {
		switch {
		case r.err != nil:
			status = http.StatusBadGateway
			failures = append(failures, r.target+": "+r.err.Error())
		case r.status < 200 || r.status > 299:
			status = http.StatusBadGateway
			failures = append(failures, fmt.Sprintf("%s: %d", r.target, r.status))
		}
	}
	if len(f.targets) == 0 {
		return nil, errors.New("fan-out: no webhook URL")
	}
	if req.Header.Get("X-GitHub-Event") == "ping" {
		// Sent when the simulator starts, often before any receiver
		// listens: not counted.
		return fanOutAnswer(req, status, failures, len(f.targets)), nil
	}
	f.sent.Add(1)
	switch len(failures) {
	case 0:
	case len(f.targets):
		f.lost.Add(1)
	default:
		f.partial.Add(1)
	}
	return fanOutAnswer(req, status, failures, len(f.targets)), nil
}

// fanOutAnswer is the answer fanOut gives the simulator.
func fanOutAnswer(req *http.Request, status int, failures []string, targets int) *http.Response {
	msg := "delivered to " + fmt.Sprint(targets) + " receivers"
	if len(failures) > 0 {
		msg = "failed: " + strings.Join(failures, "; ")
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"text/plain"}}, Body: io.NopCloser(strings.NewReader(msg)),
		ContentLength: int64(len(msg)), Request: req,
	}
}
