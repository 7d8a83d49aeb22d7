package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/deskforge/deskforge/client"
)

// ANSI sequences of the live views.
const (
	clearLine = "\r\x1b[K"
	colorOff  = "\x1b[0m"
)

var levelColors = map[string]string{
	client.StatusFailed: "\x1b[31m", "error": "\x1b[31m", "warning": "\x1b[33m",
	client.StatusSuccess: "\x1b[32m", "debug": "\x1b[2m", client.StatusCancelled: "\x1b[33m",
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// buildView shows a followed build. On a terminal (tty) one status line
// (status, step n/m, elapsed time) is redrawn in place below the log
// entries; otherwise each change is a plain line, and with logs only the
// entries are printed. With asJSON, log entries are JSON lines and nothing
// else is printed.
type buildView struct {
	w      io.Writer
	tty    bool
	asJSON bool
	logs   bool // following a log: without a terminal, print the entries only
	color  bool
	width  int
	now    func() time.Time

	mu      sync.Mutex
	build   *client.Build
	shown   bool // a status line is on screen
	frame   int
	stopped bool
	done    chan struct{}
}

// newBuildView returns a view writing to w; on a terminal it redraws the
// elapsed time every second until stop. logs says whether log entries are
// followed (without a terminal, the output is then the log alone: status
// lines would corrupt it).
func newBuildView(w io.Writer, tty, asJSON, logs bool) *buildView {
	v := &buildView{w: w, tty: tty && !asJSON, asJSON: asJSON, logs: logs, width: terminalWidth(w), now: time.Now, done: make(chan struct{})}
	v.color = v.tty && os.Getenv("NO_COLOR") == ""
	if v.tty {
		go v.tick()
	}
	return v
}

func (v *buildView) tick() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-v.done:
			return
		case <-t.C:
			v.mu.Lock()
			if !v.stopped && v.build != nil {
				v.frame++
				v.drawStatus()
			}
			v.mu.Unlock()
		}
	}
}

// update shows what changed: new log entries, then the build's state.
func (v *buildView) update(u client.Update) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.stopped {
		return
	}
	for _, e := range u.Logs {
		switch {
		case v.asJSON:
			data, _ := json.Marshal(e)
			fmt.Fprintf(v.w, "%s\n", data)
		case v.tty:
			v.clearStatus()
			fmt.Fprintf(v.w, "%s %s %s\n", e.Timestamp.UTC().Format(time.RFC3339), v.paint(e.Level, "["+e.Level+"]"), e.Message)
		default:
			fmt.Fprintln(v.w, e.String())
		}
	}
	if u.Build != nil {
		v.build = u.Build
		if !v.tty && !v.asJSON && !v.logs {
			fmt.Fprintln(v.w, v.statusText(u.Build, false))
		}
	}
	if v.tty && v.build != nil {
		v.drawStatus()
	}
}

// finish shows the final build.
func (v *buildView) finish(b *client.Build) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.clearStatus()
	v.stopLocked()
	if v.asJSON || (!v.tty && v.logs) {
		return
	}
	line := v.statusText(b, true)
	if v.tty {
		mark := "✓"
		if b.Status != client.StatusSuccess {
			mark = "✗"
		}
		line = v.paint(b.Status, mark) + " " + line
	}
	fmt.Fprintln(v.w, line)
}

// stop ends the live line (leaving it on screen) and the ticker.
func (v *buildView) stop() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.stopLocked()
}

func (v *buildView) stopLocked() {
	if v.stopped {
		return
	}
	v.stopped = true
	close(v.done)
	if v.shown {
		fmt.Fprintln(v.w)
		v.shown = false
	}
}

func (v *buildView) clearStatus() {
	if v.shown {
		fmt.Fprint(v.w, clearLine)
		v.shown = false
	}
}

func (v *buildView) drawStatus() {
	line := spinner[v.frame%len(spinner)] + " " + v.statusText(v.build, false)
	fmt.Fprint(v.w, clearLine+truncate(line, v.width-1))
	v.shown = true
}

// statusText is "build_… building · step 3/6 Build installer · 1m12s" while
// it runs, and the outcome with its duration once final.
func (v *buildView) statusText(b *client.Build, final bool) string {
	parts := []string{b.ID, b.Status}
	if final {
		parts = append(parts, b.Platform+"/"+b.Arch, b.Version)
		if b.Duration != nil {
			parts = append(parts, "in "+(time.Duration(*b.Duration)*time.Second).String())
		}
		if b.Error != nil {
			reason := b.Error.Message
			if b.Error.Step != nil {
				reason = fmt.Sprintf("step %q: %s", *b.Error.Step, reason)
			}
			parts = append(parts, reason)
		}
		return strings.Join(parts, " · ")
	}
	if b.Progress != nil && b.Progress.Steps > 0 {
		parts = append(parts, fmt.Sprintf("step %d/%d %s", b.Progress.Step, b.Progress.Steps, b.Progress.Name))
	}
	if v.tty {
		elapsed := max(v.now().Sub(b.CreatedAt), 0).Truncate(time.Second)
		parts = append(parts, elapsed.String())
	}
	return strings.Join(parts, " · ")
}

func (v *buildView) paint(key, s string) string {
	c, ok := levelColors[key]
	if !v.color || !ok {
		return s
	}
	return c + s + colorOff
}

// truncate cuts s to n runes (for a line that must not wrap).
func truncate(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// terminalWidth is w's width when it is a terminal, else 80.
func terminalWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if width, _, err := term.GetSize(int(f.Fd())); err == nil && width > 0 {
			return width
		}
	}
	return 80
}

// progressBar shows a download's progress on a terminal:
// "[=======>      ]  47%  1.2 MiB / 2.5 MiB  850.0 KiB/s  ETA 2s".
// Without a terminal it prints only notes.
type progressBar struct {
	w     io.Writer
	tty   bool
	now   func() time.Time
	mu    sync.Mutex
	start time.Time
	first int64 // bytes on disk when the bar started (a resumed download)
	drawn time.Time
	done  int64
	total int64
	shown bool
}

func newProgressBar(w io.Writer, tty bool) *progressBar {
	return &progressBar{w: w, tty: tty, now: time.Now, first: -1}
}

// set records progress; the bar is redrawn at most ten times a second.
func (p *progressBar) set(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.first < 0 {
		p.first, p.start = done, now
	}
	p.done, p.total = done, total
	if p.tty && (now.Sub(p.drawn) >= 100*time.Millisecond || done == total) {
		p.drawn = now
		fmt.Fprint(p.w, clearLine+p.line(now))
		p.shown = true
	}
}

// note prints a message line above the bar.
func (p *progressBar) note(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, clearLine)
	}
	fmt.Fprintln(p.w, msg)
	if p.shown {
		fmt.Fprint(p.w, p.line(p.now()))
	}
}

// stop leaves the last state of the bar on its line.
func (p *progressBar) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, clearLine+p.line(p.now())+"\n")
		p.shown = false
	}
}

func (p *progressBar) line(now time.Time) string {
	elapsed := now.Sub(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(p.done-p.first) / elapsed
	}
	speed := formatBytes(int64(rate)) + "/s"
	if p.total <= 0 {
		return fmt.Sprintf("%s  %s", formatBytes(p.done), speed)
	}
	const width = 24
	frac := min(float64(p.done)/float64(p.total), 1)
	filled := int(frac * width)
	bar := strings.Repeat("=", filled)
	if filled < width {
		bar += ">" + strings.Repeat(" ", width-filled-1)
	}
	eta := "-"
	if rate > 0 {
		eta = (time.Duration(float64(p.total-p.done)/rate) * time.Second).Truncate(time.Second).String()
	}
	return fmt.Sprintf("[%s] %3.0f%%  %s / %s  %s  ETA %s", bar, frac*100, formatBytes(p.done), formatBytes(p.total), speed, eta)
}

// formatBytes is a size for people: 512 B, 1.5 KiB, 45.6 MiB.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
