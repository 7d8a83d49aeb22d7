package workflows

// DispatchBuildArgs is the River job that dispatches a queued build to GitHub
// Actions. It is inserted in the same transaction as the build row.
type DispatchBuildArgs struct {
	BuildID string `json:"build_id"`
}

// Kind implements river.JobArgs.
func (DispatchBuildArgs) Kind() string { return "dispatch_build" }
