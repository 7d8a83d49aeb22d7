package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/server"
)

const webhookUsage = `Usage: deskforge webhook <create|list|show|delete|deliveries|redeliver> [flags]

Manages outbound webhooks directly in the database (no server or API key needed). Deliveries are sent
by 'deskforge serve' (River jobs), signed by the Standard Webhooks specification.

  create                 subscribe a URL to events; prints the endpoint with its secret (shown once)
  list                   list endpoints, newest first
  show ID                print one endpoint as JSON
  delete ID              delete an endpoint and its deliveries
  deliveries ID          list an endpoint's deliveries, newest first
  redeliver ID DELIVERY  send a delivery again (same webhook-id)

Run 'deskforge webhook <command> --help' for its flags. Each reads DESKFORGE_DATABASE_URL.
`

func runWebhook(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "webhook", args, stdout, stderr, webhookUsage, map[string]subcommandFunc{
		"create":     runWebhookCreate,
		"list":       runWebhookList,
		"show":       runWebhookShow,
		"delete":     runWebhookDelete,
		"deliveries": runWebhookDeliveries,
		"redeliver":  runWebhookRedeliver,
	})
}

func runWebhookCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("webhook create", flag.ContinueOnError)
	cf := registerConfig(fs, os.Getenv, groupDatabase, groupLog)
	url := fs.String("url", "", "http(s) URL that receives the events (required)")
	events := fs.String("events", "*", "comma-separated events: "+strings.Join(models.EventTypes, ", ")+", build.*, project.* or *")
	project := fs.String("project", "", "only this project's events (default: every project's)")
	description := fs.String("description", "", "what the endpoint is for")
	fs.Usage = usageFunc(fs, "deskforge webhook create --url URL [--events LIST] [--project ID] [flags]",
		"Subscribes a URL to events and prints the endpoint as JSON with its signing secret (whsec_…), shown once.")
	if done, err := parseFlags(fs, args, stdout, stderr); done {
		return err
	}
	store, closeStore, err := openStoreFromFlags(ctx, cf, stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	var list []string
	for _, e := range strings.Split(*events, ",") {
		if e = strings.TrimSpace(e); e != "" {
			list = append(list, e)
		}
	}
	w, err := store.CreateWebhook(ctx, models.NewWebhookParams{URL: *url, Events: list, ProjectID: *project, Description: *description})
	if err != nil {
		return flagError(err)
	}
	return printJSON(stdout, server.HookJSON(w, true))
}

func runWebhookList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("webhook list", flag.ContinueOnError)
	cf := registerConfig(fs, os.Getenv, groupDatabase, groupLog)
	project := fs.String("project", "", "only this project's endpoints")
	asJSON := fs.Bool("json", false, "print JSON lines instead of a table")
	fs.Usage = usageFunc(fs, "deskforge webhook list [flags]", "Lists webhook endpoints, newest first.")
	if done, err := parseFlags(fs, args, stdout, stderr); done {
		return err
	}
	store, closeStore, err := openStoreFromFlags(ctx, cf, stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if !*asJSON {
		fmt.Fprintln(tw, "ID\tURL\tEVENTS\tPROJECT\tENABLED")
	}
	cursor := ""
	for {
		hooks, next, _, err := store.ListWebhooks(ctx, models.WebhookFilter{ProjectID: *project, Limit: 200, Cursor: cursor})
		if err != nil {
			return err
		}
		for _, w := range hooks {
			if *asJSON {
				data, _ := json.Marshal(server.HookJSON(w, false))
				fmt.Fprintln(stdout, string(data))
				continue
			}
			project := "*"
			if w.ProjectID != nil {
				project = *w.ProjectID
			}
			enabled := "yes"
			if !w.Enabled {
				enabled = "no " + w.DisabledReason
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", w.ID, w.URL, w.Events, project, enabled)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	return tw.Flush()
}

func runWebhookShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return withWebhookID(ctx, "show", "Prints one webhook endpoint as JSON (the API's shape, without the secret).", args, stdout, stderr,
		func(store *models.Store, id string) error {
			w, err := store.GetWebhook(ctx, id)
			if err != nil {
				return err
			}
			return printJSON(stdout, server.HookJSON(w, false))
		})
}

func runWebhookDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return withWebhookID(ctx, "delete", "Deletes a webhook endpoint and its deliveries.", args, stdout, stderr,
		func(store *models.Store, id string) error {
			if err := store.DeleteWebhook(ctx, id); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "Deleted webhook %s.\n", id)
			return nil
		})
}

func runWebhookDeliveries(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return withWebhookID(ctx, "deliveries", "Lists a webhook endpoint's last 50 deliveries, newest first.", args, stdout, stderr,
		func(store *models.Store, id string) error {
			if _, err := store.GetWebhook(ctx, id); err != nil {
				return err
			}
			ds, _, err := store.ListDeliveries(ctx, models.DeliveryFilter{WebhookID: id, Limit: 50})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tEVENT\tTYPE\tSTATUS\tATTEMPTS\tLAST CODE\tNEXT ATTEMPT\tLAST ERROR")
			for _, d := range ds {
				code, next := "-", "-"
				if d.LastStatusCode != nil {
					code = fmt.Sprint(*d.LastStatusCode)
				}
				if d.NextAttemptAt != nil {
					next = d.NextAttemptAt.UTC().Format("2006-01-02T15:04:05Z")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", d.ID, d.EventID, d.EventType, d.Status, d.Attempts, code, next, d.LastError)
			}
			return tw.Flush()
		})
}

func runWebhookRedeliver(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("webhook redeliver", flag.ContinueOnError)
	cf := registerConfig(fs, os.Getenv, groupDatabase, groupLog)
	fs.Usage = usageFunc(fs, "deskforge webhook redeliver [flags] WEBHOOK_ID DELIVERY_ID",
		"Sends a delivery again, with the same webhook-id, through the running server's job workers.")
	if done, err := parseFlags(fs, args, stdout, stderr); done {
		return err
	}
	if fs.NArg() != 2 {
		fmt.Fprintf(stderr, "redeliver needs a webhook id (wh_…) and a delivery id (dlv_…)\n\n")
		fs.SetOutput(stderr)
		fs.Usage()
		return errUsage
	}
	store, closeStore, err := openStoreFromFlags(ctx, cf, stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	d, err := store.Redeliver(ctx, fs.Arg(0), fs.Arg(1))
	if err != nil {
		return err
	}
	return printJSON(stdout, server.HookDeliveryJSON(d))
}

// withWebhookID parses a webhook subcommand taking one endpoint id, opens
// the store and runs fn.
func withWebhookID(ctx context.Context, name, summary string, args []string, stdout, stderr io.Writer, fn func(*models.Store, string) error) error {
	fs := flag.NewFlagSet("webhook "+name, flag.ContinueOnError)
	cf := registerConfig(fs, os.Getenv, groupDatabase, groupLog)
	fs.Usage = usageFunc(fs, "deskforge webhook "+name+" [flags] WEBHOOK_ID", summary)
	if done, err := parseFlags(fs, args, stdout, stderr); done {
		return err
	}
	if err := requireOneArg(fs, stderr, "webhook id (wh_…)"); err != nil {
		return err
	}
	store, closeStore, err := openStoreFromFlags(ctx, cf, stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	return fn(store, fs.Arg(0))
}
