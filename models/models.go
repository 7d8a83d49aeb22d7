// Package models holds DeskForge's GORM models, the store that reads and
// writes them, and the migrations (GORM's and River's) for SQLite and
// PostgreSQL.
package models

import (
	"time"
)

// Build statuses. Transitions are monotonic: queued -> building -> one of the
// terminal statuses, which never change.
const (
	StatusQueued    = "queued"
	StatusBuilding  = "building"
	StatusSuccess   = "success"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// StatusRank orders statuses for monotonic transitions; terminal statuses
// share the highest rank.
func StatusRank(status string) int {
	switch status {
	case StatusQueued:
		return 0
	case StatusBuilding:
		return 1
	case StatusSuccess, StatusFailed, StatusCancelled:
		return 2
	}
	return -1
}

// IsTerminal reports whether a status is final.
func IsTerminal(status string) bool { return StatusRank(status) == 2 }

// Log levels of build log entries.
const (
	LevelDebug   = "debug"
	LevelInfo    = "info"
	LevelWarning = "warning"
	LevelError   = "error"
	LevelSuccess = "success"
)

// Project is an app DeskForge builds: a web app URL (built from the server's
// builder repository) or a repository of its own.
type Project struct {
	ID                string `gorm:"primaryKey;size:40"`
	Name              string `gorm:"size:200;not null"`
	URL               string `gorm:"size:2048"`
	Author            string `gorm:"size:200"`
	Version           string `gorm:"size:100"`
	AppID             string `gorm:"size:255"`
	Platforms         string `gorm:"size:100;not null"` // comma-separated: mac,windows,linux
	WindowWidth       int
	WindowHeight      int
	WindowResizable   bool
	FeatureAutoUpdate bool
	FeatureTray       bool
	FeatureMenuBar    bool
	Repository        string `gorm:"size:200"` // owner/name; "" = the server's builder repository
	Workflow          string `gorm:"size:200"`
	Ref               string `gorm:"size:255"`
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// API key roles.
const (
	RoleAdmin   = "admin"
	RoleProject = "project"
)

// APIKey is a bearer key. Only the SHA-256 of the key is stored.
type APIKey struct {
	ID         string  `gorm:"primaryKey;size:40"`
	Name       string  `gorm:"size:200"`
	Hash       string  `gorm:"size:64;uniqueIndex;not null"` // hex SHA-256 of the full key
	Prefix     string  `gorm:"size:16"`                      // first characters, for display
	Role       string  `gorm:"size:16;not null"`
	ProjectID  *string `gorm:"size:40;index"`
	CreatedAt  time.Time
	RevokedAt  *time.Time
	LastUsedAt *time.Time
}

// Build is one installer build of a project for a platform and arch, run as
// one GitHub Actions workflow run.
type Build struct {
	// ID sorts by creation time. The (project_id, [filter,] id) indexes
	// serve keyset pagination of a project's builds, filtered or not.
	ID        string  `gorm:"primaryKey;size:40;index:idx_builds_project,priority:2;index:idx_builds_project_status,priority:3;index:idx_builds_project_platform,priority:3;index:idx_builds_project_arch,priority:3;index:idx_builds_project_version,priority:3"`
	ProjectID string  `gorm:"size:40;not null;index:idx_builds_project,priority:1;index:idx_builds_project_status,priority:1;index:idx_builds_project_platform,priority:1;index:idx_builds_project_arch,priority:1;index:idx_builds_project_version,priority:1"`
	Version   string  `gorm:"size:100;not null;index:idx_builds_project_version,priority:2"`
	Platform  string  `gorm:"size:16;not null;index:idx_builds_project_platform,priority:2"`
	Arch      string  `gorm:"size:16;not null;index:idx_builds_project_arch,priority:2"`
	Status    string  `gorm:"size:16;not null;index;index:idx_builds_project_status,priority:2"`
	RetryOf   *string `gorm:"size:40"`

	CreatedAt   time.Time
	UpdatedAt   time.Time `gorm:"index"`
	StartedAt   *time.Time
	CompletedAt *time.Time

	// What was dispatched (snapshotted from the project when the build is created).
	Repository string `gorm:"size:200"`
	Workflow   string `gorm:"size:200"`
	Ref        string `gorm:"size:255"`
	Runner     string `gorm:"size:100"`
	Config     string `gorm:"type:text"` // JSON of templates.BuildConfig
	AssetName  string `gorm:"size:255"`

	// GitHub side. A workflow run is identified by (ForgeHost, Repository,
	// RunID), unique among builds (index idx_builds_run): run ids are only
	// unique per GitHub server, and a simulator may reuse them.
	// ForgeHost is the GitHub server the build was created for (its API
	// host, e.g. "api.github.com"); "" on builds older than the column,
	// which any server may follow.
	ForgeHost       string `gorm:"size:255;not null;default:''"`
	DispatchedAt    *time.Time
	CancelRequested bool
	RunID           *int64 `gorm:"index"`
	RunHTMLURL      string `gorm:"size:512"`
	RunStatus       string `gorm:"size:32"`
	JobID           *int64
	RunnerName      string `gorm:"size:200"`
	FailureReason   string `gorm:"type:text"`
	// ErrorCode and ErrorStep classify a failure (the API's error.code and
	// error.step); FailureReason is its message.
	ErrorCode   string `gorm:"size:40"`
	ErrorStep   string `gorm:"size:255"`
	LogsFetched bool
	// DispatchAcceptedAt is when GitHub accepted the dispatch (DispatchedAt
	// is when it was first attempted): after it, never dispatch again.
	DispatchAcceptedAt *time.Time
	// RunConclusion is the conclusion GitHub reported for the build's job
	// (or run) once it completed; the build turns terminal after its log
	// and artifact are resolved.
	RunConclusion string `gorm:"size:32"`
	// StepLogMark remembers which job step events were logged: 2*step
	// number, +1 once the step finished.
	StepLogMark int `gorm:"not null;default:0"`
	// ProgressStep of ProgressSteps is the job step running (or the last
	// one started), by position, named ProgressName; 0 of 0 while unknown.
	ProgressStep  int    `gorm:"not null;default:0"`
	ProgressSteps int    `gorm:"not null;default:0"`
	ProgressName  string `gorm:"size:255;not null;default:''"`

	// Artifact, once resolved.
	ArtifactAssetID     *int64
	ArtifactName        string `gorm:"size:255"`
	ArtifactSize        *int64
	ArtifactSHA256      string `gorm:"size:64"`
	ArtifactContentType string `gorm:"size:200"`
	ArtifactDownloadURL string `gorm:"size:1024"` // browser_download_url
	RepoPrivate         bool
	// SupersededBy names the later build of the same project, target and
	// version whose installer replaced this build's asset on the release.
	SupersededBy *string `gorm:"size:40"`
	// ReleaseID names the release this build is a target of (nil for a
	// build triggered on its own).
	ReleaseID *string `gorm:"size:40;index"`

	// LogSeq is the sequence number of the build's last log entry.
	LogSeq int64 `gorm:"not null;default:0"`
}

// BuildLogEntry is one line of a build's log, ordered by Seq within a build.
type BuildLogEntry struct {
	BuildID   string    `gorm:"primaryKey;size:40"`
	Seq       int64     `gorm:"primaryKey;autoIncrement:false"`
	Timestamp time.Time `gorm:"not null"`
	Level     string    `gorm:"size:16;not null"`
	Message   string    `gorm:"type:text;not null"`
}

// BuildTransition records one status change of a build.
type BuildTransition struct {
	ID         int64  `gorm:"primaryKey;autoIncrement"`
	BuildID    string `gorm:"size:40;not null;index"`
	FromStatus string `gorm:"size:16"`
	ToStatus   string `gorm:"size:16;not null"`
	Reason     string `gorm:"type:text"`
	At         time.Time
}

// IdempotencyKey remembers the build created for an Idempotency-Key header,
// scoped to a project, for 24 hours.
type IdempotencyKey struct {
	ProjectID   string `gorm:"primaryKey;size:40"`
	Key         string `gorm:"primaryKey;size:255"`
	RequestHash string `gorm:"size:64;not null"`
	BuildID     string `gorm:"size:40;not null"`
	CreatedAt   time.Time
}

// WebhookDelivery is a GitHub webhook delivery, recorded by its
// X-GitHub-Delivery id so a redelivery has no effect.
type WebhookDelivery struct {
	DeliveryID  string `gorm:"primaryKey;size:64"`
	ID          string `gorm:"size:40;uniqueIndex"` // wh_<ulid>
	Event       string `gorm:"size:64;not null"`
	Action      string `gorm:"size:64"`
	HookID      string `gorm:"size:32"`
	ReceivedAt  time.Time
	ProcessedAt *time.Time
	Payload     []byte
}

// Setting is a small persisted key/value, e.g. what the engine learned about
// a GitHub server (GHES without return_run_details).
type Setting struct {
	Key       string `gorm:"primaryKey;size:200"`
	Value     string `gorm:"type:text"`
	UpdatedAt time.Time
}

// All lists every model, in migration order.
func All() []any {
	return []any{&Project{}, &APIKey{}, &Build{}, &BuildLogEntry{}, &BuildTransition{}, &IdempotencyKey{}, &WebhookDelivery{}, &Setting{},
		&Event{}, &Webhook{}, &EventDelivery{}, &Release{}, &ReleaseTransition{}, &ReleaseFile{}, &Replica{}}
}
