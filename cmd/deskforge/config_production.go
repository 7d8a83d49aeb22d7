package main

import (
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/deskforge/deskforge/server"
)

// buildProduction reads the settings of running in production: rate
// limits, CORS origins, GitHub run details and the metrics address.
func (cf *configFlags) buildProduction(cfg *Config) []error {
	var errs []error
	for _, r := range []struct {
		name string
		dst  *server.Rate
	}{{"rate-limit-reads", &cfg.ReadRate}, {"rate-limit-writes", &cfg.WriteRate}} {
		s, ok := cf.get(r.name)
		if !ok {
			continue
		}
		rate, err := parseRate(s.value)
		if err != nil {
			errs = append(errs, s.errorf("%q is not PER_SECOND/s:BURST; use e.g. 50/s:200, 0.5/s:10 or off", s.value))
		}
		*r.dst = rate
	}
	if s, ok := cf.get("cors-origins"); ok && s.value != "" {
		for _, o := range strings.Split(s.value, ",") {
			o = strings.TrimSuffix(strings.TrimSpace(o), "/")
			if o == "" {
				continue
			}
			if o != "*" {
				u, err := url.Parse(o)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
					errs = append(errs, s.errorf("%q is not an origin; use scheme://host[:port], e.g. https://app.example.com, or *", o))
					continue
				}
			}
			cfg.CORSOrigins = append(cfg.CORSOrigins, o)
		}
	}
	if s, ok := cf.get("github-run-details"); ok {
		v, err := strconv.ParseBool(s.value)
		if err != nil {
			errs = append(errs, s.errorf("%q is not a boolean; use true or false", s.value))
		}
		cfg.GitHubRunDetails = v
	}
	if s, ok := cf.get("metrics-listen"); ok && s.value != "" {
		if _, _, err := net.SplitHostPort(s.value); err != nil {
			errs = append(errs, s.errorf("%q is not host:port; use e.g. 127.0.0.1:9090", s.value))
		}
		cfg.MetricsListen = s.value
	}
	return errs
}

// parseRate reads "PER_SECOND/s:BURST" (e.g. "50/s:200") or "off" (the
// zero Rate).
func parseRate(v string) (server.Rate, error) {
	if strings.EqualFold(strings.TrimSpace(v), "off") {
		return server.Rate{}, nil
	}
	perSecond, burst, ok := strings.Cut(strings.TrimSpace(v), ":")
	perSecond, okUnit := strings.CutSuffix(perSecond, "/s")
	if !ok || !okUnit {
		return server.Rate{}, strconv.ErrSyntax
	}
	r, err := strconv.ParseFloat(perSecond, 64)
	if err != nil || r <= 0 {
		return server.Rate{}, strconv.ErrSyntax
	}
	b, err := strconv.Atoi(burst)
	if err != nil || b < 1 {
		return server.Rate{}, strconv.ErrSyntax
	}
	return server.Rate{PerSecond: r, Burst: b}, nil
}

// rateLimits returns the server's rate limits: nil when both are off; a
// class that is off is not limited.
func (c Config) rateLimits() *server.RateLimits {
	if c.ReadRate == (server.Rate{}) && c.WriteRate == (server.Rate{}) {
		return nil
	}
	return &server.RateLimits{Read: c.ReadRate, Write: c.WriteRate}
}
