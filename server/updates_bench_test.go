package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/models/dbtest"
	"github.com/deskforge/deskforge/server"
	"github.com/deskforge/deskforge/workflows"
)

// BenchmarkUpdateEndpoint measures the update endpoint (an update
// offered: 200 with its JSON) through DeskForge's whole router — request
// id, access log, size checks, the per-address rate limiter (limits too
// high to refuse), the cache — against bare Gin answering the same JSON
// from memory with c.JSON. Each iteration sends one request to each,
// alternately, and times them apart, so that both see the same machine
// load (the machine is shared). It reports both rates and DeskForge's as
// a percentage of bare Gin's, in two modes:
//
//   - http: over loopback HTTP with keep-alive, one client in a loop — what
//     an app's poll costs, and where a database read per request would
//     show;
//   - in-process: ServeHTTP on a recorder, no sockets — the handler chains
//     alone, where DeskForge's middleware (shared by every route) weighs
//     most.
//
// BENCHMARKS.md has the numbers.
//
//	go test ./server -run '^$' -bench BenchmarkUpdateEndpoint -benchtime 20000x
func BenchmarkUpdateEndpoint(b *testing.B) {
	for _, dialect := range dbtest.Dialects() {
		for _, visibility := range []string{"public", "private"} {
			for _, mode := range []string{"http", "in-process"} {
				b.Run(dialect+"/"+visibility+"/"+mode, func(b *testing.B) {
					benchmarkUpdateEndpoint(b, dialect, visibility == "private", mode == "http")
				})
			}
		}
	}
}

func benchmarkUpdateEndpoint(b *testing.B, dialect string, private, overHTTP bool) {
	api := startAPI(b, dialect, nil, workflows.Options{}, server.Options{
		RateLimits: &server.RateLimits{Read: server.Rate{PerSecond: 1e9, Burst: 1e9}},
	})
	p := api.projectA.ID
	if err := api.db.Gorm.Model(&models.Project{}).Where("id = ?", p).Update("feature_auto_update", true).Error; err != nil {
		b.Fatal(err)
	}
	api.publishRelease(b, p, "1.1.0", private)
	path := "/updates/" + p + "/darwin/aarch64/1.0.0"

	// Bare Gin: the same answer, held in memory.
	first := httptest.NewRecorder()
	api.handler.ServeHTTP(first, httptest.NewRequest(http.MethodGet, path, nil))
	if first.Code != http.StatusOK {
		b.Fatalf("status %d: %s", first.Code, first.Body)
	}
	var answer struct {
		Version   string `json:"version"`
		URL       string `json:"url"`
		Signature string `json:"signature"`
		Notes     string `json:"notes"`
		PubDate   string `json:"pub_date"`
	}
	if err := json.Unmarshal(first.Body.Bytes(), &answer); err != nil {
		b.Fatal(err)
	}
	bare := gin.New()
	bare.GET("/updates/:id/:target/:arch/:version", func(c *gin.Context) { c.JSON(http.StatusOK, answer) })

	// Each sender sends one request and says how long it took to answer
	// (in-process: ServeHTTP alone, not building the request).
	send := func(h http.Handler) func() (int, time.Duration) {
		return func() (int, time.Duration) {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.RemoteAddr = "192.0.2.1:40000"
			w := httptest.NewRecorder()
			start := time.Now()
			h.ServeHTTP(w, req)
			return w.Code, time.Since(start)
		}
	}
	senders := []func() (int, time.Duration){send(bare), send(api.handler)}
	if overHTTP {
		bareSrv := httptest.NewServer(bare)
		b.Cleanup(bareSrv.Close)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
		get := func(base string) func() (int, time.Duration) {
			return func() (int, time.Duration) {
				start := time.Now()
				resp, err := client.Get(base + path)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp.StatusCode, time.Since(start)
			}
		}
		senders = []func() (int, time.Duration){get(bareSrv.URL), get(api.url)}
	}

	var spent [2]time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for which, send := range senders {
			code, took := send()
			spent[which] += took
			if code != http.StatusOK {
				b.Fatalf("status %d", code)
			}
		}
	}
	bareRate := float64(b.N) / spent[0].Seconds()
	ourRate := float64(b.N) / spent[1].Seconds()
	b.ReportMetric(bareRate, "bare-req/s")
	b.ReportMetric(ourRate, "deskforge-req/s")
	b.ReportMetric(100*ourRate/bareRate, "%-of-bare")
}
