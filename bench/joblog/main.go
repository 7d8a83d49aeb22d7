// Command joblog measures the job-log parser (workflows/joblog) against `wc -l` on the same file.
//
// It generates a realistic raw GitHub Actions job log (timestamps with 7-digit fractions, groups,
// ANSI colours, continuation lines, cargo "Compiling" lines, warnings and errors, a few long lines)
// of the requested size into a temporary file, then measures, best of -runs:
//
//	(a) `wc -l FILE`: wall time and MB/s (the file is in the page cache after generation);
//	(b) the parser over the same file, in a child process: wall time and MB/s; and again with
//	    GOMAXPROCS=1, where the parser works on one goroutine;
//	(c) the parser's peak memory: the child's peak resident set size (getrusage ru_maxrss, the
//	    same figure as VmHWM in /proc/self/status), and runtime.MemStats.Sys at its end (all memory
//	    the Go runtime obtained from the OS, a high-water mark).
//
// Usage:
//
//	go run ./bench/joblog                     # 1 GiB log in $TMPDIR, removed afterwards
//	go run ./bench/joblog -size 200MiB -runs 5
//	go run ./bench/joblog -file /path/to/log  # measure an existing log
//
// MB/s is 10^6 bytes per second.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/deskforge/deskforge/workflows/joblog"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench/joblog:", err)
		os.Exit(1)
	}
}

// childResult is what the parsing child process reports on stdout.
type childResult struct {
	Bytes    int64            `json:"bytes"`
	Entries  int64            `json:"entries"`
	Levels   map[string]int64 `json:"levels"`
	Seconds  float64          `json:"seconds"`
	SysBytes uint64           `json:"sysBytes"`
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("joblog", flag.ContinueOnError)
	sizeFlag := fs.String("size", "1GiB", "size of the generated log (bytes, or with a KiB/MiB/GiB suffix)")
	dir := fs.String("dir", "", "directory for the generated log (default: the system temp dir)")
	file := fs.String("file", "", "measure this existing log instead of generating one")
	keep := fs.Bool("keep", false, "keep the generated log")
	runs := fs.Int("runs", 3, "measurements of each kind; the best is reported")
	seed := fs.Uint64("seed", 1, "random seed of the generator")
	child := fs.String("child-parse", "", "internal: parse FILE and report as JSON")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of one parser run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *child != "" {
		return parseChild(*child, *cpuProfile, stdout)
	}
	size, err := parseSize(*sizeFlag)
	if err != nil {
		return err
	}

	path := *file
	if path == "" {
		f, err := os.CreateTemp(*dir, "joblog-bench-*.log")
		if err != nil {
			return fmt.Errorf("create log file: %w", err)
		}
		path = f.Name()
		if !*keep {
			defer os.Remove(path)
		}
		start := time.Now()
		lines, err := generate(f, size, *seed)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("generate log: %w", err)
		}
		fmt.Fprintf(stdout, "generated %s: %d bytes, %d lines in %.1fs\n", path, size, lines, time.Since(start).Seconds())
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	bytes := st.Size()

	// Warm the page cache so both contenders read from memory.
	if err := exec.CommandContext(ctx, "cat", path).Run(); err != nil {
		return fmt.Errorf("warm page cache: %w", err)
	}

	wcBest, wcCPU := time.Duration(1<<63-1), time.Duration(1<<63-1)
	var wcOut string
	for range *runs {
		cmd := exec.CommandContext(ctx, "wc", "-l", path)
		start := time.Now()
		out, err := cmd.Output()
		d := time.Since(start)
		if err != nil {
			return fmt.Errorf("wc -l: %w", err)
		}
		wcBest, wcOut = min(wcBest, d), strings.Fields(string(out))[0]
		wcCPU = min(wcCPU, cpuTime(cmd.ProcessState))
	}

	self, err := os.Executable()
	if err != nil {
		return err
	}
	par, err := measureParser(ctx, self, path, *runs, *cpuProfile, "")
	if err != nil {
		return err
	}
	seq, err := measureParser(ctx, self, path, *runs, "", "GOMAXPROCS=1")
	if err != nil {
		return err
	}

	mbps := func(d time.Duration) float64 { return float64(bytes) / 1e6 / d.Seconds() }
	fmt.Fprintf(stdout, "file: %d bytes (%.1f MiB), %s lines (wc -l)\n", bytes, float64(bytes)/(1<<20), wcOut)
	fmt.Fprintf(stdout, "parser: %d entries %v\n", par.res.Entries, par.res.Levels)
	fmt.Fprintf(stdout, "(a) wc -l                    best of %d: wall %7.3fs %8.1f MB/s | cpu %7.3fs %8.1f MB/s\n",
		*runs, wcBest.Seconds(), mbps(wcBest), wcCPU.Seconds(), mbps(wcCPU))
	for _, m := range []struct {
		name string
		m    parserRun
	}{{"(b) parser", par}, {"    parser, GOMAXPROCS=1", seq}} {
		fmt.Fprintf(stdout, "%-27s best of %d: wall %7.3fs %8.1f MB/s | cpu %7.3fs %8.1f MB/s | %5.1f %% of wc -l (wall)\n",
			m.name, *runs, m.m.wall.Seconds(), mbps(m.m.wall), m.m.cpu.Seconds(), mbps(m.m.cpu), 100*wcBest.Seconds()/m.m.wall.Seconds())
	}
	fmt.Fprintf(stdout, "    target: parser >= 25 %% of wc -l throughput\n")
	fmt.Fprintf(stdout, "(c) parser peak RSS (ru_maxrss = VmHWM): %.1f MiB, GOMAXPROCS=1: %.1f MiB (target <= 64 MiB); runtime.MemStats.Sys at the end: %.1f MiB\n",
		float64(par.maxRSS)/(1<<20), float64(seq.maxRSS)/(1<<20), float64(par.res.SysBytes)/(1<<20))
	fmt.Fprintf(stdout, "go %s, %s/%s, %d CPUs, GOMAXPROCS %d\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0))
	return nil
}

// parserRun is the best of several parser runs.
type parserRun struct {
	wall, cpu time.Duration
	maxRSS    int64
	res       childResult
}

// measureParser runs the parser in a child process (self -child-parse) runs times, with env added
// to its environment, and keeps the best wall and CPU times and the highest peak RSS.
func measureParser(ctx context.Context, self, path string, runs int, cpuProfile, env string) (parserRun, error) {
	best := parserRun{wall: 1<<63 - 1, cpu: 1<<63 - 1}
	for i := range runs {
		childArgs := []string{"-child-parse", path}
		if i == 0 && cpuProfile != "" {
			childArgs = append(childArgs, "-cpuprofile", cpuProfile)
		}
		cmd := exec.CommandContext(ctx, self, childArgs...)
		cmd.Stderr = os.Stderr
		if env != "" {
			cmd.Env = append(os.Environ(), env)
		}
		start := time.Now()
		out, err := cmd.Output()
		d := time.Since(start)
		if err != nil {
			return best, fmt.Errorf("parse child: %w", err)
		}
		var res childResult
		if err := json.Unmarshal(out, &res); err != nil {
			return best, fmt.Errorf("parse child output %q: %w", out, err)
		}
		best.cpu = min(best.cpu, cpuTime(cmd.ProcessState))
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			best.maxRSS = max(best.maxRSS, ru.Maxrss*1024) // kilobytes on Linux
		}
		if d < best.wall {
			best.wall, best.res = d, res
		}
	}
	return best, nil
}

// cpuTime is the user and system CPU time of a finished process.
func cpuTime(ps *os.ProcessState) time.Duration { return ps.UserTime() + ps.SystemTime() }

// parseChild runs the parser over path and writes a childResult.
func parseChild(path, cpuProfile string, stdout io.Writer) error {
	if cpuProfile != "" {
		pf, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	res := childResult{Bytes: st.Size(), Levels: map[string]int64{}}
	var counts [4]int64
	start := time.Now()
	p := joblog.NewParser(f)
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		counts[joblog.LevelRank(e.Level)]++
	}
	res.Seconds = time.Since(start).Seconds()
	for i, l := range []string{joblog.LevelDebug, joblog.LevelInfo, joblog.LevelWarning, joblog.LevelError} {
		res.Levels[l] = counts[i]
		res.Entries += counts[i]
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.SysBytes = ms.Sys
	return json.NewEncoder(stdout).Encode(res)
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = rest, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid -size %q: want a positive number of bytes, KiB, MiB or GiB", s)
	}
	return n * mult, nil
}

// generator writes a realistic job log line by line.
type generator struct {
	w       *bufio.Writer
	rnd     *rand.Rand
	now     time.Time
	second  int64
	prefix  []byte // "2026-02-18T12:20:26." for the current second
	line    []byte
	written int64
	lines   int64
}

var crates = []string{
	"proc-macro2 v1.0.95", "unicode-ident v1.0.18", "quote v1.0.40", "syn v2.0.101", "serde v1.0.219",
	"libc v0.2.172", "cfg-if v1.0.0", "memchr v2.7.4", "once_cell v1.21.3", "smallvec v1.15.0",
	"tokio v1.45.0", "hyper v1.6.0", "futures-util v0.3.31", "tracing v0.1.41", "regex-syntax v0.8.5",
	"tauri v2.5.1", "tauri-build v2.2.0", "wry v0.51.2", "tao v0.33.0", "windows-sys v0.59.0",
	"serde_json v1.0.140", "image v0.25.6", "png v0.17.16", "flate2 v1.1.1", "webkit2gtk v2.0.1",
}

var envLines = []string{
	"  CARGO_TERM_COLOR: always", "  RUST_BACKTRACE: 1", "  APP_NAME: deskforge-demo",
	"  MACOSX_DEPLOYMENT_TARGET: 10.15", "  CARGO_INCREMENTAL: 0", "  CARGO_HOME: /home/runner/.cargo",
}

// generate writes about size bytes of log to w and returns the number of lines.
func generate(w io.Writer, size int64, seed uint64) (int64, error) {
	g := &generator{
		w:   bufio.NewWriterSize(w, 1<<20),
		rnd: rand.New(rand.NewPCG(seed, seed^0x5eed)),
		now: time.Date(2026, 2, 18, 12, 20, 26, 449139900, time.UTC),
	}
	g.emit("\ufeff", "Current runner version: '2.331.0'") // BOM at the start, as GitHub serves it
	for g.written < size {
		g.step()
	}
	g.emit("", "##[error]Process completed with exit code 1.")
	g.emit("", "Cleaning up orphan processes")
	return g.lines, g.w.Flush()
}

// emit writes one timestamped line; the clock advances 0–30 ms per line.
func (g *generator) emit(bom, text string) {
	g.now = g.now.Add(time.Duration(g.rnd.IntN(30_000_000)))
	if s := g.now.Unix(); s != g.second || g.prefix == nil {
		g.second = s
		g.prefix = g.now.AppendFormat(g.prefix[:0], "2006-01-02T15:04:05.")
	}
	g.line = append(g.line[:0], bom...)
	g.line = append(g.line, g.prefix...)
	frac := g.now.Nanosecond() / 100
	for div := 1_000_000; div > 0; div /= 10 {
		g.line = append(g.line, byte('0'+frac/div%10))
	}
	g.line = append(g.line, 'Z', ' ')
	g.line = append(g.line, text...)
	g.line = append(g.line, '\n')
	g.raw(g.line)
}

// raw writes a line as is (a continuation line has no timestamp).
func (g *generator) raw(b []byte) {
	n, _ := g.w.Write(b)
	g.written += int64(n)
	g.lines++
}

// step writes one workflow step: its group header, a body and sometimes problems.
func (g *generator) step() {
	r := g.rnd
	g.emit("", "##[group]Run cargo build --release --target x86_64-unknown-linux-gnu")
	g.emit("", "\x1b[36;1mcargo build --release --target x86_64-unknown-linux-gnu\x1b[0m")
	g.emit("", "shell: /usr/bin/bash --noprofile --norc -e -o pipefail {0}")
	g.emit("", "env:")
	for _, l := range envLines[:1+r.IntN(len(envLines))] {
		g.emit("", l)
	}
	g.emit("", "##[endgroup]")
	if r.IntN(4) == 0 { // a multi-line input: continuation lines without timestamps
		g.emit("", "  path: ~/.cargo/registry/index/")
		for _, l := range []string{"~/.cargo/registry/cache/", "~/.cargo/git/db/", "target/", ""} {
			g.raw([]byte(l + "\n"))
		}
	}
	g.emit("", "[command]/usr/bin/git config --local --name-only --get-regexp core\\.sshCommand")
	for range 20 + r.IntN(60) {
		g.emit("", "\x1b[1m\x1b[92m   Compiling\x1b[0m "+crates[r.IntN(len(crates))])
	}
	for range r.IntN(20) {
		g.emit("", "Received "+strconv.Itoa(r.IntN(1<<26))+" of 67108864 ("+strconv.Itoa(r.IntN(100))+".0%), 32.1 MBs/sec")
	}
	switch r.IntN(10) {
	case 0:
		g.emit("", "##[warning]Node.js 16 actions are deprecated. Please update the following actions to use Node.js 20: actions/cache@v3")
	case 1:
		g.emit("", "\x1b[1m\x1b[91merror[E0599]\x1b[0m\x1b[1m: no function or associated item named `bind_to_library` found\x1b[0m")
		g.emit("", "   \x1b[1m\x1b[94m--> \x1b[0msrc/core/render.rs:17:11")
		g.emit("", "    \x1b[1m\x1b[94m|\x1b[0m")
		g.emit("", "##[error]Process completed with exit code 101.")
	case 2: // a long minified line
		g.emit("", "dist/assets/index-4f2a.js "+strings.Repeat("function(a,b){return a+b};", 40+r.IntN(80)))
	case 3:
		g.emit("", "")
		g.emit("", "##[debug]Evaluating condition for step: 'Build'")
	}
	g.emit("", "\x1b[1m\x1b[92m    Finished\x1b[0m `release` profile [optimized] target(s) in "+strconv.Itoa(r.IntN(300))+"s")
}
