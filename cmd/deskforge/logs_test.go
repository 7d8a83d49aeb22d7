package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const logsSample = "\ufeff2024-01-20T10:01:00.1234567Z ##[group]Run cargo build\n" +
	"2024-01-20T10:01:00.2000000Z \x1b[1m\x1b[92m   Compiling\x1b[0m serde v1.0.219\n" +
	"2024-01-20T10:01:00.3000000Z ##[endgroup]\n" +
	"2024-01-20T10:01:59.9999999Z ##[warning]Node.js 16 is deprecated\n" +
	"2024-01-20T10:02:30.0000000Z   path: target/\n" +
	"~/.cargo/registry/\n" +
	"2024-01-20T10:15:00.0000000Z ##[error]Process completed with exit code 1.\n"

// runLogsTest runs `deskforge logs args...` with stdin and returns stdout and stderr.
func runLogsTest(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := runLogsWithStdin(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func decodeLogLines(t *testing.T, out string) []logLine {
	t.Helper()
	var lines []logLine
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var l logLine
		require.NoError(t, dec.Decode(&l))
		lines = append(lines, l)
	}
	return lines
}

func TestLogsParse(t *testing.T) {
	t.Parallel()

	file := filepath.Join(t.TempDir(), "job.log")
	require.NoError(t, os.WriteFile(file, []byte(logsSample), 0o600))

	all := []logLine{
		{"2024-01-20T10:01:00Z", "info", "Run cargo build"},
		{"2024-01-20T10:01:00Z", "info", "   Compiling serde v1.0.219"},
		{"2024-01-20T10:01:59Z", "warning", "Node.js 16 is deprecated"},
		{"2024-01-20T10:02:30Z", "info", "  path: target/\n~/.cargo/registry/"},
		{"2024-01-20T10:15:00Z", "error", "Process completed with exit code 1."},
	}
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  []logLine
	}{
		{"file", "", []string{"parse", file}, all},
		{"stdin", logsSample, []string{"parse", "-"}, all},
		{"level warning", logsSample, []string{"parse", "--level", "warning", "-"}, []logLine{all[2], all[4]}},
		{"level error", "", []string{"parse", "--level=error", file}, all[4:]},
		{"level info keeps all", "", []string{"parse", "-level", "info", file}, all},
		{"empty input", "", []string{"parse", "-"}, nil},
		{"no timestamp", "plain line\n", []string{"parse", "-"}, []logLine{{"", "info", "plain line"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, err := runLogsTest(t, tt.stdin, tt.args...)
			require.NoError(t, err)
			require.Empty(t, stderr)
			require.Equal(t, tt.want, decodeLogLines(t, stdout))
			require.NotContains(t, stdout, `\u001b`)
		})
	}
}

func TestLogsParseOutputFormat(t *testing.T) {
	t.Parallel()

	stdout, _, err := runLogsTest(t, "2024-01-20T10:01:00.5Z a <b> & c\nplain\n", "parse", "-")
	require.NoError(t, err)
	require.Equal(t, `{"timestamp":"2024-01-20T10:01:00Z","level":"info","message":"a <b> & c\nplain"}`+"\n", stdout)

	stdout, _, err = runLogsTest(t, "first\n", "parse", "-")
	require.NoError(t, err)
	require.Equal(t, `{"level":"info","message":"first"}`+"\n", stdout, "no timestamp field when the log gave none")
}

// TestLogsParseRealLog checks that the command prints exactly the parser's golden output for the
// real job log.
func TestLogsParseRealLog(t *testing.T) {
	t.Parallel()

	dir := filepath.Join("..", "..", "workflows", "joblog", "testdata")
	want, err := os.ReadFile(filepath.Join(dir, "ubuntu-24.04-cargo-error.golden.jsonl"))
	require.NoError(t, err)
	stdout, _, err := runLogsTest(t, "", "parse", filepath.Join(dir, "ubuntu-24.04-cargo-error.txt"))
	require.NoError(t, err)
	require.Equal(t, string(want), stdout)
	require.Contains(t, stdout, `"level":"error","message":"Process completed with exit code 1."`)
}

func TestLogsUsage(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name       string
		args       []string
		wantErr    error
		wantStdout string
		wantStderr string
	}{
		{"help", []string{"--help"}, nil, "Usage: deskforge logs parse", ""},
		{"parse help", []string{"parse", "-h"}, nil, "Usage: deskforge logs parse", ""},
		{"no command", nil, errUsage, "", "Usage: deskforge logs parse"},
		{"unknown command", []string{"tail"}, errUsage, "", `unknown command "tail"`},
		{"no file", []string{"parse"}, errUsage, "", "want one FILE"},
		{"two files", []string{"parse", "a", "b"}, errUsage, "", "got 2 arguments"},
		{"unknown flag", []string{"parse", "--follow", "-"}, errUsage, "", "flag provided but not defined: -follow"},
		{"bad level", []string{"parse", "--level", "fatal", "-"}, errUsage, "", `--level must be one of debug, info, warning, error, not "fatal"`},
		{"success is no filter level", []string{"parse", "--level", "success", "-"}, errUsage, "", "--level must be one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, err := runLogsTest(t, "", tt.args...)
			require.Equal(t, tt.wantErr, err)
			if tt.wantStdout == "" {
				require.Empty(t, stdout)
			} else {
				require.Contains(t, stdout, tt.wantStdout)
			}
			if tt.wantStderr == "" {
				require.Empty(t, stderr)
			} else {
				require.Contains(t, stderr, tt.wantStderr)
			}
		})
	}
}

func TestLogsParseErrors(t *testing.T) {
	t.Parallel()

	_, _, err := runLogsTest(t, "", "parse", filepath.Join(t.TempDir(), "missing.log"))
	require.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorContains(t, err, "open job log")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout bytes.Buffer
	err = runLogsWithStdin(ctx, []string{"parse", "-"}, strings.NewReader(logsSample), &stdout, &bytes.Buffer{})
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, stdout.String())
}
