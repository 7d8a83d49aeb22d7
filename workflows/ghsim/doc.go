// Package ghsim simulates the parts of GitHub that DeskForge drives: the REST
// API for GitHub Actions (workflow dispatch, runs, jobs, job logs, cancel,
// rerun), releases and their assets, repository contents, git refs and pull
// requests, and the workflow_run / workflow_job webhooks, all shaped like
// GitHub's answers so that the real go-github v62 client code runs against it.
//
// A Sim is an http.Handler plus a small runner that advances simulated runs
// over time. Time comes from a Clock the caller controls: tests use a
// FakeClock and call Tick after advancing it; `serve --demo` uses the real
// clock and Run in a goroutine.
//
// Where GitHub does something awkward, the simulator does it too: dispatch
// validation messages, ETag / 304 answers that do not count against the rate
// limit, primary and secondary rate limits, 302 redirects to signed URLs that
// expire, drafts invisible to the release-by-tag endpoint, job logs that are
// 404 until the job completes, webhooks that arrive out of order, twice, or
// not at all (see Faults).
package ghsim
