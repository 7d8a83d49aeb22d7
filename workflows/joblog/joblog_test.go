package joblog

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const realLog = "testdata/ubuntu-24.04-cargo-error.txt"

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func parseAll(t testing.TB, r io.Reader) []Entry {
	t.Helper()
	var entries []Entry
	for e, err := range NewParser(r).All() {
		require.NoError(t, err)
		entries = append(entries, e)
	}
	return entries
}

func TestParse(t *testing.T) {
	t.Parallel()

	t0 := ts("2024-01-20T10:01:00Z")
	t1 := ts("2024-01-20T10:01:01Z")
	info := func(msg string) Entry { return Entry{Timestamp: t0, Level: LevelInfo, Message: msg} }
	at := func(level, msg string) Entry { return Entry{Timestamp: t0, Level: level, Message: msg} }
	const p = "2024-01-20T10:01:00.1234567Z "

	tests := []struct {
		name string
		in   string
		want []Entry
	}{
		{"empty input", "", nil},
		{"plain line", p + "Hello\n", []Entry{info("Hello")}},
		{"cargo error", p + "error[E0599]: no method named `x` found\n   --> src/main.rs:3:5\n", []Entry{at(LevelError, "error[E0599]: no method named `x` found\n   --> src/main.rs:3:5")}},
		{"cargo could not compile", p + "error: could not compile `app` (bin \"app\") due to 1 previous error\n", []Entry{at(LevelError, "error: could not compile `app` (bin \"app\") due to 1 previous error")}},
		{"npm", p + "npm ERR! code ELIFECYCLE\n" + p + "npm error code 1\n", []Entry{at(LevelError, "npm ERR! code ELIFECYCLE"), at(LevelError, "npm error code 1")}},
		{"tsc", p + "src/a.ts(3,5): error TS2322: Type 'string' is not assignable\n" + p + "error TS5023: Unknown compiler option\n",
			[]Entry{at(LevelError, "src/a.ts(3,5): error TS2322: Type 'string' is not assignable"), at(LevelError, "error TS5023: Unknown compiler option")}},
		{"msbuild", p + `C:\a\App.cs(10,5): error CS0103: The name 'x' does not exist [C:\a\App.csproj]` + "\n" + p + "MSBUILD : error MSB1009: Project file does not exist.\n",
			[]Entry{at(LevelError, `C:\a\App.cs(10,5): error CS0103: The name 'x' does not exist [C:\a\App.csproj]`), at(LevelError, "MSBUILD : error MSB1009: Project file does not exist.")}},
		{"ninja and git", p + "FAILED: CMakeFiles/app.dir/main.cpp.o\n" + p + "fatal: repository 'x' not found\n",
			[]Entry{at(LevelError, "FAILED: CMakeFiles/app.dir/main.cpp.o"), at(LevelError, "fatal: repository 'x' not found")}},
		{"look-alikes stay info", p + "0 errors: none\n" + p + "terror TS1: no\n" + p + "error CSS: fine\n" + p + "Compiling with error TS checks\n",
			[]Entry{info("0 errors: none"), info("terror TS1: no"), info("error CSS: fine"), info("Compiling with error TS checks")}},
		{"a warning marker wins", p + "##[warning]fatal: but only a warning\n", []Entry{at(LevelWarning, "fatal: but only a warning")}},
		{"no final newline", p + "Hello", []Entry{info("Hello")}},
		{"CRLF", p + "a\r\n" + p + "b\r\n", []Entry{info("a"), info("b")}},
		{"two lines", p + "a\n2024-01-20T10:01:01.0000000Z b\n", []Entry{info("a"), {Timestamp: t1, Level: LevelInfo, Message: "b"}}},

		// Timestamps.
		{"fraction truncated not rounded", "2024-01-20T10:01:00.9999999Z x\n", []Entry{info("x")}},
		{"no fraction", "2024-01-20T10:01:00Z x\n", []Entry{info("x")}},
		{"3-digit fraction", "2024-01-20T10:01:00.123Z x\n", []Entry{info("x")}},
		{"9-digit fraction", "2024-01-20T10:01:00.123456789Z x\n", []Entry{info("x")}},
		{"positive offset", "2024-01-20T12:01:00.5+02:00 x\n", []Entry{info("x")}},
		{"negative offset", "2024-01-20T05:31:00-04:30 x\n", []Entry{info("x")}},
		{"offset across a day", "2024-01-21T01:01:00+15:00 x\n", []Entry{info("x")}},
		{"timestamp only", "2024-01-20T10:01:00.1234567Z\n", nil},
		{"cached second reused", p + "a\n2024-01-20T10:01:00.9Z b\n", []Entry{info("a"), info("b")}},
		{"invalid month is no timestamp", p + "a\n2024-13-20T10:01:00.1Z b\n", []Entry{info("a\n2024-13-20T10:01:00.1Z b")}},
		{"February 30 is no timestamp", p + "a\n2024-02-30T10:01:00.1Z b\n", []Entry{info("a\n2024-02-30T10:01:00.1Z b")}},
		{"empty fraction is no timestamp", p + "a\n2024-01-20T10:01:00.Z b\n", []Entry{info("a\n2024-01-20T10:01:00.Z b")}},
		{"missing zone is no timestamp", p + "a\n2024-01-20T10:01:00.1 b\n", []Entry{info("a\n2024-01-20T10:01:00.1 b")}},
		{"no space after zone is no timestamp", p + "a\n2024-01-20T10:01:00.1Zb\n", []Entry{info("a\n2024-01-20T10:01:00.1Zb")}},
		{"letters in date is no timestamp", p + "a\n2024-0x-20T10:01:00Z b\n", []Entry{info("a\n2024-0x-20T10:01:00Z b")}},

		// BOM and white space.
		{"BOM at start", "\ufeff" + p + "a\n", []Entry{info("a")}},
		{"BOM at start of a later line", p + "a\n\ufeff" + p + "b\n", []Entry{info("a"), info("b")}},
		{"only a BOM", "\ufeff", nil},
		{"trailing white space trimmed, leading kept", p + "  key: value \t\n", []Entry{info("  key: value")}},
		{"empty line dropped", p + "\n" + p + "a\n" + p + "   \n", []Entry{info("a")}},

		// ANSI escape codes.
		{"SGR colours", p + "\x1b[1m\x1b[92m   Compiling\x1b[0m serde v1.0\n", []Entry{info("   Compiling serde v1.0")}},
		{"SGR 256 colours", p + "\x1b[38;5;208mwarn\x1b[m\n", []Entry{info("warn")}},
		{"CSI erase line and cursor", p + "\x1b[2K\x1b[1Gprogress 50%\x1b[?25l\n", []Entry{info("progress 50%")}},
		{"OSC title ended by BEL", p + "\x1b]0;my title\x07text\n", []Entry{info("text")}},
		{"OSC hyperlink ended by ST", p + "\x1b]8;;https://x.test\x1b\\link\x1b]8;;\x1b\\ after\n", []Entry{info("link after")}},
		{"unterminated OSC", p + "text\x1b]0;title\n", []Entry{info("text")}},
		{"unterminated CSI", p + "text\x1b[31\n", []Entry{info("text")}},
		{"lone ESC at end", p + "text\x1b\n", []Entry{info("text")}},
		{"charset and two-byte escapes", p + "\x1b(Ba\x1bcb\x1b7c\n", []Entry{info("abc")}},
		{"ESC before a control byte", p + "a\x1b\tb\n", []Entry{info("a\tb")}},
		{"malformed CSI keeps the next byte", p + "a\x1b[1\x01b\n", []Entry{info("a\x01b")}},
		{"ANSI before a marker", p + "\x1b[31m##[error]boom\x1b[0m\n", []Entry{at(LevelError, "boom")}},
		{"ANSI in a continuation", p + "a\n\x1b[36;1mb\x1b[0m\n", []Entry{info("a\nb")}},

		// Invalid bytes.
		{"invalid UTF-8 replaced", p + "a\xffb\xc3\n", []Entry{info("a\ufffdb\ufffd")}},
		{"NUL removed", p + "a\x00b\n", []Entry{info("ab")}},
		{"valid multi-byte kept", p + "héllo ✓ 日本\n", []Entry{info("héllo ✓ 日本")}},

		// ##[…] markers.
		{"##[error]", p + "##[error]Process completed with exit code 1.\n", []Entry{at(LevelError, "Process completed with exit code 1.")}},
		{"##[warning]", p + "##[warning]Node 16 is deprecated\n", []Entry{at(LevelWarning, "Node 16 is deprecated")}},
		{"##[notice]", p + "##[notice]note\n", []Entry{at(LevelInfo, "note")}},
		{"##[debug]", p + "##[debug]Evaluating: x\n", []Entry{at(LevelDebug, "Evaluating: x")}},
		{"##[group]", p + "##[group]Run actions/checkout@v4\n", []Entry{info("Run actions/checkout@v4")}},
		{"##[group] without title", p + "##[group]\n", nil},
		{"##[endgroup]", p + "##[group]G\n" + p + "in\n" + p + "##[endgroup]\n" + p + "out\n", []Entry{info("G"), info("in"), info("out")}},
		{"##[section]", p + "##[section]Starting: Build\n", []Entry{info("Starting: Build")}},
		{"##[command]", p + "##[command]/usr/bin/git version\n", []Entry{info("/usr/bin/git version")}},
		{"[command]", p + "[command]/usr/bin/git version\n", []Entry{info("/usr/bin/git version")}},
		{"unknown marker kept", p + "##[frobnicate]x\n", []Entry{info("##[frobnicate]x")}},
		{"unclosed marker kept", p + "##[error x\n", []Entry{info("##[error x")}},
		{"marker not at start kept", p + "see ##[error]x\n", []Entry{info("see ##[error]x")}},
		{"##[error] empty then continuation", p + "##[error]\ndetails\n", []Entry{at(LevelError, "details")}},

		// ::command:: forms.
		{"::error::", p + "::error::boom\n", []Entry{at(LevelError, "boom")}},
		{"::error with properties", p + "::error file=x,line=1::msg\n", []Entry{at(LevelError, "msg (file=x,line=1)")}},
		{"::error properties only", p + "::error file=x::\n", []Entry{at(LevelError, "(file=x)")}},
		{"::warning with title", p + "::warning title=Deprecated::Node 16\n", []Entry{at(LevelWarning, "Node 16 (title=Deprecated)")}},
		{"::notice::", p + "::notice::hello\n", []Entry{at(LevelInfo, "hello")}},
		{"::debug::", p + "::debug::details\n", []Entry{at(LevelDebug, "details")}},
		{"::group:: and ::endgroup::", p + "::group::Title\n" + p + "::endgroup::\n", []Entry{info("Title")}},
		{"command names ignore case", p + "::ERROR::boom\n", []Entry{at(LevelError, "boom")}},
		{"escaped data", p + "::error::line1%0Aline2 100%25 %3A%zz\n", []Entry{at(LevelError, "line1\nline2 100% :%zz")}},
		{"escaped properties", p + "::error file=a%2Cb%3Ac::m\n", []Entry{at(LevelError, "m (file=a,b:c)")}},
		{"unknown command kept", p + "::set-output name=x::v\n", []Entry{info("::set-output name=x::v")}},
		{"unclosed command kept", p + "::error boom\n", []Entry{info("::error boom")}},
		{"empty command name kept", p + "::::x\n", []Entry{info("::::x")}},
		{"add-mask dropped with its continuation", p + "::add-mask::s3cret\nmore-secret\n" + p + "after\n", []Entry{info("after")}},

		// Continuation lines.
		{"continuation joined", p + "  path: a\nb\nc\n", []Entry{info("  path: a\nb\nc")}},
		{"inner blank continuation kept, trailing dropped", p + "a\n\nb\n\n\n" + p + "c\n", []Entry{info("a\n\nb"), info("c")}},
		{"continuation keeps the level", p + "##[error]first\nsecond\n", []Entry{at(LevelError, "first\nsecond")}},
		{"continuation after an empty line", p + "\nfilled\n", []Entry{info("filled")}},
		{"leading blank continuation dropped", p + "\n\nfilled\n", []Entry{info("filled")}},
		{"continuation after ##[endgroup]", p + "##[endgroup]\norphan\n", []Entry{info("orphan")}},
		{"leading lines without timestamp", "first\n##[error]second\n\n" + p + "third\nfourth\n", []Entry{
			{Level: LevelInfo, Message: "first"},
			{Level: LevelError, Message: "second"},
			info("third\nfourth"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := parseAll(t, strings.NewReader(tt.in))
			require.Equal(t, tt.want, got)
			for _, e := range got {
				require.Equal(t, time.UTC, e.Timestamp.Location())
			}
		})
	}
}

func TestParseLongLine(t *testing.T) {
	t.Parallel()

	const p = "2024-01-20T10:01:00.1234567Z "
	tests := []struct {
		name     string
		text     string // the long part of the line
		wantHead string // the kept part of the message, before the marker
		dropped  int
	}{
		{
			name:     "ASCII",
			text:     strings.Repeat("a", 200_000),
			wantHead: strings.Repeat("a", MaxLineBytes-len(p)),
			dropped:  200_000 - (MaxLineBytes - len(p)),
		},
		{
			// 2-byte runes: the buffer boundary (65507 bytes of text, odd) splits one.
			name:     "cut at a rune boundary",
			text:     strings.Repeat("é", 100_000),
			wantHead: strings.Repeat("é", (MaxLineBytes-len(p))/2),
			dropped:  200_000 - (MaxLineBytes-len(p))/2*2,
		},
		{
			name:     "one byte too long",
			text:     strings.Repeat("b", MaxLineBytes-len(p)+1),
			wantHead: strings.Repeat("b", MaxLineBytes-len(p)),
			dropped:  1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, eol := range []string{"\n", "\r\n"} {
				in := p + tt.text + eol + p + "next\n" + p + "x\n" + tt.text + eol
				got := parseAll(t, strings.NewReader(in))
				require.Len(t, got, 3)
				want := tt.wantHead + " [… " + strconv.Itoa(tt.dropped) + " bytes truncated]"
				require.Equal(t, want, got[0].Message)
				require.True(t, utf8.ValidString(got[0].Message))
				require.Equal(t, "next", got[1].Message)
				// A continuation line is cut at the buffer size too (no timestamp: more text fits).
				require.True(t, strings.HasPrefix(got[2].Message, "x\n"+tt.text[:100]), "continuation kept")
				if len(tt.text)+len(eol) > MaxLineBytes {
					require.Contains(t, got[2].Message, " bytes truncated]")
				}
			}
		})
	}

	t.Run("exactly the buffer size is kept whole", func(t *testing.T) {
		t.Parallel()
		text := strings.Repeat("c", MaxLineBytes-len(p)-1) // plus "\n" fills the buffer exactly
		got := parseAll(t, strings.NewReader(p+text+"\n"+p+"next\n"))
		require.Equal(t, []string{text, "next"}, []string{got[0].Message, got[1].Message})
	})
}

func TestParseMessageCap(t *testing.T) {
	t.Parallel()

	const p = "2024-01-20T10:01:00.1234567Z "
	line := strings.Repeat("x", 1023)
	var in strings.Builder
	in.WriteString(p + "start\n")
	const lines = 2048 // 2 MiB of continuation
	for range lines {
		in.WriteString(line + "\n")
	}
	in.WriteString(p + "next\n")

	got := parseAll(t, strings.NewReader(in.String()))
	require.Len(t, got, 2)
	msg := got[0].Message
	kept := (MaxMessageBytes - len("start")) / (len(line) + 1)
	require.True(t, strings.HasPrefix(msg, "start\n"+line+"\n"))
	require.True(t, strings.HasSuffix(msg, "\n[… "+strconv.Itoa(lines-kept)+" more lines truncated]"), msg[len(msg)-60:])
	require.LessOrEqual(t, len(msg), MaxMessageBytes+64)
	require.Equal(t, "next", got[1].Message)
}

func TestParseReadError(t *testing.T) {
	t.Parallel()

	boom := errors.New("connection reset")
	r := io.MultiReader(
		strings.NewReader("2024-01-20T10:01:00.1Z a\n2024-01-20T10:01:00.2Z b\nmore"),
		iotest.ErrReader(boom),
	)
	p := NewParser(r)
	var got []string
	var err error
	for {
		var e Entry
		e, err = p.Next()
		if err != nil {
			break
		}
		got = append(got, e.Message)
	}
	require.Equal(t, []string{"a", "b\nmore"}, got)
	require.ErrorIs(t, err, boom)
	require.ErrorContains(t, err, "read job log")
	_, again := p.Next()
	require.Equal(t, err, again, "the error is sticky")

	// The iterator yields the error once, last.
	var errs int
	for _, err := range NewParser(iotest.ErrReader(boom)).All() {
		require.ErrorIs(t, err, boom)
		errs++
	}
	require.Equal(t, 1, errs)
}

func TestParseEOFIsSticky(t *testing.T) {
	t.Parallel()

	p := NewParser(strings.NewReader("2024-01-20T10:01:00Z a\n"))
	e, err := p.Next()
	require.NoError(t, err)
	require.Equal(t, "a", e.Message)
	for range 2 {
		_, err = p.Next()
		require.Equal(t, io.EOF, err)
	}
}

func TestParseOneByteReads(t *testing.T) {
	t.Parallel()

	raw, err := os.ReadFile(realLog)
	require.NoError(t, err)
	require.Equal(t, parseAll(t, bytes.NewReader(raw)), parseAll(t, iotest.OneByteReader(bytes.NewReader(raw))))
}

func TestAllStopsWhenAsked(t *testing.T) {
	t.Parallel()

	p := NewParser(strings.NewReader("2024-01-20T10:01:00Z a\n2024-01-20T10:01:00Z b\n2024-01-20T10:01:00Z c\n"))
	for e, err := range p.All() {
		require.NoError(t, err)
		require.Equal(t, "a", e.Message)
		break
	}
	e, err := p.Next()
	require.NoError(t, err)
	require.Equal(t, "b", e.Message, "the parser resumes after the entry the loop stopped at")
}

func TestLevelRank(t *testing.T) {
	t.Parallel()

	tests := []struct {
		level string
		want  int
	}{
		{LevelDebug, 0},
		{LevelInfo, 1},
		{LevelSuccess, 1},
		{LevelWarning, 2},
		{LevelError, 3},
		{"", -1},
		{"ERROR", -1},
		{"fatal", -1},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, LevelRank(tt.level), tt.level)
	}
	// ?level=warning keeps a final error entry and drops a final success entry.
	require.GreaterOrEqual(t, LevelRank(LevelError), LevelRank(LevelWarning))
	require.Less(t, LevelRank(LevelSuccess), LevelRank(LevelWarning))
}

var ansiRe = regexp.MustCompile("\x1b\\[[0-9;]*m")

func TestParseRealLog(t *testing.T) {
	t.Parallel()

	raw, err := os.ReadFile(realLog)
	require.NoError(t, err)
	entries := parseAll(t, bytes.NewReader(raw))

	// Every ##[error] line is an error entry with its text, and so are the
	// compiler's own errors, which carry no marker.
	var wantErrors []string
	for line := range strings.Lines(string(raw)) {
		line = strings.TrimRight(line, "\r\n")
		if _, msg, ok := strings.Cut(line, "Z ##[error]"); ok {
			wantErrors = append(wantErrors, msg)
		}
		if _, msg, ok := strings.Cut(ansiRe.ReplaceAllString(line, ""), "Z "); ok &&
			(strings.HasPrefix(msg, "error[E") || strings.HasPrefix(msg, "error: could not compile")) {
			wantErrors = append(wantErrors, msg)
		}
	}
	require.NotEmpty(t, wantErrors)
	var gotErrors []string
	for _, e := range entries {
		if e.Level == LevelError {
			gotErrors = append(gotErrors, e.Message)
		}
		require.NotContains(t, e.Message, "\x1b", "ANSI left in %q", e.Message)
		require.NotEmpty(t, e.Message)
		require.Equal(t, time.UTC, e.Timestamp.Location())
		require.Equal(t, e.Timestamp, e.Timestamp.Truncate(time.Second))
		require.Equal(t, 2026, e.Timestamp.Year())
	}
	require.Equal(t, wantErrors, gotErrors)
	require.Equal(t, "Process completed with exit code 1.", gotErrors[len(gotErrors)-1])
	require.Equal(t, ts("2026-02-18T12:20:26Z"), entries[0].Timestamp)

	// The multi-line "path" input of actions/cache arrives as continuation lines.
	require.Contains(t, messages(entries), "  path: ~/.cargo/registry/index/\n~/.cargo/registry/cache/\n~/.cargo/git/db/\n~/.napi-rs\n.cargo-cache\ntarget/")

	golden := filepath.Join("testdata", "ubuntu-24.04-cargo-error.golden.jsonl")
	got := encodeJSONL(t, entries)
	if *update {
		require.NoError(t, os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test -update to create the golden file")
	require.Equal(t, string(want), string(got))
}

func messages(entries []Entry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Message
	}
	return out
}

// encodeJSONL writes entries in the format of `deskforge logs parse`.
func encodeJSONL(t testing.TB, entries []Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, e := range entries {
		line := struct {
			Timestamp string `json:"timestamp,omitempty"`
			Level     string `json:"level"`
			Message   string `json:"message"`
		}{Level: e.Level, Message: e.Message}
		if !e.Timestamp.IsZero() {
			line.Timestamp = e.Timestamp.Format(time.RFC3339)
		}
		require.NoError(t, enc.Encode(line))
	}
	return buf.Bytes()
}

func TestParseAllocations(t *testing.T) {
	raw, err := os.ReadFile(realLog)
	require.NoError(t, err)
	entries := len(parseAll(t, bytes.NewReader(raw)))
	allocs := testing.AllocsPerRun(5, func() {
		p := NewParser(bytes.NewReader(raw))
		for {
			if _, err := p.Next(); err != nil {
				break
			}
		}
	})
	// One string per entry, plus the parser, its buffers and the few grown messages.
	require.LessOrEqual(t, allocs, float64(entries+16), "allocations for %d entries", entries)
}

// parseOpts parses data with the given options, reading it through wrap, and returns every entry.
func parseOpts(t testing.TB, data []byte, opts options, wrap func(io.Reader) io.Reader) []Entry {
	t.Helper()
	var r io.Reader = bytes.NewReader(data)
	if wrap != nil {
		r = wrap(r)
	}
	var entries []Entry
	for e, err := range newParser(r, opts).All() {
		require.NoError(t, err)
		entries = append(entries, e)
	}
	return entries
}

// referenceOpts parses all of data as one chunk, line by line on one goroutine.
func referenceOpts(data []byte, maxLine int) options {
	return options{chunk: len(data) + 2*maxLine + 1, maxLine: maxLine, workers: 1}
}

// TestParseChunked checks that cutting the log into chunks, parsed concurrently or not and read in
// pieces of any size, gives exactly the entries of a parse of the whole log line by line.
func TestParseChunked(t *testing.T) {
	t.Parallel()

	raw, err := os.ReadFile(realLog)
	require.NoError(t, err)
	const p = "2024-01-20T10:01:00.1234567Z "
	synthetic := []byte("leading\n\nmore leading ##[error]x\n" +
		p + "##[group]Run\n" + p + strings.Repeat("long ", 40) + "\r\n" +
		strings.Repeat("continuation é ", 30) + "\n\n\n" + p + "::add-mask::secret\nsecret again\n" +
		p + "\x1b[31m" + strings.Repeat("ü", 50) + "\x1b[0m\r\n" + p + "::error file=a,line=1::boom%0Atwo\n" +
		strings.Repeat("x", 300) + "\r\n" + strings.Repeat("y", 17) + "\n" + p + "last without LF")

	wraps := map[string]func(io.Reader) io.Reader{
		"whole reads":    nil,
		"one-byte reads": iotest.OneByteReader,
		"half reads":     iotest.HalfReader,
		"data+EOF reads": iotest.DataErrReader,
	}
	for name, data := range map[string][]byte{"real log": raw, "synthetic": synthetic} {
		for _, maxLine := range []int{16, 64, MaxLineBytes} {
			want := parseOpts(t, data, referenceOpts(data, maxLine), nil)
			require.NotEmpty(t, want)
			for _, chunk := range []int{2 * maxLine, 3*maxLine + 7, 4096} {
				for _, workers := range []int{1, 3} {
					for wname, wrap := range wraps {
						if wname == "one-byte reads" && len(data) > 10_000 && chunk != 4096 {
							continue // slow and adds nothing over half reads
						}
						opts := options{chunk: chunk, maxLine: maxLine, workers: workers}
						got := parseOpts(t, data, opts, wrap)
						require.Equal(t, want, got, "%s, maxLine %d, chunk %d, %d workers, %s", name, maxLine, chunk, workers, wname)
					}
				}
			}
		}
	}
}

// TestParseAbandoned checks that a parser left before the end leaves no goroutine behind.
func TestParseAbandoned(t *testing.T) {
	t.Parallel()

	raw, err := os.ReadFile(realLog)
	require.NoError(t, err)
	data := bytes.Repeat(raw, 40) // 2 MB: several chunks in flight
	p := newParser(bytes.NewReader(data), options{chunk: 64 << 10, maxLine: 4096, workers: 4})
	_, err = p.Next()
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		buf := make([]byte, 1<<20)
		return !bytes.Contains(buf[:runtime.Stack(buf, true)], []byte("joblog.(*Parser).start.func"))
	}, 5*time.Second, 10*time.Millisecond)
}

// FuzzParse checks the parser's guarantees on any input. Run it with a short minimization time, as
// minimizing an input derived from the 50 KB real log takes long:
//
//	go test ./workflows/joblog/ -run XXX -fuzz FuzzParse -fuzztime 1m -fuzzminimizetime 3s
func FuzzParse(f *testing.F) {
	raw, err := os.ReadFile(realLog)
	require.NoError(f, err)
	f.Add(raw)
	for _, seed := range []string{
		"",
		"\ufeff2024-01-20T10:01:00.1234567Z ##[group]Title\n2024-01-20T10:01:00.1234567Z ##[endgroup]\n",
		"2024-01-20T10:01:00.1234567Z ##[error]boom\ncontinued\n\n\nmore\r\n",
		"2024-01-20T10:01:00Z ::error file=x,line=1::msg%0Atwo\n",
		"2024-01-20T10:01:00.1+02:00 \x1b[1m\x1b[92mCompiling\x1b[0m x\x1b]0;t\x07\x1b]8;;u\x1b\\l\x1b\n",
		"leading\n\x1b[31mno timestamp\x1b\n2024-02-30T10:01:00Z x",
		"2024-01-20T10:01:00Z ::add-mask::secret\nsecret2\n",
		"2024-01-20T10:01:00Z a\xff\x00\xc3\n\x1b[",
		"2024-01-20T10:01:00Z " + strings.Repeat("\x1b[1mé", 20000) + "\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Count(data, []byte("\n")) + 1
		p := NewParser(bytes.NewReader(data))
		n := 0
		for {
			e, err := p.Next()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			n++
			require.NotEmpty(t, e.Message)
			require.NotContains(t, e.Message, "\x1b")
			require.NotContains(t, e.Message, "\x00")
			require.True(t, utf8.ValidString(e.Message), "invalid UTF-8 in %q", e.Message)
			require.LessOrEqual(t, len(e.Message), MaxMessageBytes+64)
			require.GreaterOrEqual(t, LevelRank(e.Level), 0, "level %q", e.Level)
			require.NotEqual(t, LevelSuccess, e.Level)
			require.Equal(t, e.Timestamp, e.Timestamp.Truncate(time.Second))
			if !e.Timestamp.IsZero() {
				require.Equal(t, time.UTC, e.Timestamp.Location())
			}
		}
		require.LessOrEqual(t, n, lines)

		// Chunked and concurrent parsing with tiny sizes gives the line-by-line result.
		want := parseOpts(t, data, referenceOpts(data, 16), nil)
		got := parseOpts(t, data, options{chunk: 40, maxLine: 16, workers: 3}, iotest.HalfReader)
		require.Equal(t, want, got)
	})
}

// BenchmarkParseRealLog measures the parser on the real log: "once" parses it with a new parser per
// iteration, "x64" parses it repeated 64 times (3.2 MB), the steady state of a long log.
func BenchmarkParseRealLog(b *testing.B) {
	raw, err := os.ReadFile(realLog)
	require.NoError(b, err)
	for _, bc := range []struct {
		name  string
		times int
	}{{"once", 1}, {"x64", 64}} {
		b.Run(bc.name, func(b *testing.B) {
			data := bytes.Repeat(raw, bc.times)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				p := NewParser(bytes.NewReader(data))
				for {
					if _, err := p.Next(); err != nil {
						break
					}
				}
			}
		})
	}
}
