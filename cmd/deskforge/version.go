package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"time"
)

// version is set at build time (-ldflags "-X main.version=1.2.3"); when
// empty, the module version or VCS revision from the build info is shown.
var version = ""

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	cf := registerConfig(fs, os.Getenv, groupListen)
	healthcheck := fs.Bool("healthcheck", false, "instead of printing the version, check that the server listening on --listen answers GET /healthz; exit 1 when it does not (the container image's HEALTHCHECK)")
	fs.Usage = usageFunc(fs, "deskforge version [--healthcheck]", "Prints DeskForge's version, or with --healthcheck checks a running server's health.")
	if done, err := parseFlags(fs, args, stdout, stderr); done {
		return err
	}
	if err := noArgs(fs, stderr); err != nil {
		return err
	}
	if !*healthcheck {
		fmt.Fprintf(stdout, "deskforge %s (%s %s/%s)\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	}
	cfg, err := cf.load(false)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	return checkHealth(ctx, cfg.Listen, stdout)
}

// buildVersion is the version this binary was built as.
func buildVersion() string {
	info, _ := debug.ReadBuildInfo()
	return versionOf(version, info)
}

// versionOf is the version from the -X main.version link flag, else from
// the build information: the module version (a release, or the pseudo-
// version `go build` derives from the commit), else the VCS commit, its time
// and whether the tree had changes. Without any of these it says how to get
// one.
func versionOf(ldflag string, info *debug.BuildInfo) string {
	if ldflag != "" {
		return ldflag
	}
	if info == nil {
		return "devel (no build information)"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var revision, at, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if revision == "" {
		return `devel (built without version information: build from a git checkout, or with -ldflags "-X main.version=1.2.3")`
	}
	v := "devel " + revision[:min(12, len(revision))]
	if at != "" {
		v += " " + at
	}
	if modified == "true" {
		v += " (modified)"
	}
	return v
}

// checkHealth asks the server listening on listen (":8080") for /healthz
// over loopback.
func checkHealth(ctx context.Context, listen string, stdout io.Writer) error {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("healthcheck: listen address %q: %w", listen, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/healthz"
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d", url, resp.StatusCode)
	}
	fmt.Fprintf(stdout, "healthy: %s\n", url)
	return nil
}
