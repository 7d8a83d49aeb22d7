// Package ghsim simulates the parts of GitHub that DeskForge drives: the REST
// API for GitHub Actions (workflow dispatch, runs, jobs, job logs, cancel,
// rerun), releases and their assets, repository contents, git refs and pull
// requests, and the ping / workflow_run / workflow_job webhooks, all shaped
// like GitHub's answers so that the real go-github v62 client code runs
// against it.
//
// A Sim is an http.Handler plus a small runner that advances simulated runs
// over time. Wiring:
//
//   - New(Options) or NewServer(Options) (an httptest server on a loopback
//     port, base URL already set). When serving Handler() yourself, call
//     SetBaseURL with the URL clients reach it at: absolute URLs in answers
//     and webhooks (run_url, Link headers, signed download URLs) start with
//     it. Point go-github's BaseURL at that URL plus "/" (a GHES-style
//     "/api/v3/" prefix is accepted too).
//   - AddRepo("owner/name", RepoOptions{...}); without Workflows the embedded
//     templates are committed (DefaultWorkflows), webapp.yml also as
//     deskforge.yml.
//   - SetWebhook(url, secret) to receive deliveries.
//   - Time comes from Options.Clock. Tests use a FakeClock, Advance it and
//     call Tick, which advances runs and sends due webhooks synchronously.
//     `serve --demo` uses the real clock and runs Run(ctx) in a goroutine;
//     DemoTiming makes a build take about 20 s, FastTiming 70 ms of clock.
//   - Outcomes come from Options.Scenario rules (DefaultRules: a version
//     pre-release containing "fail", "hang" or "noasset"), faults from
//     Options.Faults (ParseFaults reads DESKFORGE_SIM_FAULTS).
//   - Tests read Runs, Releases, Deliveries, Counters, Pulls and File.
//
// Where GitHub does something awkward, the simulator does it too: dispatch
// validation messages, ETag / 304 answers that do not count against the rate
// limit, primary and secondary rate limits, 302 redirects to signed URLs that
// expire, drafts invisible to the release-by-tag endpoint, job logs that are
// 404 until the job completes, jobs whose runner label nobody serves staying
// queued, webhooks that arrive out of order, twice, or not at all, and no
// automatic redelivery.
package ghsim
