package ghsim

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/deskforge/deskforge/templates"
)

// ANSI escapes as cargo and friends print them on GitHub's runners.
const (
	ansiReset     = "\x1b[0m"
	ansiBold      = "\x1b[1m"
	ansiBoldGreen = "\x1b[1m\x1b[92m"
	ansiBoldRed   = "\x1b[1m\x1b[91m"
	ansiBoldBlue  = "\x1b[1m\x1b[94m"
	ansiBoldCyan  = "\x1b[1m\x1b[96m"
	ansiYellow    = "\x1b[33m"
)

// logTimeFormat is GitHub's log timestamp: RFC 3339 with seven fractional
// digits.
const logTimeFormat = "2006-01-02T15:04:05.0000000Z"

// crates are the dependencies the simulated build "compiles".
var crates = []string{
	"proc-macro2 v1.0.106", "unicode-ident v1.0.24", "quote v1.0.44", "cfg-if v1.0.4", "serde v1.0.228",
	"syn v2.0.116", "memchr v2.8.0", "once_cell v1.21.3", "libc v0.2.180", "log v0.4.29",
	"serde_json v1.0.145", "tokio v1.49.0", "url v2.5.8", "http v1.4.0", "tao v0.34.5",
	"wry v0.53.5", "tauri-utils v2.8.1", "tauri-build v2.5.3", "tauri-runtime v2.9.2", "tauri-runtime-wry v2.9.3",
	"tauri-macros v2.5.2", "tauri v2.9.5",
}

type logBuilder struct {
	b bytes.Buffer
}

// lines writes entries spread evenly between start and end. An entry with
// newlines is a multi-line message: only its first line gets a timestamp.
func (l *logBuilder) lines(start, end time.Time, entries []string) {
	if len(entries) == 0 {
		return
	}
	span := end.Sub(start)
	if span < 0 {
		span = 0
	}
	for i, e := range entries {
		at := start.Add(span * time.Duration(i) / time.Duration(len(entries)))
		// Deterministic jitter, so the 7-digit fractions look like the
		// runner's; the varying part stays below the per-line increment, so
		// lines stay in order.
		at = at.Add(time.Duration(i)*1300*time.Nanosecond + time.Duration((i*7919)%13)*100*time.Nanosecond).Truncate(100 * time.Nanosecond)
		first, rest, multi := strings.Cut(e, "\n")
		l.b.WriteString(at.UTC().Format(logTimeFormat))
		l.b.WriteByte(' ')
		l.b.WriteString(first)
		l.b.WriteByte('\n')
		if multi {
			l.b.WriteString(rest)
			l.b.WriteByte('\n')
		}
	}
}

type runnerOS struct {
	name, version, image, workdir, shell, git string
}

func osFor(platform, label string) runnerOS {
	switch platform {
	case "mac":
		return runnerOS{"macOS", "15.7.2\n24G325", label, "/Users/runner/work", "/bin/bash -e {0}", "/opt/homebrew/bin/git"}
	case "windows":
		return runnerOS{"Microsoft Windows Server 2025", "10.0.26100\nDatacenter", label, `D:\a`, `C:\Program Files\PowerShell\7\pwsh.EXE -command ". '{0}'"`, `"C:\Program Files\Git\bin\git.exe"`}
	}
	return runnerOS{"Ubuntu", "24.04.3\nLTS", label, "/home/runner/work", "/usr/bin/bash -e {0}", "/usr/bin/git"}
}

// jobLog renders a completed job's raw log in GitHub's format: BOM, 7-digit
// timestamps, groups, commands, ANSI colours, multi-line messages whose
// continuation lines carry no timestamp, cargo's "Compiling" lines and, on
// failure, "##[error]Process completed with exit code 1.".
func (s *Sim) jobLog(j *job) []byte {
	rn := j.run
	in := rn.inputs
	platform, arch, version := in[templates.InputPlatform], in[templates.InputArch], in[templates.InputVersion]
	label := strings.Join(j.labels, ",")
	osx := osFor(platform, label)
	slug := templates.AppSlug(j.config.Name)
	target := templates.RustTarget(platform, arch)
	tag := templates.ReleaseTag(version)
	dir := osx.workdir + "/" + rn.repo.name + "/" + rn.repo.name
	if platform == "windows" {
		dir = osx.workdir + `\` + rn.repo.name + `\` + rn.repo.name
	}
	l := &logBuilder{}
	l.b.WriteString("\ufeff")
	for i, st := range j.steps {
		if st.conclusion == "skipped" || st.startedAt.IsZero() {
			continue
		}
		var entries []string
		switch i {
		case 0:
			entries = []string{
				"Current runner version: '2.331.0'",
				"Runner name: '" + j.runnerName + "'",
				"##[notice]This job ran on the DeskForge GitHub simulator: GitHub is simulated and nothing was compiled.",
				"##[group]Runner Image Provisioner", "Hosted Compute Agent", "Version: 20260123.484", "Azure Region: westus3", "##[endgroup]",
				"##[group]Operating System", osx.name, osx.version, "##[endgroup]",
				"##[group]Runner Image", "Image: " + osx.image, "Version: 20260209.23.1", "##[endgroup]",
				"##[group]GITHUB_TOKEN Permissions", "Contents: write", "Metadata: read", "##[endgroup]",
				"Secret source: Actions",
				"Prepare workflow directory",
				"Prepare all required actions",
				"Getting action download info",
				"Download action repository 'actions/checkout@v4' (SHA:11bd71901bbe5b1630ceea73d27597364c9af683)",
				"Download action repository 'dtolnay/rust-toolchain@stable' (SHA:631a55b12751854ce901bb631d5902ceb48146f7)",
				"Download action repository 'actions/cache@v4' (SHA:0057852bfaa89a56745cba8c7296529d2fc39830)",
				"Complete job name: " + j.name,
			}
		case 1:
			entries = []string{
				"##[group]Run actions/checkout@v4",
				"with:", "  repository: " + rn.repo.fullName(), "  token: ***", "  ssh-strict: true", "  fetch-depth: 1", "  clean: true",
				"##[endgroup]",
				"Syncing repository: " + rn.repo.fullName(),
				"##[group]Getting Git version info",
				"Working directory is '" + dir + "'",
				"[command]" + osx.git + " version",
				"git version 2.52.0",
				"##[endgroup]",
				"[command]" + osx.git + " -c protocol.version=2 fetch --no-tags --prune --no-recurse-submodules --depth=1 origin +" + rn.headSHA + ":refs/remotes/origin/" + rn.branch,
				"[command]" + osx.git + " checkout --progress --force -B " + rn.branch + " refs/remotes/origin/" + rn.branch,
				"Switched to a new branch '" + rn.branch + "'",
				"[command]" + osx.git + " log -1 --format=%H",
				rn.headSHA,
			}
		case 2:
			entries = []string{
				"##[group]Run dtolnay/rust-toolchain@stable",
				"with:", "  toolchain: stable", "  targets: " + target,
				"##[endgroup]",
				"##[command]rustup toolchain install stable --target " + target + " --profile minimal --no-self-update",
				ansiBold + "info:" + ansiReset + " syncing channel updates for 'stable-x86_64-unknown-linux-gnu'",
				"rustc 1.93.1 (01f6ddf75 2026-02-11)",
				"##[group]Run actions/cache@v4",
				"with:",
				"  path: ~/.cargo/registry/index/\n~/.cargo/registry/cache/\n~/.cargo/git/db/\nsrc-tauri/target/\n",
				"  key: " + platform + "-" + arch + "-cargo-" + rn.headSHA[:12],
				"##[endgroup]",
				"Cache not found for input keys: " + platform + "-" + arch + "-cargo-" + rn.headSHA[:12],
				"##[warning]Node.js 20 actions are deprecated. Please update the following actions to use Node.js 24: actions/cache@v4.",
			}
			if platform == "linux" {
				entries = append(entries,
					"##[group]Run sudo apt-get update && sudo apt-get install -y libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev patchelf",
					"shell: "+osx.shell, "##[endgroup]",
					"Setting up libwebkit2gtk-4.1-dev:amd64 (2.50.4-0ubuntu0.24.04.1) ...")
			}
		case 3:
			entries = s.buildLines(j, osx, slug, target, version, dir)
		case 4:
			entries = []string{
				"##[group]Run gh release upload \"" + tag + "\" \"dist/" + j.assetName + "\"",
				"gh release view \"" + tag + "\" >/dev/null 2>&1 || gh release create \"" + tag + "\" --draft --title \"" + tag + "\"\n" +
					"gh release upload \"" + tag + "\" \"dist/" + j.assetName + "\" \"dist/" + j.assetName + ".sha256\"",
				"shell: " + osx.shell, "env:", "  GH_TOKEN: ***",
				"##[endgroup]",
			}
			switch {
			case j.outcome == OutcomeNoAsset:
				entries = append(entries, "No installer found in dist/; nothing to upload.",
					"##[warning]No files were found with the provided path: dist/"+j.assetName+". No artifacts will be uploaded.")
			case j.assetID != 0:
				if j.releaseCreated {
					entries = append(entries, "Created draft release "+tag)
				}
				entries = append(entries, fmt.Sprintf("Uploaded %s (%.1f KiB) %s", j.assetName, float64(j.assetSize)/1024, j.assetDigest))
			}
		case 5:
			entries = []string{
				"Post job cleanup.",
				"[command]" + osx.git + " version",
				"git version 2.52.0",
				"[command]" + osx.git + " config --local --name-only --get-regexp core\\.sshCommand",
				"Cleaning up orphan processes",
			}
		}
		if st.conclusion == "cancelled" {
			entries = append(entries[:len(entries)/2], "##[error]The operation was canceled.")
		}
		l.lines(st.startedAt, st.completedAt, entries)
	}
	return l.b.Bytes()
}

func (s *Sim) buildLines(j *job, osx runnerOS, slug, target, version, dir string) []string {
	ext := templates.Extension(j.run.inputs[templates.InputPlatform])
	cmd := "npm run tauri build -- --target " + target + " --bundles " + strings.ToLower(ext)
	out := []string{
		"##[group]Run " + cmd,
		cmd,
		"shell: " + osx.shell, "env:", "  CARGO_TERM_COLOR: always", "  CARGO_INCREMENTAL: 0",
		"##[endgroup]",
	}
	switch j.reason {
	case failConfig:
		return append(out,
			ansiBoldRed+"Error"+ansiReset+": the config input is not valid JSON: "+j.configErr.Error(),
			"##[error]Process completed with exit code 1.")
	case failPlatform:
		return append(out,
			ansiBoldRed+"Error"+ansiReset+fmt.Sprintf(": unsupported platform/arch %q/%q", j.run.inputs[templates.InputPlatform], j.run.inputs[templates.InputArch]),
			"##[error]Process completed with exit code 1.")
	}
	out = append(out, ansiBold+"     Running"+ansiReset+" beforeBuildCommand `npm run build`")
	n := len(crates)
	if j.outcome == OutcomeHangInProgress {
		n = n / 2
	}
	for _, c := range crates[:n] {
		out = append(out, ansiBoldGreen+"   Compiling"+ansiReset+" "+c)
	}
	if j.outcome == OutcomeFailure {
		return append(out,
			ansiBoldGreen+"   Compiling"+ansiReset+" "+slug+" v"+version+" ("+dir+"/src-tauri)",
			ansiBoldRed+"error[E0425]"+ansiReset+ansiBold+": cannot find value `window_config` in this scope"+ansiReset,
			"   "+ansiBoldBlue+"--> "+ansiReset+"src/main.rs:42:17\n    "+ansiBoldBlue+"|"+ansiReset+"\n"+
				ansiBoldBlue+"42"+ansiReset+"  "+ansiBoldBlue+"|"+ansiReset+"         .inner_size(window_config.width, window_config.height)\n    "+
				ansiBoldBlue+"|"+ansiReset+"                 "+ansiBoldRed+"^^^^^^^^^^^^^"+ansiReset+" "+ansiBoldRed+"not found in this scope"+ansiReset,
			ansiBoldCyan+"help"+ansiReset+": a local variable with a similar name exists: `window_cfg`",
			ansiBold+"For more information about this error, try `rustc --explain E0425`."+ansiReset,
			ansiBoldRed+"error"+ansiReset+": could not compile `"+slug+"` (bin \""+slug+"\") due to 1 previous error",
			ansiYellow+"failed to build app: failed to build app"+ansiReset,
			"##[error]Process completed with exit code 1.")
	}
	return append(out,
		ansiBoldGreen+"   Compiling"+ansiReset+" "+slug+" v"+version+" ("+dir+"/src-tauri)",
		ansiBoldGreen+"    Finished"+ansiReset+" `release` profile [optimized] target(s) in 2m 03s",
		ansiBoldGreen+"    Bundling"+ansiReset+" "+j.assetName+" ("+dir+"/src-tauri/target/"+target+"/release/bundle)",
		ansiBoldGreen+"    Finished"+ansiReset+" 1 bundle at:\n        "+dir+"/src-tauri/target/"+target+"/release/bundle/"+strings.ToLower(ext)+"/"+j.assetName,
		"mv src-tauri/target/"+target+"/release/bundle/*/*."+ext+" dist/"+j.assetName,
	)
}

// serveSignedLog serves a job log behind its signed URL, as text/plain.
func (s *Sim) serveSignedLog(w http.ResponseWriter, r *http.Request, p params) {
	id, _ := p.int64("job_id")
	if !s.checkSignature(w, r, signedLogsPath, id) {
		return
	}
	s.mu.Lock()
	j := s.jobs[id]
	var body []byte
	if j != nil && j.status == statusCompleted {
		body = s.jobLog(j)
	}
	s.mu.Unlock()
	if body == nil {
		signedError(w, "BlobNotFound", "The specified blob does not exist.")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	_, _ = w.Write(body)
}
