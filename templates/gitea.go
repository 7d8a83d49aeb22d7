package templates

import (
	"embed"
	"fmt"
	"strings"
)

// Forge kinds a template may be written for (DESKFORGE_FORGE).
const (
	ForgeGitHub = "github"
	ForgeGitea  = "gitea"
)

// giteaSteps holds the steps the Gitea variants use instead of the GitHub
// templates' (one step each, indented as a step of the job).
//
//go:embed gitea/*.yml
var giteaSteps embed.FS

// giteaVariants are the templates with a Gitea/Forgejo variant: the web-app
// template, which builds in the builder repository. (The app templates
// check out the app's repository with actions/checkout, which a Gitea with
// DEFAULT_ACTIONS_URL=self cannot fetch.)
var giteaVariants = []string{"webapp"}

// giteaEdits says what becomes of a GitHub template's step in the Gitea
// variant: replaced by a file of giteaSteps, or dropped (""). Every other
// step is kept as is, so the variant follows the GitHub template.
var giteaEdits = map[string]string{
	"Set up Node.js":      "gitea/check-node.yml", // uses: actions/setup-node
	"Cache npm downloads": "",                     // uses: actions/cache; a host runner keeps ~/.npm
	"Cache Rust build":    "",                     // uses: Swatinem/rust-cache; a host runner keeps ~/.cargo
	"Upload to release":   "gitea/upload.yml",     // gh api and uploads.github.com; Gitea's API instead
}

const giteaHeader = `# Gitea/Forgejo variant of this template, made by DeskForge from the GitHub one: no step uses
# an action (a Gitea with DEFAULT_ACTIONS_URL=self cannot fetch them from github.com: Node.js comes
# from the runner host and nothing is cached through actions), and the release upload goes through
# Gitea's API with the job token (Gitea's assets have no label). Install it with
#   deskforge template install --forge gitea --repo you/builder --template webapp
`

// GiteaNames lists the templates that have a Gitea/Forgejo variant, sorted.
func GiteaNames() []string { return append([]string(nil), giteaVariants...) }

// GetFor returns the YAML of the template called name for a forge kind:
// ForgeGitHub (or "") as Get, ForgeGitea its Gitea/Forgejo variant
// (ToGitea of the GitHub template).
func GetFor(forge, name string) ([]byte, error) {
	name = strings.TrimSuffix(name, ".yml")
	switch forge {
	case "", ForgeGitHub:
		return Get(name)
	case ForgeGitea:
		known := false
		for _, n := range giteaVariants {
			known = known || n == name
		}
		if !known {
			return nil, fmt.Errorf("template %q has no Gitea variant (have %s)", name, strings.Join(giteaVariants, ", "))
		}
		src, err := Get(name)
		if err != nil {
			return nil, err
		}
		return ToGitea(src)
	}
	return nil, fmt.Errorf("forge %q: use %s or %s", forge, ForgeGitHub, ForgeGitea)
}

// ToGitea turns a GitHub template into its Gitea/Forgejo variant: the steps
// named in giteaEdits are replaced or dropped, every other step is kept.
// It fails when the template has a step that uses an action and has no
// edit, or lacks a step an edit names: the GitHub template changed in a way
// its Gitea variant must follow.
func ToGitea(src []byte) ([]byte, error) {
	const stepsLine, stepMark = "\n    steps:\n", "      - name: "
	head, body, ok := strings.Cut(string(src), stepsLine)
	if !ok || !strings.HasPrefix(body, stepMark) {
		return nil, fmt.Errorf("gitea variant: the template has no job steps at %q", strings.TrimSpace(stepsLine))
	}
	var out strings.Builder
	out.WriteString(giteaHeader)
	out.WriteString(head)
	out.WriteString(stepsLine)
	used := map[string]bool{}
	for _, step := range strings.SplitAfter(body, "\n"+stepMark) {
		// SplitAfter leaves each step's mark at the end of the previous piece.
		step = strings.TrimSuffix(step, stepMark)
		if !strings.HasPrefix(step, stepMark) {
			step = stepMark + step
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(step, stepMark), "\n")
		name = strings.TrimSpace(name)
		file, edited := giteaEdits[name]
		switch {
		case edited:
			used[name] = true
			if file == "" {
				continue
			}
			replacement, err := giteaSteps.ReadFile(file)
			if err != nil {
				return nil, fmt.Errorf("gitea variant: %w", err)
			}
			out.Write(replacement)
			if strings.HasSuffix(step, "\n\n") {
				out.WriteString("\n") // the blank line between steps
			}
		case strings.Contains(step, "\n        uses: "):
			return nil, fmt.Errorf("gitea variant: step %q uses an action and has no Gitea replacement", name)
		default:
			out.WriteString(step)
		}
	}
	for name := range giteaEdits {
		if !used[name] {
			return nil, fmt.Errorf("gitea variant: the template has no step %q to replace", name)
		}
	}
	return []byte(out.String()), nil
}
