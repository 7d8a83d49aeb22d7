package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/server"
)

//nolint:gosec // G101: usage text that mentions keys, not a credential
const apikeyUsage = `Usage: deskforge apikey <create|list|revoke> [flags]

Creates, lists and revokes API keys directly in the database (no server needed): this is how the first admin key
is made.

  create     create a key and print it once (only its SHA-256 is stored)
  list       list keys (never the keys themselves)
  revoke ID  revoke a key at once

Run 'deskforge apikey <command> --help' for its flags. Each reads DESKFORGE_DATABASE_URL.
`

func runAPIKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "apikey", args, stdout, stderr, apikeyUsage, map[string]subcommandFunc{
		"create": runAPIKeyCreate,
		"list":   runAPIKeyList,
		"revoke": runAPIKeyRevoke,
	})
}

func runAPIKeyCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("apikey create", flag.ContinueOnError)
	cf := registerConfig(fs, os.Getenv, groupDatabase, groupLog)
	name := fs.String("name", "", "a name to recognise the key by, e.g. ops or ci")
	admin := fs.Bool("admin", false, "create an admin key: manages projects and keys, sees every build")
	project := fs.String("project", "", "create a project key for this project (proj_…): sees and triggers only its builds")
	fs.Usage = usageFunc(fs, "deskforge apikey create (--admin | --project PROJECT_ID) [--name NAME] [flags]",
		"Creates an API key and prints it on stdout, once: store it now, it cannot be shown again.\n"+
			"Use it as: curl -H \"Authorization: Bearer $KEY\" …")
	if done, err := parseFlags(fs, args, stdout, stderr); done {
		return err
	}
	if err := noArgs(fs, stderr); err != nil {
		return err
	}
	if *admin == (*project != "") {
		fmt.Fprint(stderr, "apikey create needs exactly one of --admin or --project PROJECT_ID\n\n")
		fs.SetOutput(stderr)
		fs.Usage()
		return errUsage
	}
	store, closeStore, err := openStoreFromFlags(ctx, cf, stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	params := models.NewAPIKeyParams{Name: *name, Role: models.RoleAdmin}
	if *project != "" {
		params.Role, params.ProjectID = models.RoleProject, *project
	}
	k, plaintext, err := store.CreateAPIKey(ctx, params)
	if err != nil {
		return flagError(err)
	}
	scope := "admin key"
	if k.ProjectID != nil {
		scope = "project key for " + *k.ProjectID
	}
	fmt.Fprintf(stderr, "Created %s %s. This is the only time the key is shown; store it now:\n", scope, k.ID)
	fmt.Fprintln(stdout, plaintext)
	return nil
}

func runAPIKeyList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("apikey list", flag.ContinueOnError)
	cf := registerConfig(fs, os.Getenv, groupDatabase, groupLog)
	project := fs.String("project", "", "list only the keys of this project (proj_…)")
	asJSON := fs.Bool("json", false, "print one JSON object a line (the API's shape) instead of a table")
	fs.Usage = usageFunc(fs, "deskforge apikey list [--project PROJECT_ID] [--json] [flags]",
		"Lists API keys, newest first, with their prefix (the keys themselves are not stored).")
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
	keys, err := store.ListAPIKeys(ctx, *project)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, k := range keys {
			if err := enc.Encode(server.APIKeyJSON(k)); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tPROJECT\tPREFIX\tCREATED\tLAST USED\tREVOKED")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s…\t%s\t%s\t%s\n", k.ID, dash(k.Name), k.Role, dash(deref(k.ProjectID)), k.Prefix,
			k.CreatedAt.UTC().Format("2006-01-02T15:04:05Z"), timeOrDash(k.LastUsedAt), timeOrDash(k.RevokedAt))
	}
	return tw.Flush()
}

func runAPIKeyRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("apikey revoke", flag.ContinueOnError)
	cf := registerConfig(fs, os.Getenv, groupDatabase, groupLog)
	fs.Usage = usageFunc(fs, "deskforge apikey revoke [flags] KEY_ID", "Revokes an API key (key_…); requests with it answer 401 from now on.")
	if done, err := parseFlags(fs, args, stdout, stderr); done {
		return err
	}
	if err := requireOneArg(fs, stderr, "key id (key_…, see 'deskforge apikey list')"); err != nil {
		return err
	}
	store, closeStore, err := openStoreFromFlags(ctx, cf, stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	k, err := store.RevokeAPIKey(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Revoked %s (%s).\n", k.ID, dash(k.Name))
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}
