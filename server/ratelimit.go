package server

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"github.com/deskforge/deskforge/models"
)

// Rate is one token bucket: PerSecond tokens are added every second, up to
// Burst. A request takes one token; with none left it answers 429.
type Rate struct {
	PerSecond float64
	Burst     int
}

// RateLimits are the per-caller request limits of the API. Reads (GET,
// HEAD) and writes (every other method: triggers, cancels, project and key
// changes) have separate buckets, so a script polling builds cannot stop
// its own triggers and the other way round. Authenticated routes count per
// API key, unauthenticated ones per client address. Buckets live in the
// process; with N live replicas (Server.SetReplicas) each enforces 1/N of
// the rates and bursts, so behind a round-robin load balancer the limits
// hold roughly for the fleet.
type RateLimits struct {
	// Read and Write are the buckets of each class; the zero Rate does not
	// limit its class.
	Read  Rate
	Write Rate
	// MaxBuckets bounds the number of callers remembered
	// (default DefaultMaxRateBuckets); full buckets are evicted first.
	MaxBuckets int
	// Now is the clock (default time.Now); tests set it.
	Now func() time.Time
}

// Default rate limits of `deskforge serve`.
var (
	DefaultReadRate  = Rate{PerSecond: 50, Burst: 200}
	DefaultWriteRate = Rate{PerSecond: 1, Burst: 30}
)

// DefaultMaxRateBuckets is the default of RateLimits.MaxBuckets.
const DefaultMaxRateBuckets = 100_000

// rateSweepInterval is how often buckets that refilled are dropped.
const rateSweepInterval = time.Minute

// rateLimiter holds the token buckets of every caller and class. It is
// safe for concurrent use.
type rateLimiter struct {
	read, write Rate
	maxBuckets  int
	now         func() time.Time

	// replicas is how many processes share the limits (at least 1).
	replicas atomic.Int64

	mu        sync.Mutex
	buckets   map[bucketKey]*rate.Limiter
	lastSweep time.Time
}

// shared is r divided among n replicas: each enforces 1/n of the rate and
// of the burst (at least one request).
func (r Rate) shared(n int64) Rate {
	if n <= 1 {
		return r
	}
	return Rate{PerSecond: r.PerSecond / float64(n), Burst: max(1, int(math.Ceil(float64(r.Burst)/float64(n))))}
}

type bucketKey struct {
	caller string // "key:<id>" or "addr:<ip>"
	write  bool
}

func newRateLimiter(l *RateLimits) *rateLimiter {
	if l == nil {
		return nil
	}
	rl := &rateLimiter{read: l.Read, write: l.Write, maxBuckets: l.MaxBuckets, now: l.Now,
		buckets: map[bucketKey]*rate.Limiter{}}
	if rl.maxBuckets <= 0 {
		rl.maxBuckets = DefaultMaxRateBuckets
	}
	if rl.now == nil {
		rl.now = time.Now
	}
	rl.lastSweep = rl.now()
	rl.replicas.Store(1)
	return rl
}

// rateDecision is the outcome of one request's take.
type rateDecision struct {
	allowed    bool
	limit      int
	remaining  int
	reset      time.Duration // until the bucket is full again
	retryAfter time.Duration // until one token is back (when refused)
}

// take takes one token of caller's bucket of the class.
func (rl *rateLimiter) take(caller string, write bool) rateDecision {
	r := rl.read
	if write {
		r = rl.write
	}
	r = r.shared(rl.replicas.Load())
	now := rl.now()
	lim := rl.bucket(bucketKey{caller, write}, r, now)
	d := rateDecision{allowed: lim.AllowN(now, 1), limit: r.Burst}
	tokens := lim.TokensAt(now)
	d.remaining = max(int(math.Floor(tokens)), 0)
	if r.PerSecond > 0 {
		d.reset = secondsOf((float64(r.Burst) - tokens) / r.PerSecond)
		if !d.allowed {
			d.retryAfter = secondsOf((1 - tokens) / r.PerSecond)
		}
	}
	return d
}

func secondsOf(s float64) time.Duration {
	return time.Duration(math.Max(s, 0) * float64(time.Second))
}

// bucket returns the bucket of k at rate r, created full (an existing one
// takes r when the number of replicas changed it). It drops the buckets
// that refilled (a full bucket behaves as a new one, so forgetting it
// changes nothing) once a minute, and when the map is at MaxBuckets.
func (rl *rateLimiter) bucket(k bucketKey, r Rate, now time.Time) *rate.Limiter {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if lim, ok := rl.buckets[k]; ok {
		if lim.Burst() != r.Burst || lim.Limit() != rate.Limit(r.PerSecond) {
			lim.SetLimitAt(now, rate.Limit(r.PerSecond))
			lim.SetBurstAt(now, r.Burst)
		}
		return lim
	}
	if len(rl.buckets) >= rl.maxBuckets || now.Sub(rl.lastSweep) >= rateSweepInterval {
		rl.sweep(now)
	}
	lim := rate.NewLimiter(rate.Limit(r.PerSecond), r.Burst)
	rl.buckets[k] = lim
	return lim
}

// sweep drops full buckets; if the map is still at MaxBuckets (that many
// callers active at once) it drops arbitrary ones, forgiving their debt.
func (rl *rateLimiter) sweep(now time.Time) {
	rl.lastSweep = now
	for k, lim := range rl.buckets {
		if lim.TokensAt(now) >= float64(lim.Burst()) {
			delete(rl.buckets, k)
		}
	}
	for k := range rl.buckets {
		if len(rl.buckets) < rl.maxBuckets {
			break
		}
		delete(rl.buckets, k)
	}
}

// SetReplicas tells the server that n processes (live replicas, this one
// included) share its rate limits: each bucket then allows 1/n of the
// configured rate and burst. A server without limits ignores it.
func (s *Server) SetReplicas(n int) {
	if s.limiter != nil {
		s.limiter.replicas.Store(int64(max(n, 1)))
	}
}

// size is the number of buckets held.
func (rl *rateLimiter) size() int {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return len(rl.buckets)
}

// isWrite reports whether a request counts against the write bucket.
func isWrite(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

// rateLimitByKey limits authenticated requests per API key; register it
// after authenticate. A nil limiter lets everything through.
func (s *Server) rateLimitByKey(c *gin.Context) {
	s.limitRate(c, "key:"+callerOf(c).ID)
}

// rateLimitByAddress limits unauthenticated requests per client address
// (the peer's: no proxy header is trusted, so behind a load balancer every
// caller shares the balancer's address unless it passes the connection
// through).
func (s *Server) rateLimitByAddress(c *gin.Context) {
	s.limitRate(c, "addr:"+c.ClientIP())
}

// limitRate takes a token of caller's bucket, sets the RateLimit-Limit,
// RateLimit-Remaining and RateLimit-Reset headers
// (draft-ietf-httpapi-ratelimit-headers-07, the separate-fields form) and
// answers 429 rate_limited with Retry-After when the bucket is empty.
func (s *Server) limitRate(c *gin.Context, caller string) {
	if s.limiter == nil {
		c.Next()
		return
	}
	write := isWrite(c.Request.Method)
	if (write && s.limiter.write == Rate{}) || (!write && s.limiter.read == Rate{}) {
		c.Next() // this class is not limited
		return
	}
	d := s.limiter.take(caller, write)
	h := c.Writer.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(d.limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(d.remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(int(math.Ceil(d.reset.Seconds()))))
	if !d.allowed {
		class, r := "read", s.limiter.read
		if write {
			class, r = "write", s.limiter.write
		}
		s.renderError(c, &models.RateLimitedError{RetryAfter: d.retryAfter, Message: fmt.Sprintf(
			"too many %s requests: the limit is %g a second with bursts of %d; retry after the Retry-After header's seconds",
			class, r.PerSecond, r.Burst)})
		return
	}
	c.Next()
}
