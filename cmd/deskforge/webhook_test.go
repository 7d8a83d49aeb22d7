package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWebhookCommands(t *testing.T) {
	t.Parallel()
	db := "sqlite://" + filepath.Join(t.TempDir(), "hooks.db")
	code, out, errOut := runCommand(t, "project", "create", "--database-url", db, "--name", "App", "--platforms", "mac", "--url", "https://example.com")
	require.Equal(t, 0, code, errOut)
	var project map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &project))

	code, out, errOut = runCommand(t, "webhook", "create", "--database-url", db, "--url", "https://hooks.example.com/df",
		"--events", "build.succeeded, build.failed", "--project", project["id"].(string), "--description", "chat")
	require.Equal(t, 0, code, errOut)
	var hook map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &hook))
	id := hook["id"].(string)
	require.Regexp(t, `^whsec_`, hook["secret"])
	require.Equal(t, []any{"build.succeeded", "build.failed"}, hook["events"])
	require.Equal(t, project["id"], hook["projectId"])

	code, _, errOut = runCommand(t, "webhook", "create", "--database-url", db, "--url", "https://hooks.example.com/df", "--events", "build.exploded")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "--events: events must be taken from")
	code, _, errOut = runCommand(t, "webhook", "create", "--database-url", db, "--url", "gopher://x")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "--url:")

	code, out, errOut = runCommand(t, "webhook", "list", "--database-url", db)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, id)
	require.Contains(t, out, "https://hooks.example.com/df")

	code, out, errOut = runCommand(t, "webhook", "show", "--database-url", db, id)
	require.Equal(t, 0, code, errOut)
	require.NotContains(t, out, "whsec_", "the secret is shown once")

	// A project created by the command line is an event: an endpoint of
	// every project subscribed to * gets a delivery (sent by serve's workers).
	code, out, errOut = runCommand(t, "webhook", "create", "--database-url", db, "--url", "https://hooks.example.com/all")
	require.Equal(t, 0, code, errOut)
	var all map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &all))
	code, _, errOut = runCommand(t, "project", "create", "--database-url", db, "--name", "Two", "--platforms", "linux", "--url", "https://two.example.com")
	require.Equal(t, 0, code, errOut)
	code, out, errOut = runCommand(t, "webhook", "deliveries", "--database-url", db, all["id"].(string))
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "project.created")
	require.Contains(t, out, "pending")
	delivery := strings.Fields(strings.Split(out, "\n")[1])[0]
	require.Regexp(t, `^dlv_`, delivery)

	code, out, errOut = runCommand(t, "webhook", "redeliver", "--database-url", db, all["id"].(string), delivery)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"status": "pending"`)
	code, _, _ = runCommand(t, "webhook", "redeliver", "--database-url", db, all["id"].(string))
	require.Equal(t, 2, code)

	code, out, errOut = runCommand(t, "webhook", "delete", "--database-url", db, id)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "Deleted")
	code, _, errOut = runCommand(t, "webhook", "show", "--database-url", db, id)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "not found")
}
