package templates_test

import (
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/templates"
)

// requireTools reports whether missing external tools must fail the tests
// instead of skipping them; .ci/run sets DESKFORGE_REQUIRE_TOOLS=1.
func requireTools() bool { return os.Getenv("DESKFORGE_REQUIRE_TOOLS") != "" }

// externalLinter returns the path of an optional linter actionlint can run on
// the scripts of a workflow, or "" (and logs it) when it is not installed.
func externalLinter(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if requireTools() && name == "shellcheck" {
			t.Fatalf("%s is not installed but DESKFORGE_REQUIRE_TOOLS is set (CI installs it with apt-get)", name)
		}
		t.Logf("%s not installed: its checks are skipped (CI installs it)", name)
		return ""
	}
	return path
}

// TestTemplatesPassActionlint lints every embedded template with actionlint
// (expressions, contexts, runs-on, action inputs, known action versions) and,
// where installed, shellcheck on the bash scripts and pyflakes on Python
// ones. Any finding fails.
func TestTemplatesPassActionlint(t *testing.T) {
	t.Parallel()
	shellcheck := externalLinter(t, "shellcheck")
	pyflakes := externalLinter(t, "pyflakes")
	for _, name := range templates.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			content, err := templates.Get(name)
			require.NoError(t, err)
			linter, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{
				Shellcheck: shellcheck,
				Pyflakes:   pyflakes,
			})
			require.NoError(t, err)
			findings, err := linter.Lint(".github/workflows/"+name+".yml", content, nil)
			require.NoError(t, err)
			var report []string
			for _, f := range findings {
				report = append(report, f.Error())
			}
			require.Empty(t, report, "actionlint findings in %s.yml:\n%s", name, strings.Join(report, "\n"))
		})
	}
}
