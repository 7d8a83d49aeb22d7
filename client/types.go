package client

import (
	"fmt"
	"time"
)

// Build statuses. A build never leaves a final status (success, failed,
// cancelled).
const (
	StatusQueued    = "queued"
	StatusBuilding  = "building"
	StatusSuccess   = "success"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// IsFinal reports whether a build status is final.
func IsFinal(status string) bool {
	return status == StatusSuccess || status == StatusFailed || status == StatusCancelled
}

// Build is a build as GET /builds/:id shows it (also each item of a build
// list, and the answers of cancel and retry). Timestamps are UTC, to the
// second; fields not known yet are nil.
type Build struct {
	ID           string     `json:"id"`
	ProjectID    string     `json:"projectId"`
	Version      string     `json:"version"`
	Platform     string     `json:"platform"`
	Arch         string     `json:"arch"`
	Status       string     `json:"status"`
	CreatedAt    time.Time  `json:"createdAt"`
	StartedAt    *time.Time `json:"startedAt"`
	CompletedAt  *time.Time `json:"completedAt"`
	Duration     *int64     `json:"duration"` // seconds from startedAt to completedAt
	ArtifactURL  *string    `json:"artifactUrl"`
	ArtifactSize *int64     `json:"artifactSize"`
	BuildLog     string     `json:"buildLog"`
	// RetryOf names the build this one retries; nil for a first build.
	RetryOf *string `json:"retryOf,omitempty"`
	// Error says why a failed build failed; nil otherwise (and from servers
	// that do not report it).
	Error *BuildError `json:"error,omitempty"`
	// Progress is the step the job is at while the build runs; nil when
	// unknown (and from servers that do not report it).
	Progress *Progress `json:"progress"`
}

// BuildError is why a build failed.
type BuildError struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Step    *string `json:"step,omitempty"` // the failing step's name, when one failed
}

// Progress is a running build's position in its job's steps.
type Progress struct {
	Step  int    `json:"step"`  // 1-based
	Steps int    `json:"steps"` // total steps of the job
	Name  string `json:"name"`  // the current step's name
}

// TriggeredBuild is the answer of POST /projects/:id/builds.
type TriggeredBuild struct {
	ID        string    `json:"id"`
	ProjectID string    `json:"projectId"`
	Platform  string    `json:"platform"`
	Arch      string    `json:"arch"`
	Version   string    `json:"version"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"createdAt"`
	Message   string    `json:"message"`
}

// BuildList is one page of GET /projects/:id/builds, newest first. Total
// counts every build matching the filters; NextCursor is nil on the last
// page.
type BuildList struct {
	Builds     []Build `json:"builds"`
	Total      int64   `json:"total"`
	NextCursor *string `json:"nextCursor"`
}

// LogEntry is one entry of a build's log.
type LogEntry struct {
	Timestamp time.Time `json:"timestamp"`
	Level     string    `json:"level"` // debug, info, success, warning or error
	Message   string    `json:"message"`
}

// String formats an entry as the server's text format does:
// "2024-01-20T10:01:00Z [info] message".
func (e LogEntry) String() string {
	return fmt.Sprintf("%s [%s] %s", e.Timestamp.UTC().Format(time.RFC3339), e.Level, e.Message)
}

// LogPage is an answer of GET /builds/:id/logs. NextAfter is what to pass
// as LogOptions.After to continue; an empty Logs means caught up.
type LogPage struct {
	BuildID   string     `json:"buildId"`
	Logs      []LogEntry `json:"logs"`
	NextAfter int64      `json:"nextAfter"`
}

// Project is a project as GET /projects/:id shows it. Optional strings that
// are not set are nil.
type Project struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	URL        *string   `json:"url"`
	Author     *string   `json:"author"`
	Version    *string   `json:"version"`
	AppID      *string   `json:"appId"`
	Platforms  []string  `json:"platforms"`
	Window     Window    `json:"window"`
	Features   Features  `json:"features"`
	Repository *string   `json:"repository"`
	Workflow   *string   `json:"workflow"`
	Ref        *string   `json:"ref"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

// Window is the window settings of a web-app project.
type Window struct {
	Width     int  `json:"width"`
	Height    int  `json:"height"`
	Resizable bool `json:"resizable"`
}

// Features are the optional features of a web-app project.
type Features struct {
	AutoUpdate bool `json:"autoUpdate"`
	Tray       bool `json:"tray"`
	MenuBar    bool `json:"menuBar"`
}

// ProjectList is one page of GET /projects.
type ProjectList struct {
	Projects   []Project `json:"projects"`
	Total      int64     `json:"total"`
	NextCursor *string   `json:"nextCursor"`
}

// errorEnvelope is the body of every non-2xx answer.
type errorEnvelope struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	} `json:"error"`
	RequestID string `json:"requestId"`
}

// APIError is a non-2xx answer of the server, from its error envelope.
// Match it with errors.As.
type APIError struct {
	Status    int    // HTTP status
	Code      string // e.g. invalid_request, not_found, not_ready
	Message   string
	Field     string // the request field at fault (invalid_request only)
	RequestID string // quote it when reporting a problem
	// RetryAfter is the server's Retry-After (429, 503), zero when absent.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s (HTTP %d %s", e.Message, e.Status, e.Code)
	if e.RequestID != "" {
		msg += ", request " + e.RequestID
	}
	return msg + ")"
}
