package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/deskforge/deskforge/hooks"
	"github.com/deskforge/deskforge/metrics"
	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/server"
	"github.com/deskforge/deskforge/workflows"
)

// metricsEnv is the Prometheus endpoint of `serve` on
// DESKFORGE_METRICS_LISTEN; its zero value (metrics off) observes nothing.
type metricsEnv struct {
	m          *metrics.Metrics
	server     *http.Server
	addr       net.Addr
	credential string
}

// startMetrics serves /metrics on cfg.MetricsListen; metrics are off when
// it is empty.
func startMetrics(ctx context.Context, cfg Config, db *models.DB, log *slog.Logger) (*metricsEnv, error) {
	if cfg.MetricsListen == "" {
		return &metricsEnv{}, nil
	}
	m := metrics.New(db, log)
	ln, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (DESKFORGE_METRICS_LISTEN): %w", cfg.MetricsListen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	log.InfoContext(ctx, "Prometheus metrics are served", "listen", ln.Addr().String(), "path", "/metrics")
	return &metricsEnv{m: m, server: srv, addr: ln.Addr(), credential: credentialLabel(cfg)}, nil
}

// Close stops the metrics endpoint.
func (e *metricsEnv) Close() {
	if e.server != nil {
		e.server.Close()
	}
}

// credentialLabel names the GitHub credential of cfg for the rate-limit
// metric: its App installation, or "token" (a personal access token, or
// the demo's simulator).
func credentialLabel(cfg Config) string {
	if cfg.GitHubToken == "" && cfg.GitHubAppID != 0 {
		return fmt.Sprintf("app-%d-installation-%d", cfg.GitHubAppID, cfg.GitHubInstallationID)
	}
	return "token"
}

func (e *metricsEnv) engine() workflows.Observer {
	if e.m == nil {
		return nil
	}
	return e.m
}

func (e *metricsEnv) requests() server.RequestObserver {
	if e.m == nil {
		return nil
	}
	return e.m
}

// transport wraps a GitHub client's transport with request counting; nil
// when metrics are off.
func (e *metricsEnv) transport() func(http.RoundTripper) http.RoundTripper {
	if e.m == nil {
		return nil
	}
	return e.m.Transport(e.credential)
}

func (e *metricsEnv) webhooks() server.WebhookObserver {
	if e.m == nil {
		return nil
	}
	return e.m
}

func (e *metricsEnv) deliveries() hooks.DeliveryObserver {
	if e.m == nil {
		return nil
	}
	return e.m
}
