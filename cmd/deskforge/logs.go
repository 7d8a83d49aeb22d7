package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/deskforge/deskforge/workflows/joblog"
)

const logsUsage = `Usage: deskforge logs parse [--level LEVEL] FILE|-

Parse a raw GitHub Actions job log (the text GitHub serves for a job's logs) with the
parser the server uses, and print one JSON object per entry, one per line:

  {"timestamp":"2024-01-20T10:01:00Z","level":"error","message":"Process completed with exit code 1."}

FILE "-" reads standard input. Timestamps are RFC 3339 in UTC, to the second; entries from
lines before the first timestamped line have no "timestamp". Levels come from the markers:
##[error] and ::error:: give "error", ##[warning] "warning", ##[debug] "debug", everything else
"info"; ##[group] titles are kept, ##[endgroup] lines dropped. ANSI escape codes are removed
and lines without a timestamp are joined to the entry before them.

Flags:
  --level LEVEL   print only entries of LEVEL and above: debug, info, warning, error
                  (default debug: every entry)
`

// runLogs implements `deskforge logs`.
func runLogs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runLogsWithStdin(ctx, args, os.Stdin, stdout, stderr)
}

// runLogsWithStdin is runLogs reading "-" from stdin, so tests can provide it.
func runLogsWithStdin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, logsUsage)
		return errUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, logsUsage)
		return nil
	case "parse":
		return runLogsParse(ctx, args[1:], stdin, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "deskforge logs: unknown command %q\n\n%s", args[0], logsUsage)
		return errUsage
	}
}

// logLine is one entry as printed by `deskforge logs parse`, in the API's format.
type logLine struct {
	Timestamp string `json:"timestamp,omitempty"`
	Level     string `json:"level"`
	Message   string `json:"message"`
}

func runLogsParse(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("logs parse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	level := fs.String("level", joblog.LevelDebug, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, logsUsage)
			return nil
		}
		fmt.Fprint(stderr, logsUsage)
		return errUsage
	}
	minRank := joblog.LevelRank(*level)
	if minRank < 0 || *level == joblog.LevelSuccess {
		fmt.Fprintf(stderr, "deskforge logs parse: --level must be one of debug, info, warning, error, not %q\n", *level)
		return errUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "deskforge logs parse: want one FILE (or - for standard input), got %d arguments\n\n%s", fs.NArg(), logsUsage)
		return errUsage
	}

	in := stdin
	if path := fs.Arg(0); path != "-" {
		f, err := os.Open(path) //nolint:gosec // G304: the log file the user named on the command line
		if err != nil {
			return fmt.Errorf("open job log: %w", err)
		}
		defer f.Close()
		in = f
	}

	out := bufio.NewWriterSize(stdout, 64<<10)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false) // logs are full of <, > and &
	p := joblog.NewParser(in)
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			out.Flush()
			return fmt.Errorf("parse job log: %w", err)
		}
		if joblog.LevelRank(e.Level) < minRank {
			continue
		}
		line := logLine{Level: e.Level, Message: e.Message}
		if !e.Timestamp.IsZero() {
			line.Timestamp = e.Timestamp.UTC().Format(time.RFC3339)
		}
		if err := enc.Encode(line); err != nil {
			return fmt.Errorf("write entries: %w", err)
		}
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("write entries: %w", err)
	}
	return nil
}
