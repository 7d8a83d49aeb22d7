package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/server"
)

const projectUsage = `Usage: deskforge project <create|list|show> [flags]

Creates, lists and shows projects directly in the database (no server or API key needed).

  create   create a project and print it as JSON
  list     list projects, newest first
  show ID  print one project as JSON

Run 'deskforge project <command> --help' for its flags. Each reads DESKFORGE_DATABASE_URL.
`

func runProject(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "project", args, stdout, stderr, projectUsage, map[string]subcommandFunc{
		"create": runProjectCreate,
		"list":   runProjectList,
		"show":   runProjectShow,
	})
}

func runProjectCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("project create", flag.ContinueOnError)
	cf := registerConfig(fs, os.Getenv, groupDatabase, groupLog)
	var (
		name       = fs.String("name", "", "app name (required)")
		platforms  = fs.String("platforms", "", "comma-separated platforms to build: mac, windows, linux (required)")
		url        = fs.String("url", "", "web app URL, built from the server's builder repository (or use --repository)")
		repository = fs.String("repository", "", "owner/name of the app's own repository (or use --url)")
		workflow   = fs.String("workflow", "", "workflow file in --repository (default deskforge.yml)")
		ref        = fs.String("ref", "", "branch or tag of --repository to build (default main)")
		version    = fs.String("version", "", "default version of builds (semantic version, e.g. 1.0.0)")
		author     = fs.String("author", "", "author shown in the app's metadata")
		appID      = fs.String("app-id", "", "reverse-DNS app identifier, e.g. com.example.myapp")
		width      = fs.Int("window-width", models.DefaultWindowWidth, "window width in pixels (200-10000)")
		height     = fs.Int("window-height", models.DefaultWindowHeight, "window height in pixels (200-10000)")
		resizable  = fs.Bool("resizable", true, "whether the window can be resized")
		autoUpdate = fs.Bool("auto-update", false, "enable the auto-update feature")
		tray       = fs.Bool("tray", false, "enable the tray icon feature")
		menuBar    = fs.Bool("menu-bar", false, "enable the menu bar feature")
	)
	fs.Usage = usageFunc(fs, "deskforge project create --name NAME --platforms LIST (--url URL | --repository OWNER/NAME) [flags]",
		"Creates a project in the database and prints it as JSON (the API's shape).")
	if done, err := parseFlags(fs, args, stdout, stderr); done {
		return err
	}
	if err := noArgs(fs, stderr); err != nil {
		return err
	}
	cfg, err := cf.load(false)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	in := server.ProjectInput{
		Name: name, URL: url, Repository: repository, Workflow: workflow, Ref: ref, Version: version,
		Author: author, AppID: appID,
		Window:   &server.WindowInput{Width: width, Height: height, Resizable: resizable},
		Features: &server.FeaturesInput{AutoUpdate: autoUpdate, Tray: tray, MenuBar: menuBar},
	}
	if *platforms != "" {
		list := strings.Split(*platforms, ",")
		for i := range list {
			list[i] = strings.TrimSpace(list[i])
		}
		in.Platforms = &list
	}
	p, err := in.NewProject()
	if err != nil {
		return flagError(err)
	}
	store, closeStore, err := openStore(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	if err := store.CreateProject(ctx, &p); err != nil {
		return flagError(err)
	}
	return printJSON(stdout, server.ProjectJSON(p))
}

func runProjectList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("project list", flag.ContinueOnError)
	cf := registerConfig(fs, os.Getenv, groupDatabase, groupLog)
	asJSON := fs.Bool("json", false, "print JSON lines instead of a table")
	fs.Usage = usageFunc(fs, "deskforge project list [flags]", "Lists every project, newest first.")
	if done, err := parseFlags(fs, args, stdout, stderr); done {
		return err
	}
	if err := noArgs(fs, stderr); err != nil {
		return err
	}
	store, closeStore, err := openStoreFromFlags(ctx, cf, stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if !*asJSON {
		fmt.Fprintln(tw, "ID\tNAME\tPLATFORMS\tSOURCE\tVERSION")
	}
	cursor := ""
	for {
		projects, next, err := store.ListProjects(ctx, models.ProjectFilter{Limit: 200, Cursor: cursor})
		if err != nil {
			return err
		}
		for _, p := range projects {
			if *asJSON {
				data, _ := json.Marshal(server.ProjectJSON(p))
				fmt.Fprintln(stdout, string(data))
				continue
			}
			source := p.URL
			if !p.IsWebApp() {
				source = p.Repository + " " + p.Workflow + "@" + p.Ref
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.ID, p.Name, p.Platforms, source, p.Version)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	return tw.Flush()
}

func runProjectShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("project show", flag.ContinueOnError)
	cf := registerConfig(fs, os.Getenv, groupDatabase, groupLog)
	fs.Usage = usageFunc(fs, "deskforge project show [flags] PROJECT_ID", "Prints one project as JSON (the API's shape).")
	if done, err := parseFlags(fs, args, stdout, stderr); done {
		return err
	}
	if err := requireOneArg(fs, stderr, "project id (proj_…)"); err != nil {
		return err
	}
	store, closeStore, err := openStoreFromFlags(ctx, cf, stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	p, err := store.GetProject(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	return printJSON(stdout, server.ProjectJSON(p))
}

// flagError rewrites a validation error's API field name as the flag that
// sets it.
func flagError(err error) error {
	var fe *models.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	flags := map[string]string{
		"name": "--name", "url": "--url", "author": "--author", "version": "--version", "appId": "--app-id",
		"platforms": "--platforms", "window.width": "--window-width", "window.height": "--window-height",
		"repository": "--repository", "workflow": "--workflow", "ref": "--ref", "role": "--admin/--project",
		"projectId": "--project", "events": "--events", "description": "--description",
	}
	if f, ok := flags[fe.Field]; ok {
		return fmt.Errorf("%s: %s", f, fe.Message)
	}
	return err
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
