package ghsim_test

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/deskforge/deskforge/workflows/ghsim"
)

// A test drives the simulator with a fake clock: dispatch, advance, Tick.
func Example() {
	clock := ghsim.NewFakeClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	sim, srv := ghsim.NewServer(ghsim.Options{Clock: clock, Timing: ghsim.FastTiming()})
	defer srv.Close()
	if err := sim.AddRepo("acme/builder", ghsim.RepoOptions{}); err != nil { // the embedded templates
		panic(err)
	}
	// sim.SetWebhook(receiverURL, secret) would deliver the run's webhooks.

	gh := github.NewClient(nil).WithAuthToken("any-token")
	gh.BaseURL, _ = url.Parse(srv.URL + "/")
	_, err := gh.Actions.CreateWorkflowDispatchEventByFileName(context.Background(), "acme", "builder", "deskforge.yml",
		github.CreateWorkflowDispatchEventRequest{Ref: "main", Inputs: map[string]any{
			"build_id": "build_01example", "platform": "mac", "arch": "arm64", "version": "1.0.0", "runner": "macos-15",
			"config": `{"name":"Example App"}`,
		}})
	if err != nil {
		panic(err)
	}
	clock.Advance(sim.Timing().RunDuration())
	sim.Tick()
	for _, r := range sim.Runs("acme/builder") {
		fmt.Println(r.DisplayTitle, r.Status, r.Conclusion, r.Jobs[0].AssetName)
	}
	// Output: deskforge build_01example mac-arm64 v1.0.0 completed success example-app-1.0.0-mac-arm64.dmg
}
