// Package joblog parses raw GitHub Actions job logs, as served by the job-logs endpoint
// (GET /repos/{owner}/{repo}/actions/jobs/{id}/logs), into log entries {timestamp, level, message}.
//
// The parser streams in constant memory: it reads the log in chunks of whole lines (1 MiB) and
// holds a few chunks, their entries and the entry being read, so its memory use (about 10 MiB of
// resident memory, measured on a 1 GiB log) does not depend on the size of the log; MaxLineBytes
// and MaxMessageBytes bound what a single line or entry can take. It has no dependencies outside
// the standard library.
//
// It is built for throughput (see bench/joblog): no regular expressions, no allocation per line
// (one string per batch of entries, pooled entry arrays), printable ASCII scanned eight bytes at a
// time, and each second's timestamp parsed once. Large logs are parsed on up to four goroutines,
// chunk by chunk, and put back in order; a chunk's first lines, which may continue the entry the
// previous chunk ended in, are applied when the chunks are joined, so the result is exactly that
// of a parse line by line (the tests check it with every chunk size).
//
// # Input format
//
// Each line of a job log starts with a timestamp and a space:
//
//	2024-01-20T10:01:00.1234567Z ##[group]Run actions/checkout@v4
//
// GitHub writes a 7-digit fraction; any number of fraction digits (or none) is accepted, and so is a
// numeric offset (+02:00) instead of Z. The entry's Timestamp is that instant in UTC, truncated to the
// second. The text after the timestamp may start with a marker, which sets the entry's level and is
// removed from the message:
//
//	##[error]msg, ::error::msg, ::error file=x,line=1::msg   error
//	##[warning]msg, ::warning …::msg                         warning
//	##[notice]msg, ::notice …::msg                           info
//	##[debug]msg, ::debug::msg                               debug
//	##[group]Title, ::group::Title                           info "Title"
//	##[endgroup], ::endgroup::                               dropped
//	##[section]msg, ##[command]msg, [command]msg             info "msg"
//	::add-mask::value                                        dropped, with its continuation lines
//	anything else (unknown markers included)                 info, text kept as is
//
// For the ::command:: forms, the data is unescaped (%25 %0D %0A) and the properties, when present,
// are kept after the message in parentheses: "::error file=x,line=1::msg" gives "msg (file=x,line=1)".
//
// # Decisions
//
//   - Lines without a timestamp continue the previous entry's message, joined with "\n". Empty
//     continuation lines are kept between non-empty ones but never at the start or end of a message.
//     Lines without a timestamp before the first timestamped line (or in a log with no timestamps at
//     all) each become an entry of their own with a zero Timestamp (time unknown); markers are
//     recognized on them.
//   - Entries whose message is empty (blank lines, "##[group]" without title, "##[endgroup]") are
//     dropped. Trailing white space is removed from every line; leading white space is kept.
//   - A UTF-8 byte order mark at the start of a line is removed. ANSI escape sequences are removed:
//     CSI (colours, cursor movement), OSC (titles, hyperlinks; ended by BEL or ST), DCS/SOS/PM/APC
//     and two-byte escapes; an unterminated sequence is removed up to the end of the line. Messages
//     never contain ESC.
//   - Messages are valid UTF-8 without NUL bytes, so they can be stored in PostgreSQL text columns:
//     each invalid byte becomes U+FFFD and NUL bytes are removed.
//   - A line of MaxLineBytes bytes or more (timestamp included, line end excluded) is truncated, not
//     split: its first MaxLineBytes bytes are kept (cut at a UTF-8 boundary) and " [… N bytes
//     truncated]" is appended, N counting the bytes dropped. Splitting would turn one line into
//     many entries and let one line flood the log; truncation keeps one entry per line.
//   - A message is capped at MaxMessageBytes: continuation lines that do not fit are dropped and the
//     message ends with "\n[… N more lines truncated]".
//   - Levels are the strings of the public API: debug, info, warning, error (success is never produced
//     by the parser; the engine appends it as the final entry of a successful build).
package joblog

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"runtime"
	"time"
)

// Log levels, the same strings as the public API and the models package.
const (
	LevelDebug   = "debug"
	LevelInfo    = "info"
	LevelSuccess = "success"
	LevelWarning = "warning"
	LevelError   = "error"
)

// LevelRank orders levels for filtering: an API call with ?level=L keeps the entries e with
// LevelRank(e.Level) >= LevelRank(L). The order is debug (0) < info = success (1) < warning (2) <
// error (3): success ranks with info because the final "Build completed successfully" entry is
// informational, so ?level=warning keeps warnings and errors (including a final "Build failed"
// entry) and drops it. An unknown level ranks -1; callers validating input treat -1 as invalid.
func LevelRank(level string) int {
	switch level {
	case LevelDebug:
		return 0
	case LevelInfo, LevelSuccess:
		return 1
	case LevelWarning:
		return 2
	case LevelError:
		return 3
	default:
		return -1
	}
}

const (
	// MaxLineBytes bounds a line: a line of MaxLineBytes bytes or more (timestamp included, line
	// end excluded) keeps its first MaxLineBytes bytes (see the package documentation).
	MaxLineBytes = 64 << 10
	// MaxMessageBytes bounds the message of one entry built from continuation lines.
	MaxMessageBytes = 1 << 20
)

// Entry is one entry of a parsed job log.
type Entry struct {
	// Timestamp is the line's time in UTC truncated to the second; zero when the log gave none.
	Timestamp time.Time
	// Level is one of LevelDebug, LevelInfo, LevelWarning, LevelError.
	Level string
	// Message is the line's text without timestamp, marker and escape codes, followed by its
	// continuation lines; never empty. Messages of entries read together share one backing string
	// of up to about 16 KiB, so keeping a single Message keeps that string alive: use strings.Clone to keep
	// a few entries of a long log for long.
	Message string
}

// Entries are produced in batches: the messages of up to batchEntries entries (or about batchBytes
// of text) are converted into one string and each Message is a substring of it, as encoding/csv
// does for the fields of a record. One allocation per batch instead of one per entry is what makes
// the parser fast; the cost is that a single retained Message keeps its batch (a few KiB) alive.
const (
	batchEntries = 256
	batchBytes   = 16 << 10
)

const (
	// chunkSize is the parser's read size: the log is cut into chunks of whole lines, which are
	// parsed concurrently when there are several CPUs.
	chunkSize = 1 << 20
	// maxWorkers bounds the chunks parsed at once.
	maxWorkers = 4
	// minParallelChunk is the smallest chunk worth a goroutine.
	minParallelChunk = 32 << 10
)

// Parser reads entries from a raw job log. It is not safe for concurrent use.
//
// Large logs are parsed on several goroutines (at most min(GOMAXPROCS, 4)), chunk by chunk, and
// put back in order: the entries are exactly those of a parse line by line. The goroutines only
// live while a chunk is parsed, so a Parser needs no closing, even when abandoned before the end.
type Parser struct {
	cr   chunkReader
	opts options

	m        *machine   // the machine that stitches chunks together: it owns the pending entry
	inflight []*pending // chunks being parsed, in log order
	free     []*machine

	out    []batch // batches ready to return
	bi, ei int     // next entry: out[bi].entries[ei]
	err    error   // io.EOF or the read error, returned once every entry before it is out
}

// pending is a chunk being parsed, or parsed.
type pending struct {
	res  *chunkResult
	done chan *chunkResult
}

// chunkResult is a chunk parsed on its own: the lines before its first timestamped line (which
// depend on the entry before the chunk), the entries completed inside it and the entry it ends in.
type chunkResult struct {
	ch       *chunk
	m        *machine // its batches are the complete entries; its pending entry the last one
	prefix   []prefixLine
	sawTimed bool
}

type prefixLine struct {
	line    []byte
	dropped int
}

// options are the parser's sizes and concurrency; tests shrink them to reach every path.
type options struct {
	chunk       int // read size; at least 2*maxLine
	maxLine     int // MaxLineBytes
	workers     int // chunks parsed at once
	minParallel int // smallest chunk parsed on its own goroutine
}

// NewParser returns a parser reading the raw job log from r.
func NewParser(r io.Reader) *Parser {
	return newParser(r, options{
		chunk:       chunkSize,
		maxLine:     MaxLineBytes,
		workers:     min(runtime.GOMAXPROCS(0), maxWorkers),
		minParallel: minParallelChunk,
	})
}

func newParser(r io.Reader, opts options) *Parser {
	opts.chunk = max(opts.chunk, 2*opts.maxLine)
	opts.workers = max(opts.workers, 1)
	return &Parser{
		cr:   chunkReader{r: r, size: opts.chunk, maxLine: opts.maxLine},
		opts: opts,
		m:    newMachine(),
	}
}

// Next returns the next entry. At the end of the log it returns io.EOF; a read error is returned
// wrapped, after the entries read before it. Once Next has returned an error, it returns the same
// error again.
func (p *Parser) Next() (Entry, error) {
	for {
		if p.bi < len(p.out) {
			b := &p.out[p.bi]
			if p.ei < len(b.entries) {
				p.ei++
				return b.entries[p.ei-1], nil
			}
			putEntries(b.entries)
			b.entries = nil
			p.bi, p.ei = p.bi+1, 0
			continue
		}
		if p.err != nil {
			return Entry{}, p.err
		}
		clear(p.out) // let the returned batches go
		p.out, p.bi, p.ei = p.out[:0], 0, 0
		p.fill()
	}
}

// All returns an iterator over the remaining entries. It ends at the end of the log; a read error
// is yielded once, with a zero Entry, as the last element.
func (p *Parser) All() iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		for {
			e, err := p.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(Entry{}, err)
				return
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

// fill parses on until some batches are ready or the log ends.
func (p *Parser) fill() {
	for len(p.out) == 0 {
		// Keep the workers busy, but read ahead only while the input comes in full buffers: on a
		// slow stream, waiting for more input would hold back the entries already there.
		for len(p.inflight) < p.opts.workers && (len(p.inflight) == 0 || p.cr.full) {
			ch := p.cr.next()
			if ch == nil {
				break
			}
			p.start(ch)
		}
		if len(p.inflight) == 0 { // the input is exhausted
			p.m.finish()
			p.m.seal()
			p.takeBatches(p.m)
			if p.cr.err == io.EOF {
				p.err = io.EOF
			} else {
				p.err = fmt.Errorf("read job log: %w", p.cr.err)
			}
			return
		}
		next := p.inflight[0]
		copy(p.inflight, p.inflight[1:])
		p.inflight = p.inflight[:len(p.inflight)-1]
		res := next.res
		if res == nil {
			res = <-next.done
		}
		p.stitch(res)
	}
}

// start parses a chunk: on its own goroutine when it is worth it, else at once.
func (p *Parser) start(ch *chunk) {
	var m *machine
	if n := len(p.free); n > 0 {
		m, p.free = p.free[n-1], p.free[:n-1]
	} else {
		m = newMachine()
	}
	maxLine := p.opts.maxLine
	if p.opts.workers == 1 || len(ch.data) < p.opts.minParallel {
		p.inflight = append(p.inflight, &pending{res: parseChunk(ch, m, maxLine)})
		return
	}
	done := make(chan *chunkResult, 1) // never blocks: the goroutine ends even if nobody reads
	go func() { done <- parseChunk(ch, m, maxLine) }()
	p.inflight = append(p.inflight, &pending{done: done})
}

// parseChunk parses the lines of a chunk, keeping those before its first timestamped line aside.
func parseChunk(ch *chunk, m *machine, maxLine int) *chunkResult {
	res := &chunkResult{ch: ch, m: m}
	it := ch.lines(maxLine)
	for {
		line, dropped, ok := it.next()
		if !ok {
			break
		}
		if !res.sawTimed {
			if _, _, timed := m.parseTimestamp(prepareLine(line)); !timed {
				res.prefix = append(res.prefix, prefixLine{line: line, dropped: dropped})
				continue
			}
			res.sawTimed = true
		}
		m.processLine(line, dropped)
	}
	m.seal()
	return res
}

// stitch appends a parsed chunk to what came before: its leading lines continue the pending entry
// (or stand alone), and its first timestamped line completes the pending entry.
func (p *Parser) stitch(res *chunkResult) {
	for _, l := range res.prefix {
		p.m.processLine(l.line, l.dropped)
	}
	if res.sawTimed {
		p.m.finish()
		p.m.seal()
		p.takeBatches(p.m)
		p.takeBatches(res.m)
		p.m.adopt(res.m)
	} else {
		p.m.seal()
		p.takeBatches(p.m)
	}
	p.cr.recycle(res.ch)
	res.m.reset()
	p.free = append(p.free, res.m)
}

// takeBatches moves the sealed batches of m to the output.
func (p *Parser) takeBatches(m *machine) {
	p.out = append(p.out, m.out...)
	clear(m.out)
	m.out = m.out[:0]
}
