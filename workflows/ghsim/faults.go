package ghsim

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"
)

// Faults are the misbehaviours the simulator can inject, each a knob usable
// from tests and from `serve --demo` (DESKFORGE_SIM_FAULTS). Every random
// decision is a pure function of Seed, the kind of decision and a sequence
// number (the n-th delivery, API request or run), so a given seed reproduces
// the same faults for the same sequence of calls.
type Faults struct {
	// Seed makes the decisions reproducible ("seed=7").
	Seed int64

	// Drop is the share of webhook deliveries never sent ("drop=0.3"). They
	// appear in the delivery log with StatusCode 0 and can be redelivered.
	Drop float64
	// Duplicate is the share of deliveries sent twice with the same
	// X-GitHub-Delivery ("duplicate=0.2").
	Duplicate float64
	// Reorder is the share of deliveries held back by ReorderDelay of
	// simulated time, so later ones overtake them ("reorder=0.5").
	Reorder float64
	// ReorderDelay is how long a reordered delivery is held ("delay=5s";
	// default 5s).
	ReorderDelay time.Duration

	// API5xx is the share of API calls answered 500 or 502 without taking
	// effect ("api5xx=0.1").
	API5xx float64
	// Ambiguous is the share of write calls (POST, PUT, PATCH, DELETE) that
	// take effect but are answered 502, as when GitHub's edge times out
	// after the backend acted ("ambiguous=0.1").
	Ambiguous float64
	// Latency delays every API answer by this much real time
	// ("latency=50ms").
	Latency time.Duration

	// PrimaryLimit overrides the primary rate limit, requests per hour per
	// token ("primary=100").
	PrimaryLimit int
	// SecondaryLimit overrides the secondary rate limit, write requests per
	// minute per token ("secondary=5").
	SecondaryLimit int
	// RateLimit429 answers rate-limited calls with 429 instead of 403
	// ("ratelimit429" or "ratelimit429=true").
	RateLimit429 bool
	// GHES behaves like GitHub Enterprise Server 3.19: dispatch rejects the
	// return_run_details key ("ghes").
	GHES bool

	// Stuck is the share of runs that never leave the queued state, as when
	// no runner picks the job up ("stuck=0.1").
	Stuck float64
	// NoAsset is the share of successful runs that upload no release asset
	// ("noasset=0.1").
	NoAsset float64
	// Fail is the share of runs whose build step fails ("fail=0.1").
	Fail float64

	// Chaos is the share of API calls answered, instead of the real
	// answer (which then has no effect), with one of the answers GitHub
	// documents for any endpoint: 401, a primary rate limit, a secondary
	// one without Retry-After, 429, 500, 502, 503, a 200 with a garbage
	// body, no answer at all (see HangFor), or a status the endpoint's
	// OpenAPI operation lists ("chaos=0.2"). See answers.go.
	Chaos float64
	// HangFor is how long a request left without answer (Chaos) is held
	// before its connection is dropped ("hang=30s"; default 30s).
	HangFor time.Duration
	// SecondaryNoRetry is the share of API calls refused with a secondary
	// rate limit that names no Retry-After, x-ratelimit-remaining not 0
	// and x-ratelimit-reset an hour away ("secondarynoretry=0.1").
	SecondaryNoRetry float64
	// HourlyLimit caps the content-generating (write) requests of a token
	// per hour; past it, writes get a secondary limit without Retry-After
	// ("hourly=500", GitHub's documented budget).
	HourlyLimit int
	// LogStatus makes a completed job's log answer this status (410 for
	// expired logs, 403, 5xx) instead of its redirect, for a share LogShare
	// of the requests ("logstatus=410,logshare=0.5"; LogShare default 1).
	LogStatus int
	LogShare  float64
	// AssetStream answers asset downloads (Accept: application/octet-stream)
	// with the bytes (200) instead of a redirect to a signed URL, as the
	// OpenAPI description allows ("assetstream").
	AssetStream bool
	// ReadOnly answers every write (dispatch, cancel, upload, publish)
	// 403 "Resource not accessible by personal access token", as GitHub
	// answers a token that may read the repository but not write to it
	// ("readonly").
	ReadOnly bool
	// UploadStarter is the share of release asset uploads answered 502
	// after leaving an empty asset of that name in state "starter", as
	// GitHub documents for upstream failures ("starter=0.5").
	UploadStarter float64
}

// ParseFaults parses a comma-separated list of knob=value pairs, e.g.
// "drop=0.3,duplicate=0.2,reorder=0.5,api5xx=0.1,latency=50ms,seed=7".
// Boolean knobs may be given bare ("ghes"). An empty string is no faults.
func ParseFaults(s string) (Faults, error) {
	var f Faults
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, value, hasValue := strings.Cut(part, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		value = strings.TrimSpace(value)
		var err error
		switch key {
		case "seed":
			f.Seed, err = strconv.ParseInt(value, 10, 64)
		case "drop":
			f.Drop, err = parseShare(value)
		case "duplicate", "dup":
			f.Duplicate, err = parseShare(value)
		case "reorder":
			f.Reorder, err = parseShare(value)
		case "delay":
			f.ReorderDelay, err = parseDuration(value)
		case "api5xx":
			f.API5xx, err = parseShare(value)
		case "ambiguous":
			f.Ambiguous, err = parseShare(value)
		case "latency":
			f.Latency, err = parseDuration(value)
		case "primary":
			f.PrimaryLimit, err = parseCount(value)
		case "secondary":
			f.SecondaryLimit, err = parseCount(value)
		case "ratelimit429", "429":
			f.RateLimit429, err = parseFlag(value, hasValue)
		case "ghes":
			f.GHES, err = parseFlag(value, hasValue)
		case "stuck":
			f.Stuck, err = parseShare(value)
		case "noasset":
			f.NoAsset, err = parseShare(value)
		case "fail":
			f.Fail, err = parseShare(value)
		case "chaos":
			f.Chaos, err = parseShare(value)
		case "hang":
			f.HangFor, err = parseDuration(value)
		case "secondarynoretry":
			f.SecondaryNoRetry, err = parseShare(value)
		case "hourly":
			f.HourlyLimit, err = parseCount(value)
		case "logstatus":
			f.LogStatus, err = parseCount(value)
			if err == nil && (f.LogStatus < 400 || f.LogStatus > 599) {
				err = fmt.Errorf("%d must be an error status (400-599)", f.LogStatus)
			}
		case "logshare":
			f.LogShare, err = parseShare(value)
		case "assetstream":
			f.AssetStream, err = parseFlag(value, hasValue)
		case "readonly":
			f.ReadOnly, err = parseFlag(value, hasValue)
		case "starter":
			f.UploadStarter, err = parseShare(value)
		default:
			return Faults{}, fmt.Errorf("parse faults: unknown knob %q (known: seed, drop, duplicate, reorder, delay, api5xx, ambiguous, latency, primary, secondary, ratelimit429, ghes, stuck, noasset, fail, chaos, hang, secondarynoretry, hourly, logstatus, logshare, assetstream, readonly, starter)", key)
		}
		if err != nil {
			return Faults{}, fmt.Errorf("parse faults: %s: %w", key, err)
		}
	}
	return f, nil
}

// String formats the knobs that are set, in the form ParseFaults reads.
func (f Faults) String() string {
	var parts []string
	add := func(k, v string) { parts = append(parts, k+"="+v) }
	share := func(k string, v float64) {
		if v > 0 {
			add(k, strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	share("drop", f.Drop)
	share("duplicate", f.Duplicate)
	share("reorder", f.Reorder)
	if f.ReorderDelay > 0 {
		add("delay", f.ReorderDelay.String())
	}
	share("api5xx", f.API5xx)
	share("ambiguous", f.Ambiguous)
	if f.Latency > 0 {
		add("latency", f.Latency.String())
	}
	if f.PrimaryLimit > 0 {
		add("primary", strconv.Itoa(f.PrimaryLimit))
	}
	if f.SecondaryLimit > 0 {
		add("secondary", strconv.Itoa(f.SecondaryLimit))
	}
	if f.RateLimit429 {
		add("ratelimit429", "true")
	}
	if f.GHES {
		add("ghes", "true")
	}
	share("stuck", f.Stuck)
	share("noasset", f.NoAsset)
	share("fail", f.Fail)
	share("chaos", f.Chaos)
	if f.HangFor > 0 {
		add("hang", f.HangFor.String())
	}
	share("secondarynoretry", f.SecondaryNoRetry)
	if f.HourlyLimit > 0 {
		add("hourly", strconv.Itoa(f.HourlyLimit))
	}
	if f.LogStatus > 0 {
		add("logstatus", strconv.Itoa(f.LogStatus))
	}
	share("logshare", f.LogShare)
	if f.AssetStream {
		add("assetstream", "true")
	}
	if f.ReadOnly {
		add("readonly", "true")
	}
	share("starter", f.UploadStarter)
	if f.Seed != 0 {
		add("seed", strconv.FormatInt(f.Seed, 10))
	}
	return strings.Join(parts, ",")
}

// withDefaults fills in the knobs' defaults (ReorderDelay 5s, HangFor
// 30s, LogShare 1 when LogStatus is set).
func (f Faults) withDefaults() Faults {
	if f.ReorderDelay == 0 {
		f.ReorderDelay = 5 * time.Second
	}
	if f.HangFor == 0 {
		f.HangFor = 30 * time.Second
	}
	if f.LogStatus != 0 && f.LogShare == 0 {
		f.LogShare = 1
	}
	return f
}

func parseShare(v string) (float64, error) {
	p, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", v)
	}
	if !(p >= 0 && p <= 1) { // also refuses NaN
		return 0, fmt.Errorf("%v must be between 0 and 1", p)
	}
	return p, nil
}

func parseDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration like 50ms", v)
	}
	if d < 0 {
		return 0, fmt.Errorf("%v must not be negative", d)
	}
	return d, nil
}

func parseCount(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%q must be a positive integer", v)
	}
	return n, nil
}

func parseFlag(v string, hasValue bool) (bool, error) {
	if !hasValue {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%q is not true or false", v)
	}
	return b, nil
}

// chance returns a number in [0, 1) determined by the seed, the kind of
// decision and its sequence number.
func (f Faults) chance(kind string, n uint64) float64 {
	h := fnv.New64a()
	h.Write([]byte(kind))
	x := h.Sum64() ^ uint64(f.Seed)*0x9e3779b97f4a7c15 ^ (n+1)*0xbf58476d1ce4e5b9
	return float64(splitmix64(x)>>11) / (1 << 53)
}

// hit reports whether the n-th decision of kind falls within share p.
func (f Faults) hit(kind string, n uint64, p float64) bool {
	return p > 0 && f.chance(kind, n) < p
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
