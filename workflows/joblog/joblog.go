// Package joblog parses raw GitHub Actions job logs, as served by the job-logs endpoint
// (GET /repos/{owner}/{repo}/actions/jobs/{id}/logs), into log entries {timestamp, level, message}.
//
// The parser streams: it reads one line at a time through a fixed-size buffer and holds at most one
// entry in memory, so its memory use does not depend on the size of the log (see MaxLineBytes and
// MaxMessageBytes for the bounds). It has no dependencies outside the standard library.
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
	// continuation lines; never empty.
	Message string
}

// Parser reads entries from a raw job log. It is not safe for concurrent use.
type Parser struct {
	r   *bufio.Reader
	err error // io.EOF or the read error, returned once the pending entry is out

	long    []byte // head of a line longer than the read buffer
	scratch []byte // rewrite space for ::command:: lines

	// The pending entry: complete only when the next timestamped line (or the end) is read.
	has          bool
	timed        bool // it came from a timestamped line and takes continuation lines
	discard      bool // its text and continuation lines are dropped (::add-mask::)
	ts           time.Time
	level        string
	msg          []byte
	blanks       int // empty continuation lines waiting for a non-empty one
	droppedLines int // continuation lines that did not fit in MaxMessageBytes

	// Timestamps of consecutive lines mostly share their second: parse each second once.
	cacheOK   bool
	cacheKey  [19]byte
	cacheTime time.Time
}

// NewParser returns a parser reading the raw job log from r.
func NewParser(r io.Reader) *Parser {
	return &Parser{
		r:   bufio.NewReaderSize(r, MaxLineBytes),
		msg: make([]byte, 0, 1024),
	}
}

// Next returns the next entry. At the end of the log it returns io.EOF; a read error is returned
// wrapped, after the entries read before it. Once Next has returned an error, it returns the same
// error again.
func (p *Parser) Next() (Entry, error) {
	for p.err == nil {
		line, dropped, err := p.readLine()
		if err != nil {
			if err == io.EOF {
				p.err = io.EOF
			} else {
				p.err = fmt.Errorf("read job log: %w", err)
			}
		}
		if len(line) == 0 && dropped == 0 {
			continue
		}
		if e, ok := p.processLine(line, dropped); ok {
			return e, nil
		}
	}
	if e, ok := p.take(); ok {
		return e, nil
	}
	return Entry{}, p.err
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

// readLine returns the next line, valid until the next read, and how many bytes of it were dropped
// because it was longer than the read buffer.
func (p *Parser) readLine() ([]byte, int, error) {
	line, err := p.r.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, 0, err
	}
	p.long = append(p.long[:0], line...)
	dropped := 0
	for errors.Is(err, bufio.ErrBufferFull) {
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

var bom = []byte{0xEF, 0xBB, 0xBF}

// processLine applies one line; it returns the previous entry when the line completes it.
func (p *Parser) processLine(line []byte, dropped int) (Entry, bool) {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	line = bytes.TrimPrefix(line, bom)
	ts, text, ok := p.parseTimestamp(line)
	if !ok {
		if p.has && p.timed {
			p.continueEntry(line, dropped)
			return Entry{}, false
		}
		text = line // a line before the first timestamped one: an entry of its own
	}
	e, emitted := p.take()
	p.begin(ts, ok, text, dropped)
	return e, emitted
}

// begin starts the pending entry with the text of a line.
func (p *Parser) begin(ts time.Time, timed bool, text []byte, dropped int) {
	p.has, p.timed, p.discard = true, timed, false
	p.ts, p.level = ts, LevelInfo
	p.blanks, p.droppedLines = 0, 0
	p.msg = trimRightSpace(appendClean(p.msg[:0], text))
	p.classify()
	if dropped > 0 && len(p.msg) > 0 && !p.discard {
		p.msg = appendTruncated(p.msg, dropped)
	}
}

// continueEntry appends a line without a timestamp to the pending entry.
func (p *Parser) continueEntry(line []byte, dropped int) {
	if p.discard || p.droppedLines > 0 {
		if p.droppedLines > 0 {
			p.droppedLines++
		}
		return
	}
	start := len(p.msg)
	if start > 0 {
		if start+p.blanks+1 > MaxMessageBytes {
			p.droppedLines++
			return
		}
		for range p.blanks + 1 {
			p.msg = append(p.msg, '\n')
		}
	}
	textStart := len(p.msg)
	p.msg = trimRightSpace(appendClean(p.msg, line))
	if len(p.msg) == textStart {
		p.msg = p.msg[:start]
		if start > 0 {
			p.blanks++
		}
		return
	}
	if dropped > 0 {
		p.msg = appendTruncated(p.msg, dropped)
	}
	if len(p.msg) > MaxMessageBytes {
		p.msg = p.msg[:start]
		p.droppedLines++
		return
	}
	p.blanks = 0
}

// take returns the pending entry, if there is one worth keeping, and clears it.
func (p *Parser) take() (Entry, bool) {
	if !p.has {
		return Entry{}, false
	}
	p.has = false
	if p.discard || len(p.msg) == 0 {
		return Entry{}, false
	}
	if p.droppedLines > 0 {
		p.msg = append(p.msg, "\n[… "...)
		p.msg = strconv.AppendInt(p.msg, int64(p.droppedLines), 10)
		p.msg = append(p.msg, " more lines truncated]"...)
	}
	return Entry{Timestamp: p.ts, Level: p.level, Message: string(p.msg)}, true
}

func appendTruncated(dst []byte, n int) []byte {
	dst = append(dst, " [… "...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, " bytes truncated]"...)
}

func trimRightSpace(b []byte) []byte {
	for len(b) > 0 {
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
	m := p.msg
	if len(m) < 3 {
		return
	}
	switch {
	case m[0] == '#' && m[1] == '#' && m[2] == '[':
		end := bytes.IndexByte(m[3:min(len(m), 3+16)], ']')
		if end < 0 {
			return
		}
		level, keep := LevelInfo, true
		switch string(m[3 : 3+end]) {
		case "error":
			level = LevelError
		case "warning":
			level = LevelWarning
		case "notice", "group", "section", "command":
		case "debug":
			level = LevelDebug
		case "endgroup":
			keep = false
		default:
			return
		}
		p.level = level
		if !keep {
			p.msg = p.msg[:0]
			return
		}
		p.msg = p.msg[:copy(p.msg, m[3+end+1:])]
	case m[0] == '[' && bytes.HasPrefix(m, []byte("[command]")):
		p.msg = p.msg[:copy(p.msg, m[len("[command]"):])]
	case m[0] == ':' && m[1] == ':':
		p.classifyCommand()
	}
}

// classifyCommand handles a workflow command line "::name prop=v,prop=v::data".
func (p *Parser) classifyCommand() {
	m := p.msg[2:]
	end := bytes.Index(m, []byte("::"))
	if end <= 0 {
		return
	}
	name, props, _ := bytes.Cut(m[:end], []byte(" "))
	data := m[end+2:]
	switch {
	case bytes.EqualFold(name, []byte("error")):
		p.level = LevelError
	case bytes.EqualFold(name, []byte("warning")):
		p.level = LevelWarning
	case bytes.EqualFold(name, []byte("notice")), bytes.EqualFold(name, []byte("group")):
		p.level = LevelInfo
	case bytes.EqualFold(name, []byte("debug")):
		p.level = LevelDebug
	case bytes.EqualFold(name, []byte("endgroup")):
		p.msg = p.msg[:0]
		return
	case bytes.EqualFold(name, []byte("add-mask")):
		// The value is a secret: drop it and whatever continues it.
		p.discard = true
		p.msg = p.msg[:0]
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
	p.scratch, p.msg = p.msg, trimRightSpace(out)
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

// parseTimestamp reads the "2024-01-20T10:01:00.1234567Z " prefix of a line.
func (p *Parser) parseTimestamp(line []byte) (time.Time, []byte, bool) {
	if len(line) < 20 || line[4] != '-' || line[7] != '-' || line[10] != 'T' || line[13] != ':' || line[16] != ':' {
		return time.Time{}, nil, false
	}
	i := 19
	if line[i] == '.' {
		i++
		start := i
		for i < len(line) && isDigit(line[i]) {
			i++
		}
		if i == start {
			return time.Time{}, nil, false
		}
	}
	if i >= len(line) {
		return time.Time{}, nil, false
	}
	offset := 0
	switch line[i] {
	case 'Z':
		i++
	case '+', '-':
		if i+6 > len(line) || line[i+3] != ':' {
			return time.Time{}, nil, false
		}
		oh, ok1 := digits2(line[i+1:])
		om, ok2 := digits2(line[i+4:])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return time.Time{}, nil, false
		}
		offset = (oh*60 + om) * 60
		if line[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return time.Time{}, nil, false
	}
	if i < len(line) {
		if line[i] != ' ' {
			return time.Time{}, nil, false
		}
		i++
	}
	text := line[i:]
	if offset == 0 && p.cacheOK && bytes.Equal(line[:19], p.cacheKey[:]) {
		return p.cacheTime, text, true
	}
	t, ok := parseSecond(line[:19])
	if !ok {
		return time.Time{}, nil, false
	}
	if offset != 0 {
		return t.Add(-time.Duration(offset) * time.Second), text, true
	}
	p.cacheOK, p.cacheTime = true, t
	copy(p.cacheKey[:], line[:19])
	return t, text, true
}

// parseSecond parses "2024-01-20T10:01:00" (separators already checked) as UTC.
func parseSecond(b []byte) (time.Time, bool) {
	y1, ok1 := digits2(b[0:])
	y2, ok2 := digits2(b[2:])
	mo, ok3 := digits2(b[5:])
	d, ok4 := digits2(b[8:])
	h, ok5 := digits2(b[11:])
	mi, ok6 := digits2(b[14:])
	s, ok7 := digits2(b[17:])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59 {
		return time.Time{}, false
	}
	t := time.Date(y1*100+y2, time.Month(mo), d, h, mi, s, 0, time.UTC)
	if t.Day() != d { // 2024-02-30 normalizes to March
		return time.Time{}, false
	}
	return t, true
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

// appendClean appends src to dst without ANSI escape sequences, NUL bytes and invalid UTF-8.
func appendClean(dst, src []byte) []byte {
	for {
		i := bytes.IndexByte(src, esc)
		if i < 0 {
			return appendText(dst, src)
		}
		dst = appendText(dst, src[:i])
		src = src[i+escapeLen(src[i:]):]
	}
}

// appendText appends s, which holds no ESC, replacing invalid UTF-8 bytes by U+FFFD and dropping NULs.
func appendText(dst, s []byte) []byte {
	if bytes.IndexByte(s, 0) < 0 && utf8.Valid(s) {
		return append(dst, s...)
	}
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		switch {
		case r == utf8.RuneError && size == 1:
			dst = utf8.AppendRune(dst, utf8.RuneError)
		case r != 0:
			dst = append(dst, s[:size]...)
		}
		s = s[size:]
	}
	return dst
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
