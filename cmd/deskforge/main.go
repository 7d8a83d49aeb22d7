// Command deskforge is the DeskForge server and its admin tool.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand of deskforge.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"serve":    {"run the HTTP API and the build engine", runServe},
		"migrate":  {"bring the database schema up to date", runMigrate},
		"project":  {"create, list and show projects", runProject},
		"build":    {"trigger, follow, list and download builds on a server", runBuild},
		"release":  {"release a version to every target, and follow releases", runRelease},
		"apikey":   {"create, list and revoke API keys", runAPIKey},
		"webhook":  {"create, list and inspect outbound webhooks", runWebhook},
		"template": {"list, show and install workflow templates", runTemplate},
		"logs":     {"parse a raw GitHub Actions job log", runLogs},
		"sim":      {"serve the GitHub simulator on its own port (for serve processes in GitHub mode)", runSim},
		"version":  {"print the version", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "deskforge: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	if err := cmd.run(ctx, args[1:], stdout, stderr); err != nil {
		if err == errUsage {
			return exitUsage
		}
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.err != nil {
				fmt.Fprintf(stderr, "deskforge %s: %v\n", args[0], ee.err)
			}
			return ee.code
		}
		fmt.Fprintf(stderr, "deskforge %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "DeskForge turns projects into desktop installers by driving GitHub Actions.")
	fmt.Fprintln(w, "\nUsage: deskforge <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(cmds))
	for name := range cmds {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-10s %s\n", name, cmds[name].summary)
	}
	fmt.Fprintln(w, "\nRun 'deskforge <command> --help' for a command's flags and environment variables.")
}

// subcommandFunc runs one subcommand of a command group.
type subcommandFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// runSubcommand runs the subcommand named by args[0] among subs, printing
// usage on stdout for -h/--help/help, and on stderr (errUsage) when args is
// empty or names no subcommand.
func runSubcommand(ctx context.Context, group string, args []string, stdout, stderr io.Writer, usage string, subs map[string]subcommandFunc) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	run, ok := subs[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "unknown %s command %q\n\n%s", group, args[0], usage)
		return errUsage
	}
	return run(ctx, args[1:], stdout, stderr)
}
