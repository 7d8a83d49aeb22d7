package ghsim

import (
	"strings"

	"github.com/deskforge/deskforge/templates"
)

// Outcome is how a simulated run ends.
type Outcome string

// The outcomes a Rule can choose.
const (
	// OutcomeSuccess completes the job successfully and uploads the release
	// asset (the default).
	OutcomeSuccess Outcome = "success"
	// OutcomeFailure fails the "Build installer" step with a compile error;
	// the log ends with "##[error]Process completed with exit code 1.".
	OutcomeFailure Outcome = "failure"
	// OutcomeNoAsset completes successfully without uploading an asset (a
	// template whose upload step silently did nothing).
	OutcomeNoAsset Outcome = "no_asset"
	// OutcomeHangQueued leaves the run queued forever (no runner picks the
	// job up). Cancelling it still works.
	OutcomeHangQueued Outcome = "hang_queued"
	// OutcomeHangInProgress starts the job and never finishes the build
	// step (a runner that went silent). Cancelling it still works.
	OutcomeHangInProgress Outcome = "hang_in_progress"
	// OutcomeTimeoutMinutes starts the job and lets its build step exceed
	// the job's timeout-minutes: GitHub cancels the job, which ends with
	// conclusion "cancelled" (not "timed_out"), although nobody asked.
	OutcomeTimeoutMinutes Outcome = "timeout_minutes"
)

// Rule picks the outcome of the runs it matches. Every non-empty field must
// match; the first matching rule of a scenario wins, and a run no rule
// matches succeeds.
type Rule struct {
	Repo     string // "owner/name"
	Workflow string // workflow file name, e.g. "deskforge.yml"
	BuildID  string // the build_id input
	Platform string // the platform input
	Arch     string // the arch input
	// Prerelease matches when the version input's pre-release part (after
	// the first '-', before any '+') contains it, e.g. "fail" matches
	// "1.2.0-fail" and "1.2.0-rc.1-fail.2".
	Prerelease string
	// Attempts, when positive, limits the rule to run attempts 1..Attempts,
	// so a rerun can succeed where the first attempt failed.
	Attempts int
	// Outcome is what happens to a matching run.
	Outcome Outcome
}

// DefaultRules are the scenario used when Options.Scenario is nil: a version
// whose pre-release contains "fail" fails, "hang" hangs in queued,
// "noasset" succeeds without uploading, and "timeout" exceeds the job's
// timeout-minutes (GitHub cancels it). Everything else succeeds.
func DefaultRules() []Rule {
	return []Rule{
		{Prerelease: "fail", Outcome: OutcomeFailure},
		{Prerelease: "hang", Outcome: OutcomeHangQueued},
		{Prerelease: "noasset", Outcome: OutcomeNoAsset},
		{Prerelease: "timeout", Outcome: OutcomeTimeoutMinutes},
	}
}

// runFacts is what a Rule is matched against.
type runFacts struct {
	repo, workflow string
	inputs         map[string]string
	attempt        int
}

func (r Rule) matches(f runFacts) bool {
	if r.Repo != "" && !strings.EqualFold(r.Repo, f.repo) {
		return false
	}
	if r.Workflow != "" && r.Workflow != f.workflow {
		return false
	}
	if r.BuildID != "" && r.BuildID != f.inputs[templates.InputBuildID] {
		return false
	}
	if r.Platform != "" && r.Platform != f.inputs[templates.InputPlatform] {
		return false
	}
	if r.Arch != "" && r.Arch != f.inputs[templates.InputArch] {
		return false
	}
	if r.Prerelease != "" && !strings.Contains(prerelease(f.inputs[templates.InputVersion]), r.Prerelease) {
		return false
	}
	if r.Attempts > 0 && f.attempt > r.Attempts {
		return false
	}
	return true
}

// prerelease returns the pre-release part of a semantic version ("" if none).
func prerelease(version string) string {
	version, _, _ = strings.Cut(version, "+")
	_, pre, _ := strings.Cut(version, "-")
	return pre
}

func pickOutcome(rules []Rule, f runFacts) Outcome {
	for _, r := range rules {
		if r.matches(f) {
			if r.Outcome == "" {
				return OutcomeSuccess
			}
			return r.Outcome
		}
	}
	return OutcomeSuccess
}
