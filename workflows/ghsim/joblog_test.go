package ghsim

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/templates"
)

var (
	logTimestamp = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z) `)
	ansiEscape   = regexp.MustCompile("\x1b\\[[0-9;]*m")
)

// logFeatures checks a raw log against GitHub's grammar and reports what it
// contains.
type logFeatures struct {
	bom, ansi, compiling, failureLine bool
	continuation, groups, commands    int
	warnings, errors, notices         int
	first, last                       time.Time
}

func scanLog(t *testing.T, raw []byte) logFeatures {
	t.Helper()
	var f logFeatures
	f.bom = bytes.HasPrefix(raw, []byte("\ufeff"))
	raw = bytes.TrimPrefix(raw, []byte("\ufeff"))
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	open := 0
	var prev time.Time
	lastText := ""
	for sc.Scan() {
		line := sc.Text()
		m := logTimestamp.FindStringSubmatch(line)
		if m == nil {
			require.NotEqual(t, 0, f.groups+f.continuation+len(lastText), "a log cannot start with a continuation line")
			f.continuation++
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		require.NoError(t, err)
		require.False(t, at.Before(prev), "timestamps go forward: %q", line)
		prev = at
		if f.first.IsZero() {
			f.first = at
		}
		f.last = at
		text := strings.TrimPrefix(line, m[0])
		lastText = text
		switch {
		case strings.HasPrefix(text, "##[group]"):
			require.Zero(t, open, "groups do not nest")
			open++
			f.groups++
		case text == "##[endgroup]":
			require.Equal(t, 1, open, "endgroup closes a group")
			open--
		case strings.HasPrefix(text, "##[command]"):
			f.commands++
		case strings.HasPrefix(text, "##[warning]"):
			f.warnings++
		case strings.HasPrefix(text, "##[error]"):
			f.errors++
		case strings.HasPrefix(text, "##[notice]"):
			f.notices++
		}
		if ansiEscape.MatchString(text) {
			f.ansi = true
		}
		if strings.Contains(ansiEscape.ReplaceAllString(text, ""), "   Compiling ") {
			f.compiling = true
		}
		if text == "##[error]Process completed with exit code 1." {
			f.failureLine = true
		}
	}
	require.NoError(t, sc.Err())
	require.Zero(t, open, "every group is closed")
	return f
}

func TestRealLogMatchesTheGrammar(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("testdata", "job-logs", "ubuntu-24.04-cargo-error.txt"))
	require.NoError(t, err)
	f := scanLog(t, raw)
	require.True(t, f.ansi)
	require.True(t, f.compiling)
	require.True(t, f.failureLine)
	require.Positive(t, f.continuation)
	require.Positive(t, f.groups)
}

func (e *env) fetchLog(t *testing.T, runID int64) []byte {
	t.Helper()
	jobs, _, err := e.gh.Actions.ListWorkflowJobs(e.ctx, testOwner, testName, runID, nil)
	require.NoError(t, err)
	u, _, err := e.gh.Actions.GetWorkflowJobLogs(e.ctx, testOwner, testName, jobs.Jobs[0].GetID(), 1)
	require.NoError(t, err)
	resp, err := http.Get(u.String())
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return b
}

func TestJobLogFormat(t *testing.T) {
	t.Parallel()
	e := setup(t, func(o *Options) { o.Scenario = []Rule{{Arch: "arm64", Outcome: OutcomeFailure}} })
	okRun := e.dispatch(t, contractInputs("build_01hx0logok", "linux", "x64", "2.1.0"))
	failRun := e.dispatch(t, contractInputs("build_01hx0logfail", "windows", "arm64", "2.1.0"))
	e.finish()

	okLog := e.fetchLog(t, okRun.WorkflowRunID)
	f := scanLog(t, okLog)
	require.True(t, f.bom, "BOM at the start")
	require.True(t, f.ansi, "ANSI colours")
	require.True(t, f.compiling, "cargo Compiling lines")
	require.Positive(t, f.continuation, "multi-line messages with untimestamped continuation lines")
	require.GreaterOrEqual(t, f.groups, 4)
	require.Positive(t, f.commands)
	require.Positive(t, f.warnings)
	require.Positive(t, f.notices, "the log says GitHub is simulated")
	require.False(t, f.failureLine)
	require.Zero(t, f.errors)
	require.Contains(t, string(okLog), "simulated")
	require.Contains(t, string(okLog), "Uploaded "+templates.AssetName("Acme Notes", "2.1.0", "linux", "x64"))
	require.Contains(t, string(okLog), "Image: ubuntu-24.04")

	runs := e.sim.Runs(testRepo)
	job := runs[0].Jobs[0]
	require.False(t, f.first.Before(job.StartedAt), "log lines fall within the job")
	require.False(t, f.last.After(job.CompletedAt))

	failLog := e.fetchLog(t, failRun.WorkflowRunID)
	f = scanLog(t, failLog)
	require.True(t, f.failureLine, "##[error]Process completed with exit code 1.")
	require.True(t, f.compiling)
	require.Contains(t, string(failLog), "error[E0425]")
	require.NotContains(t, string(failLog), "Uploaded ")
	require.Contains(t, string(failLog), "aarch64-pc-windows-msvc")
}

func TestCancelledJobLog(t *testing.T) {
	t.Parallel()
	e := setup(t)
	d := e.dispatch(t, contractInputs("build_01hx0logcancel", "mac", "arm64", "1.0.0"))
	timing := e.sim.Timing()
	e.clock.Advance(timing.Queued + 3*timing.PerStep + timing.PerStep/2)
	_, err := e.gh.Actions.CancelWorkflowRunByID(e.ctx, testOwner, testName, d.WorkflowRunID)
	require.Error(t, err) // *AcceptedError
	e.finish()
	f := scanLog(t, e.fetchLog(t, d.WorkflowRunID))
	require.Equal(t, 1, f.errors)
	require.Contains(t, string(e.fetchLog(t, d.WorkflowRunID)), "##[error]The operation was canceled.")
}
