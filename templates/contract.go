package templates

import (
	"fmt"
	"regexp"
	"strings"
)

// The workflow_dispatch inputs every DeskForge template declares. All are
// strings; every one but InputConfig is required.
const (
	InputBuildID  = "build_id"
	InputPlatform = "platform"
	InputArch     = "arch"
	InputVersion  = "version"
	InputRunner   = "runner"
	InputConfig   = "config"
)

// Input describes one workflow_dispatch input of the contract.
type Input struct {
	Name     string
	Required bool
}

// Inputs lists the contract's inputs in declaration order.
var Inputs = []Input{
	{Name: InputBuildID, Required: true},
	{Name: InputPlatform, Required: true},
	{Name: InputArch, Required: true},
	{Name: InputVersion, Required: true},
	{Name: InputRunner, Required: true},
	{Name: InputConfig, Required: false},
}

// RunNamePrefix starts the display title of every run a template creates. The
// build id follows it, then a space, so RunNameBuildID can recover the id.
const RunNamePrefix = "deskforge "

// RunName is the run-name expression every template declares.
const RunName = "deskforge ${{ inputs.build_id }} ${{ inputs.platform }}-${{ inputs.arch }} v${{ inputs.version }}"

// DisplayTitle is what GitHub renders RunName into for the given inputs.
func DisplayTitle(buildID, platform, arch, version string) string {
	return fmt.Sprintf("%s%s %s-%s v%s", RunNamePrefix, buildID, platform, arch, version)
}

var runNameRe = regexp.MustCompile(`^deskforge (build_[0-9a-z]+)(?:\s|$)`)

// RunNameBuildID extracts the build id from a run's display title, or returns
// "" when the title was not produced by a DeskForge template.
func RunNameBuildID(displayTitle string) string {
	m := runNameRe.FindStringSubmatch(displayTitle)
	if m == nil {
		return ""
	}
	return m[1]
}

// Platforms and architectures the contract knows.
var (
	Platforms = []string{"mac", "windows", "linux"}
	Arches    = []string{"x64", "arm64"}
)

// Extension returns the installer extension (without the dot) built for a
// platform: dmg on mac, msi on windows, AppImage on linux.
func Extension(platform string) string {
	switch platform {
	case "mac":
		return "dmg"
	case "windows":
		return "msi"
	case "linux":
		return "AppImage"
	}
	return ""
}

var slugStrip = regexp.MustCompile(`[^a-z0-9]+`)

// AppSlug turns an app name into the lowercase, dash-separated slug used in
// asset names ("My App!" -> "my-app"). An empty result becomes "app".
func AppSlug(name string) string {
	s := strings.Trim(slugStrip.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if s == "" {
		return "app"
	}
	return s
}

// AssetName is the release asset a template uploads for one build:
// <app-slug>-<version>-<platform>-<arch>.<ext>.
func AssetName(appName, version, platform, arch string) string {
	return fmt.Sprintf("%s-%s-%s-%s.%s", AppSlug(appName), version, platform, arch, Extension(platform))
}

// ProjectAssetName is the asset name of one build of a project:
// <app-slug>-<project-tag>-<version>-<platform>-<arch>.<ext>. The project
// tag (ProjectTag) keeps projects whose names slug alike ("Twin" and
// "twin!") apart on the builder repository they share. Rebuilds of one
// project, version and target use the same name: the later upload
// replaces the earlier one on the release, which DeskForge records as
// superseded.
func ProjectAssetName(projectID, appName, version, platform, arch string) string {
	return AssetName(appName+" "+ProjectTag(projectID), version, platform, arch)
}

// ProjectTag is the short form of a project id in asset names: the last 8
// characters of the id (random bits of its ULID), lower case.
func ProjectTag(projectID string) string {
	_, id, found := strings.Cut(projectID, "_")
	if !found {
		id = projectID
	}
	id = slugStrip.ReplaceAllString(strings.ToLower(id), "")
	return id[max(0, len(id)-8):]
}

// AssetLabel is the label a template gives the asset it uploads for a
// build: "<asset name> (<build id>)". GitHub shows it in place of the file
// name; DeskForge reads the build id back (AssetLabelBuildID) and records
// an asset only when its label names the build.
func AssetLabel(assetName, buildID string) string {
	return assetName + " (" + buildID + ")"
}

var assetLabelRe = regexp.MustCompile(`\((build_[0-9a-z]+)\)$`)

// AssetLabelBuildID returns the build id an asset label names, or "" for a
// label not written by a DeskForge template.
func AssetLabelBuildID(label string) string {
	m := assetLabelRe.FindStringSubmatch(label)
	if m == nil {
		return ""
	}
	return m[1]
}

// UpdaterArtifactName is the Tauri v2 updater artifact built beside the
// installer assetName of platform (with bundle.createUpdaterArtifacts): the
// app bundle as .app.tar.gz on mac, the installer itself (.msi, .AppImage)
// elsewhere. Its signature is uploaded as UpdaterArtifactName + ".sig".
func UpdaterArtifactName(assetName, platform string) string {
	if platform == "mac" {
		return strings.TrimSuffix(assetName, ".dmg") + ".app.tar.gz"
	}
	return assetName
}

// ElectronUpdaterArtifactName is the file electron-updater installs an
// update from, which the Electron template builds and uploads beside the
// installer assetName of platform when the project has
// features.autoUpdate: on mac the app as a .zip (Squirrel.Mac installs no
// .dmg), on windows an NSIS installer .exe (electron-updater's NsisUpdater
// runs NSIS installers only, not the .msi), on linux the AppImage itself.
// The names keep "-<platform>-<arch>", which electron-updater matches
// against the machine's arch when a manifest lists both arches.
func ElectronUpdaterArtifactName(assetName, platform string) string {
	switch platform {
	case "mac":
		return strings.TrimSuffix(assetName, ".dmg") + ".zip"
	case "windows":
		return strings.TrimSuffix(assetName, ".msi") + ".exe"
	}
	return assetName
}

// ReleaseTag is the tag of the release a build's installer is uploaded to.
func ReleaseTag(version string) string { return "v" + version }

// RunnerTable maps "platform/arch" to a GitHub-hosted runner label.
type RunnerTable map[string]string

// DefaultRunners is the runner table used unless the server is configured
// otherwise (labels current in late 2026).
var DefaultRunners = RunnerTable{
	"mac/arm64":     "macos-15",
	"mac/x64":       "macos-15-intel",
	"windows/x64":   "windows-2025",
	"windows/arm64": "windows-11-arm",
	"linux/x64":     "ubuntu-24.04",
	"linux/arm64":   "ubuntu-24.04-arm",
}

// Runner returns the runner label for a platform and arch, or "" if the table
// has none.
func (t RunnerTable) Runner(platform, arch string) string {
	return t[platform+"/"+arch]
}

// RustTarget returns the Rust target triple a template compiles for.
func RustTarget(platform, arch string) string {
	return map[string]string{
		"mac/arm64":     "aarch64-apple-darwin",
		"mac/x64":       "x86_64-apple-darwin",
		"windows/x64":   "x86_64-pc-windows-msvc",
		"windows/arm64": "aarch64-pc-windows-msvc",
		"linux/x64":     "x86_64-unknown-linux-gnu",
		"linux/arm64":   "aarch64-unknown-linux-gnu",
	}[platform+"/"+arch]
}

// BuildConfig is the JSON carried by the "config" input: the project settings
// a template needs to build the app.
type BuildConfig struct {
	Name      string       `json:"name"`
	URL       string       `json:"url,omitempty"`
	Author    string       `json:"author,omitempty"`
	AppID     string       `json:"appId,omitempty"`
	AssetName string       `json:"assetName"`
	Window    WindowConfig `json:"window"`
	Features  Features     `json:"features"`
	// UpdateEndpoint is the DeskForge update endpoint the web-app template
	// writes into the app's Tauri updater config (UpdateEndpoint); set only
	// when Features.AutoUpdate is.
	UpdateEndpoint string `json:"updateEndpoint,omitempty"`
}

// UpdateEndpoint is the URL a Tauri app of the project asks for updates:
// DeskForge's update endpoint, with the placeholders the Tauri v2 updater
// fills in ({{target}}: darwin, windows or linux; {{arch}}: x86_64 or
// aarch64; {{current_version}}).
func UpdateEndpoint(publicURL, projectID string) string {
	return strings.TrimSuffix(publicURL, "/") + "/updates/" + projectID + "/{{target}}/{{arch}}/{{current_version}}"
}

// WindowConfig is the desktop window of a web-app build.
type WindowConfig struct {
	Width     int  `json:"width"`
	Height    int  `json:"height"`
	Resizable bool `json:"resizable"`
}

// Features are the optional desktop features of a build.
type Features struct {
	AutoUpdate bool `json:"autoUpdate"`
	Tray       bool `json:"tray"`
	MenuBar    bool `json:"menuBar"`
}
