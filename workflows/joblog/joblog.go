// Package joblog parses raw GitHub Actions job logs, as served by the job-logs endpoint
// (GET /repos/{owner}/{repo}/actions/jobs/{id}/logs), into log entries {timestamp, level, message}.
//
// The parser streams: it reads one line at a time through a fixed-size buffer and holds at most a
// small batch of entries (a few hundred, or about 16 KiB of text) plus the entry being read, so its
// memory use does not depend on the size of the log (see MaxLineBytes and MaxMessageBytes for the
// bounds). It has no dependencies outside the standard library.
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
//   - A line longer than MaxLineBytes (timestamp included) is truncated, not split: the first
//     MaxLineBytes bytes are kept (cut at a UTF-8 boundary) and " [… N bytes truncated]" is appended.
//     Splitting would turn one line into many entries; truncation keeps one entry per line.
//   - A message is capped at MaxMessageBytes: continuation lines that do not fit are dropped and the
//     message ends with "\n[… N more lines truncated]".
//   - Levels are the strings of the public API: debug, info, warning, error (success is never produced
//     by the parser; the engine appends it as the final entry of a successful build).
package joblog

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"time"
	"unicode/utf8"
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
	// MaxLineBytes is the longest line, timestamp included, that the parser keeps whole; longer
	// lines are truncated (see the package documentation). It is also the size of the read buffer.
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
	// of a few KiB, so keeping a single Message keeps that string alive: use strings.Clone to keep
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

// kind is an entry's level inside the parser; levelNames gives its string.
type kind uint8

const (
	kindDebug kind = iota
	kindInfo
	kindWarning
	kindError
)

var levelNames = [...]string{kindDebug: LevelDebug, kindInfo: LevelInfo, kindWarning: LevelWarning, kindError: LevelError}

// queued is a complete entry waiting in the current batch; its message is batch[start:end].
type queued struct {
	sec        int64
	timed      bool
	level      kind
	start, end int
}

// Parser reads entries from a raw job log. It is not safe for concurrent use.
//
// Messages of entries returned by the same parser may share memory (see Entry.Message).
type Parser struct {
	r   *bufio.Reader
	err error // io.EOF or the read error, returned once every entry read before it is out

	long    []byte // head of a line longer than the read buffer
	scratch []byte // rewrite space for ::command:: lines

	// buf holds the messages of the batch being built (buf[:done]), then the pending entry's
	// message (buf[done:]).
	buf   []byte
	done  int
	q     []queued
	qi    int    // next entry of q to return
	batch string // buf[:done] of the last complete batch

	// The pending entry: complete only when the next timestamped line (or the end) is read.
	has          bool
	timed        bool // it came from a timestamped line and takes continuation lines
	discard      bool // its text and continuation lines are dropped (::add-mask::)
	sec          int64
	level        kind
	blanks       int // empty continuation lines waiting for a non-empty one
	droppedLines int // continuation lines that did not fit in MaxMessageBytes

	// Timestamps of consecutive lines mostly share their second: parse each second once.
	cacheOK  bool
	cacheKey [19]byte
	cacheSec int64
}

// NewParser returns a parser reading the raw job log from r.
func NewParser(r io.Reader) *Parser {
	return &Parser{
		r:   bufio.NewReaderSize(r, MaxLineBytes),
		buf: make([]byte, 0, 2*batchBytes),
		q:   make([]queued, 0, batchEntries),
	}
}

// Next returns the next entry. At the end of the log it returns io.EOF; a read error is returned
// wrapped, after the entries read before it. Once Next has returned an error, it returns the same
// error again.
func (p *Parser) Next() (Entry, error) {
	for p.qi == len(p.q) {
		if p.err != nil {
			return Entry{}, p.err
		}
		p.fill()
	}
	q := &p.q[p.qi]
	p.qi++
	e := Entry{Level: levelNames[q.level], Message: p.batch[q.start:q.end]}
	if q.timed {
		e.Timestamp = time.Unix(q.sec, 0).UTC()
	}
	return e, nil
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

// fill builds the next batch. It stops early, rather than wait for input, when entries are ready
// and nothing is buffered, so a slow stream (a pipe) gets its entries as they complete.
func (p *Parser) fill() {
	n := copy(p.buf, p.buf[p.done:]) // keep the pending message only
	p.buf, p.done = p.buf[:n], 0
	p.q, p.qi = p.q[:0], 0
	for p.err == nil && len(p.q) < batchEntries && p.done < batchBytes {
		if len(p.q) > 0 && p.r.Buffered() == 0 {
			break
		}
		line, dropped, err := p.readLine()
		if err != nil {
			if err == io.EOF {
				p.err = io.EOF
			} else {
				p.err = fmt.Errorf("read job log: %w", err)
			}
		}
		if len(line) > 0 || dropped > 0 {
			p.processLine(line, dropped)
		}
	}
	if p.err != nil {
		p.finish()
	}
	p.batch = string(p.buf[:p.done])
}

// readLine returns the next line, valid until the next read, and how many bytes of it were dropped
// because it was longer than the read buffer.
func (p *Parser) readLine() ([]byte, int, error) {
	line, err := p.r.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return line, 0, err
	}
	p.long = append(p.long[:0], line...)
	dropped := 0
	for err == bufio.ErrBufferFull {
		line, err = p.r.ReadSlice('\n')
		dropped += len(line)
	}
	if err == nil { // the line terminator is not content
		dropped--
		if len(line) >= 2 && line[len(line)-2] == '\r' {
			dropped--
		}
	}
	head := p.long
	// Cut before a rune the buffer boundary split.
	for i := len(head) - 1; i >= 0 && i >= len(head)-utf8.UTFMax; i-- {
		if utf8.RuneStart(head[i]) {
			if !utf8.FullRune(head[i:]) {
				dropped += len(head) - i
				head = head[:i]
			}
			break
		}
	}
	return head, dropped, err
}

// processLine applies one line: it continues the pending entry or completes it and starts another.
func (p *Parser) processLine(line []byte, dropped int) {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) >= 3 && line[0] == 0xEF && line[1] == 0xBB && line[2] == 0xBF { // UTF-8 BOM
		line = line[3:]
	}
	sec, text, ok := p.parseTimestamp(line)
	if !ok {
		if p.has && p.timed {
			p.continueEntry(line, dropped)
			return
		}
		text = line // a line before the first timestamped one: an entry of its own
	}
	p.finish()
	p.begin(sec, ok, text, dropped)
}

// begin starts the pending entry with the text of a line.
func (p *Parser) begin(sec int64, timed bool, text []byte, dropped int) {
	p.has, p.timed, p.discard = true, timed, false
	p.sec, p.level = sec, kindInfo
	p.blanks, p.droppedLines = 0, 0
	p.buf = trimRightSpace(appendClean(p.buf[:p.done], text), p.done)
	p.classify()
	if dropped > 0 && len(p.buf) > p.done && !p.discard {
		p.buf = appendTruncated(p.buf, dropped)
	}
}

// continueEntry appends a line without a timestamp to the pending entry.
func (p *Parser) continueEntry(line []byte, dropped int) {
	if p.discard {
		return
	}
	if p.droppedLines > 0 {
		p.droppedLines++
		return
	}
	start := len(p.buf)
	if start > p.done {
		if start-p.done+p.blanks+1 > MaxMessageBytes {
			p.droppedLines++
			return
		}
		for range p.blanks + 1 {
			p.buf = append(p.buf, '\n')
		}
	}
	textStart := len(p.buf)
	p.buf = trimRightSpace(appendClean(p.buf, line), textStart)
	if len(p.buf) == textStart {
		p.buf = p.buf[:start]
		if start > p.done {
			p.blanks++
		}
		return
	}
	if dropped > 0 {
		p.buf = appendTruncated(p.buf, dropped)
	}
	if len(p.buf)-p.done > MaxMessageBytes {
		p.buf = p.buf[:start]
		p.droppedLines++
		return
	}
	p.blanks = 0
}

// finish completes the pending entry: it joins the batch unless its message is empty or dropped.
func (p *Parser) finish() {
	if !p.has {
		return
	}
	p.has = false
	if p.discard || len(p.buf) == p.done {
		p.buf = p.buf[:p.done]
		return
	}
	if p.droppedLines > 0 {
		p.buf = append(p.buf, "\n[… "...)
		p.buf = strconv.AppendInt(p.buf, int64(p.droppedLines), 10)
		p.buf = append(p.buf, " more lines truncated]"...)
	}
	p.q = append(p.q, queued{sec: p.sec, timed: p.timed, level: p.level, start: p.done, end: len(p.buf)})
	p.done = len(p.buf)
}

func appendTruncated(dst []byte, n int) []byte {
	dst = append(dst, " [… "...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, " bytes truncated]"...)
}

// trimRightSpace removes trailing white space from b, not before b[floor].
func trimRightSpace(b []byte, floor int) []byte {
	for len(b) > floor {
		switch b[len(b)-1] {
		case ' ', '\t', '\r', '\v', '\f':
			b = b[:len(b)-1]
		default:
			return b
		}
	}
	return b
}

// classify reads the marker at the start of the pending message, sets the level and removes it.
func (p *Parser) classify() {
	m := p.buf[p.done:]
	if len(m) < 3 {
		return
	}
	switch {
	case m[0] == '#' && m[1] == '#' && m[2] == '[':
		end := bytes.IndexByte(m[3:min(len(m), 3+16)], ']')
		if end < 0 {
			return
		}
		switch string(m[3 : 3+end]) {
		case "error":
			p.level = kindError
		case "warning":
			p.level = kindWarning
		case "notice", "group", "section", "command":
		case "debug":
			p.level = kindDebug
		case "endgroup":
			p.buf = p.buf[:p.done]
			return
		default:
			return
		}
		p.cutMessageHead(3 + end + 1)
	case m[0] == '[' && bytes.HasPrefix(m, []byte("[command]")):
		p.cutMessageHead(len("[command]"))
	case m[0] == ':' && m[1] == ':':
		p.classifyCommand()
	}
}

// cutMessageHead removes the first n bytes of the pending message.
func (p *Parser) cutMessageHead(n int) {
	m := p.buf[p.done:]
	p.buf = p.buf[:p.done+copy(m, m[n:])]
}

// classifyCommand handles a workflow command line "::name prop=v,prop=v::data".
func (p *Parser) classifyCommand() {
	m := p.buf[p.done+2:]
	end := bytes.Index(m, []byte("::"))
	if end <= 0 {
		return
	}
	name, props, _ := bytes.Cut(m[:end], []byte(" "))
	data := m[end+2:]
	switch {
	case bytes.EqualFold(name, []byte("error")):
		p.level = kindError
	case bytes.EqualFold(name, []byte("warning")):
		p.level = kindWarning
	case bytes.EqualFold(name, []byte("notice")), bytes.EqualFold(name, []byte("group")):
		p.level = kindInfo
	case bytes.EqualFold(name, []byte("debug")):
		p.level = kindDebug
	case bytes.EqualFold(name, []byte("endgroup")):
		p.buf = p.buf[:p.done]
		return
	case bytes.EqualFold(name, []byte("add-mask")):
		// The value is a secret: drop it and whatever continues it.
		p.discard = true
		p.buf = p.buf[:p.done]
		return
	default:
		return
	}
	out := appendUnescaped(p.scratch[:0], data)
	if props = bytes.TrimSpace(props); len(props) > 0 {
		if len(out) > 0 {
			out = append(out, ' ')
		}
		out = append(out, '(')
		out = appendUnescaped(out, props)
		out = append(out, ')')
	}
	p.buf = trimRightSpace(append(p.buf[:p.done], out...), p.done)
	p.scratch = out[:0]
}

// appendUnescaped undoes the escaping of workflow command data and properties
// (%25 → %, %0D → CR, %0A → LF, %3A → :, %2C → ,).
func appendUnescaped(dst, s []byte) []byte {
	for {
		i := bytes.IndexByte(s, '%')
		if i < 0 || i+2 >= len(s) {
			return append(dst, s...)
		}
		dst = append(dst, s[:i]...)
		var c byte
		switch string([]byte{upper(s[i+1]), upper(s[i+2])}) {
		case "25":
			c = '%'
		case "0D":
			c = '\r'
		case "0A":
			c = '\n'
		case "3A":
			c = ':'
		case "2C":
			c = ','
		default:
			dst = append(dst, '%')
			s = s[i+1:]
			continue
		}
		dst = append(dst, c)
		s = s[i+3:]
	}
}

// parseTimestamp reads the "2024-01-20T10:01:00.1234567Z " prefix of a line: it returns the time
// in Unix seconds and the text after the prefix.
func (p *Parser) parseTimestamp(line []byte) (int64, []byte, bool) {
	if len(line) < 20 || line[4] != '-' || line[7] != '-' || line[10] != 'T' || line[13] != ':' || line[16] != ':' {
		return 0, nil, false
	}
	i := 19
	if line[i] == '.' {
		i++
		start := i
		for i < len(line) && isDigit(line[i]) {
			i++
		}
		if i == start {
			return 0, nil, false
		}
	}
	if i >= len(line) {
		return 0, nil, false
	}
	var offset int64
	switch line[i] {
	case 'Z':
		i++
	case '+', '-':
		if i+6 > len(line) || line[i+3] != ':' {
			return 0, nil, false
		}
		oh, ok1 := digits2(line[i+1:])
		om, ok2 := digits2(line[i+4:])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, nil, false
		}
		offset = int64(oh*60+om) * 60
		if line[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return 0, nil, false
	}
	if i < len(line) {
		if line[i] != ' ' {
			return 0, nil, false
		}
		i++
	}
	text := line[i:]
	if p.cacheOK && bytes.Equal(line[:19], p.cacheKey[:]) {
		return p.cacheSec - offset, text, true
	}
	sec, ok := parseSecond(line[:19])
	if !ok {
		return 0, nil, false
	}
	p.cacheOK, p.cacheSec = true, sec
	copy(p.cacheKey[:], line[:19])
	return sec - offset, text, true
}

// parseSecond parses "2024-01-20T10:01:00" (separators already checked) as UTC Unix seconds.
func parseSecond(b []byte) (int64, bool) {
	y1, ok1 := digits2(b[0:])
	y2, ok2 := digits2(b[2:])
	mo, ok3 := digits2(b[5:])
	d, ok4 := digits2(b[8:])
	h, ok5 := digits2(b[11:])
	mi, ok6 := digits2(b[14:])
	s, ok7 := digits2(b[17:])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59 {
		return 0, false
	}
	t := time.Date(y1*100+y2, time.Month(mo), d, h, mi, s, 0, time.UTC)
	if t.Day() != d { // 2024-02-30 normalizes to March
		return 0, false
	}
	return t.Unix(), true
}

func digits2(b []byte) (int, bool) {
	if !isDigit(b[0]) || !isDigit(b[1]) {
		return 0, false
	}
	return int(b[0]-'0')*10 + int(b[1]-'0'), true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

const esc = 0x1b

// appendClean appends src to dst without ANSI escape sequences and NUL bytes, replacing each byte of
// invalid UTF-8 by U+FFFD. It is the hot path: printable ASCII is skipped 8 bytes at a time.
func appendClean(dst, src []byte) []byte {
	start, i := 0, 0
	for {
		for i+8 <= len(src) {
			w := binary.LittleEndian.Uint64(src[i:])
			// A byte below 0x20 borrows into its high bit; a byte from 0x80 has it set. Bytes above
			// the first hit may be false hits: the byte loop sorts them out.
			if ((w-0x2020202020202020)|w)&0x8080808080808080 != 0 {
				break
			}
			i += 8
		}
		if i >= len(src) {
			break
		}
		// Look at up to 8 bytes one by one, then go back to the word loop.
		for end := min(i+8, len(src)); i < end; {
			c := src[i]
			switch {
			case c >= 0x20 && c < 0x80:
				i++
			case c == esc:
				dst = append(dst, src[start:i]...)
				i += escapeLen(src[i:])
				start = i
			case c == 0:
				dst = append(dst, src[start:i]...)
				i++
				start = i
			case c < 0x80:
				i++ // other control characters (tab, CR) are text
			default:
				r, size := utf8.DecodeRune(src[i:])
				if r == utf8.RuneError && size == 1 {
					dst = append(dst, src[start:i]...)
					dst = append(dst, "\uFFFD"...)
					start = i + 1
				}
				i += size
			}
		}
	}
	return append(dst, src[start:]...)
}

// escapeLen returns the length of the escape sequence at the start of s (s[0] is ESC). A sequence
// cut by the end of s extends to the end; a malformed one ends before the offending byte.
func escapeLen(s []byte) int {
	if len(s) < 2 {
		return len(s)
	}
	switch b := s[1]; {
	case b == '[': // CSI: parameter bytes 0x30–0x3F, intermediate bytes 0x20–0x2F, final byte 0x40–0x7E
		for i := 2; i < len(s); i++ {
			switch c := s[i]; {
			case c >= 0x40 && c <= 0x7e:
				return i + 1
			case c < 0x20 || c > 0x3f:
				return i
			}
		}
		return len(s)
	case b == ']' || b == 'P' || b == 'X' || b == '^' || b == '_': // OSC, DCS, SOS, PM, APC: until BEL or ST
		for i := 2; i < len(s); i++ {
			switch s[i] {
			case 0x07:
				return i + 1
			case esc:
				if i+1 < len(s) && s[i+1] == '\\' {
					return i + 2
				}
				return i
			}
		}
		return len(s)
	case b >= 0x20 && b <= 0x2f: // nF: intermediate bytes, then a final byte 0x30–0x7E (ESC ( B)
		i := 2
		for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f {
			i++
		}
		if i < len(s) && s[i] >= 0x30 && s[i] <= 0x7e {
			return i + 1
		}
		return i
	case b >= 0x30 && b <= 0x7e: // two-byte escapes (ESC 7, ESC M, ESC c)
		return 2
	default: // ESC before a control or non-ASCII byte: drop the ESC alone
		return 1
	}
}
