// Package templates holds the GitHub Actions workflow templates DeskForge
// dispatches (embedded with go:embed) and the Go side of their contract:
// input names, run-name, asset naming and the runner table.
package templates

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.yml
var files embed.FS

// InstallPath is where `deskforge template install` writes a template in a
// repository.
const InstallPath = ".github/workflows/deskforge.yml"

// Names lists the embedded templates by name (file name without .yml), sorted.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yml"))
	}
	sort.Strings(names)
	return names
}

// Get returns the YAML of the template called name ("webapp", "tauri-app",
// "electron-app"; a ".yml" suffix is accepted).
func Get(name string) ([]byte, error) {
	name = strings.TrimSuffix(name, ".yml")
	b, err := files.ReadFile(name + ".yml")
	if err != nil {
		return nil, fmt.Errorf("template %q: unknown (have %s)", name, strings.Join(Names(), ", "))
	}
	return b, nil
}

// FS exposes the embedded templates as a file system (file names end in .yml).
func FS() fs.FS { return files }
