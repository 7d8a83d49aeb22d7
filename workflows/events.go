package workflows

// WebhookEvent is a GitHub webhook delivery after parsing
// (workflows/github.ParseWebhook): only what the engine applies.
type WebhookEvent struct {
	Event  string // X-GitHub-Event: "ping", "workflow_run", "workflow_job", …
	Action string // payload "action"
	Repo   string // "owner/name"; "" for ping
	Run    *Run   // set for workflow_run
	Job    *Job   // set for workflow_job (Job.RunID names its run)
}
