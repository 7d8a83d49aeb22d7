package joblog

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
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

// queued is a complete entry of the batch being built; its message is the machine's buf[start:end].
type queued struct {
	sec        int64
	start, end int32
	level      kind
	timed      bool
}

// batch is a run of complete entries whose messages share one string.
type batch struct {
	entries []Entry
}

// machine turns lines into entries: the line-level state machine of the parser. It holds the
// pending entry (complete only when the next timestamped line, or the end, arrives) and gathers
// complete entries into batches. A machine is used by one goroutine at a time.
type machine struct {
	// buf holds the messages of the batch being built (buf[:done]), then the pending entry's
	// message (buf[done:]).
	buf     []byte
	done    int
	q       []queued
	out     []batch // sealed batches, in order
	scratch []byte  // rewrite space for ::command:: lines

	// The pending entry.
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

func newMachine() *machine {
	return &machine{buf: make([]byte, 0, 2*batchBytes), q: make([]queued, 0, batchEntries)}
}

// entryPool recycles the entry arrays of batches (the parser gives an array back once it has
// returned its entries): writing into fresh memory costs a cache miss per line. A pooled array may
// still hold the messages of its last batch, keeping that batch's string alive until the array is
// reused or the garbage collector empties the pool.
var entryPool = sync.Pool{New: func() any { return new([batchEntries]Entry) }}

// putEntries gives the array of a batch's entries back to entryPool.
func putEntries(entries []Entry) {
	if cap(entries) == batchEntries {
		entryPool.Put((*[batchEntries]Entry)(entries[:batchEntries]))
	}
}

// prepareLine removes a CR before the line's end and a UTF-8 byte order mark at its start.
func prepareLine(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) >= 3 && line[0] == 0xEF && line[1] == 0xBB && line[2] == 0xBF {
		line = line[3:]
	}
	return line
}

// processLine applies one line (without its LF): it continues the pending entry, or completes it
// and starts another.
func (m *machine) processLine(line []byte, dropped int) {
	line = prepareLine(line)
	sec, text, ok := m.parseTimestamp(line)
	if !ok {
		if m.has && m.timed {
			m.continueEntry(line, dropped)
			return
		}
		text = line // a line before the first timestamped one: an entry of its own
	}
	m.finish()
	m.begin(sec, ok, text, dropped)
}

// begin starts the pending entry with the text of a line.
func (m *machine) begin(sec int64, timed bool, text []byte, dropped int) {
	m.has, m.timed, m.discard = true, timed, false
	m.sec, m.level = sec, kindInfo
	m.blanks, m.droppedLines = 0, 0
	m.buf = trimRightSpace(appendClean(m.buf[:m.done], text), m.done)
	if n := m.done; len(m.buf)-n >= 3 && (m.buf[n] == '#' || m.buf[n] == '[' || m.buf[n] == ':') {
		m.classify()
	}
	if m.level == kindInfo && !m.discard && isToolError(m.buf[m.done:]) {
		m.level = kindError
	}
	if dropped > 0 && len(m.buf) > m.done && !m.discard {
		m.buf = appendTruncated(m.buf, dropped)
	}
}

// continueEntry appends a line without a timestamp to the pending entry.
func (m *machine) continueEntry(line []byte, dropped int) {
	if m.discard {
		return
	}
	if m.droppedLines > 0 {
		m.droppedLines++
		return
	}
	start := len(m.buf)
	if start > m.done {
		if start-m.done+m.blanks+1 > MaxMessageBytes {
			m.droppedLines++
			return
		}
		for range m.blanks + 1 {
			m.buf = append(m.buf, '\n')
		}
	}
	textStart := len(m.buf)
	m.buf = trimRightSpace(appendClean(m.buf, line), textStart)
	if len(m.buf) == textStart {
		m.buf = m.buf[:start]
		if start > m.done {
			m.blanks++
		}
		return
	}
	if dropped > 0 {
		m.buf = appendTruncated(m.buf, dropped)
	}
	if len(m.buf)-m.done > MaxMessageBytes {
		m.buf = m.buf[:start]
		m.droppedLines++
		return
	}
	m.blanks = 0
}

// finish completes the pending entry: it joins the batch unless its message is empty or dropped.
func (m *machine) finish() {
	if !m.has {
		return
	}
	m.has = false
	if m.discard || len(m.buf) == m.done {
		m.buf = m.buf[:m.done]
		return
	}
	if m.droppedLines > 0 {
		m.buf = append(m.buf, "\n[… "...)
		m.buf = strconv.AppendInt(m.buf, int64(m.droppedLines), 10)
		m.buf = append(m.buf, " more lines truncated]"...)
	}
	m.q = append(m.q, queued{sec: m.sec, start: int32(m.done), end: int32(len(m.buf)), level: m.level, timed: m.timed}) //nolint:gosec // G115: offsets within one chunk's buffer, far below 2^31
	m.done = len(m.buf)
	if len(m.q) >= batchEntries || m.done >= batchBytes {
		m.seal()
	}
}

// seal turns the complete entries into a batch: their messages become one string.
func (m *machine) seal() {
	if len(m.q) == 0 {
		return
	}
	text := string(m.buf[:m.done])
	arr := entryPool.Get().(*[batchEntries]Entry)
	entries := arr[:len(m.q)]
	for i := range m.q {
		q := &m.q[i]
		e := &entries[i]
		e.Timestamp = time.Time{}
		if q.timed {
			e.Timestamp = time.Unix(q.sec, 0).UTC()
		}
		e.Level, e.Message = levelNames[q.level], text[q.start:q.end]
	}
	m.out = append(m.out, batch{entries: entries})
	m.q = m.q[:0]
	n := copy(m.buf, m.buf[m.done:]) // keep the pending message
	m.buf, m.done = m.buf[:n], 0
}

// adopt makes the pending entry of o (a machine that parsed the previous chunk) the pending entry
// of m, which has none.
func (m *machine) adopt(o *machine) {
	m.buf = append(m.buf[:m.done], o.buf[o.done:]...)
	m.has, m.timed, m.discard = o.has, o.timed, o.discard
	m.sec, m.level = o.sec, o.level
	m.blanks, m.droppedLines = o.blanks, o.droppedLines
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
func (m *machine) classify() {
	msg := m.buf[m.done:]
	if len(msg) < 3 {
		return
	}
	switch {
	case msg[0] == '#' && msg[1] == '#' && msg[2] == '[':
		end := bytes.IndexByte(msg[3:min(len(msg), 3+16)], ']')
		if end < 0 {
			return
		}
		switch string(msg[3 : 3+end]) {
		case "error":
			m.level = kindError
		case "warning":
			m.level = kindWarning
		case "notice", "group", "section", "command":
		case "debug":
			m.level = kindDebug
		case "endgroup":
			m.buf = m.buf[:m.done]
			return
		default:
			return
		}
		m.cutMessageHead(3 + end + 1)
	case msg[0] == '[' && bytes.HasPrefix(msg, []byte("[command]")):
		m.cutMessageHead(len("[command]"))
	case msg[0] == ':' && msg[1] == ':':
		m.classifyCommand()
	}
}

// cutMessageHead removes the first n bytes of the pending message.
func (m *machine) cutMessageHead(n int) {
	msg := m.buf[m.done:]
	m.buf = m.buf[:m.done+copy(msg, msg[n:])]
}

// classifyCommand handles a workflow command line "::name prop=v,prop=v::data".
func (m *machine) classifyCommand() {
	msg := m.buf[m.done+2:]
	end := bytes.Index(msg, []byte("::"))
	if end <= 0 {
		return
	}
	name, props, _ := bytes.Cut(msg[:end], []byte(" "))
	data := msg[end+2:]
	switch {
	case bytes.EqualFold(name, []byte("error")):
		m.level = kindError
	case bytes.EqualFold(name, []byte("warning")):
		m.level = kindWarning
	case bytes.EqualFold(name, []byte("notice")), bytes.EqualFold(name, []byte("group")):
		m.level = kindInfo
	case bytes.EqualFold(name, []byte("debug")):
		m.level = kindDebug
	case bytes.EqualFold(name, []byte("endgroup")):
		m.buf = m.buf[:m.done]
		return
	case bytes.EqualFold(name, []byte("add-mask")):
		// The value is a secret: drop it and whatever continues it.
		m.discard = true
		m.buf = m.buf[:m.done]
		return
	default:
		return
	}
	out := appendUnescaped(m.scratch[:0], data)
	if props = bytes.TrimSpace(props); len(props) > 0 {
		if len(out) > 0 {
			out = append(out, ' ')
		}
		out = append(out, '(')
		out = appendUnescaped(out, props)
		out = append(out, ')')
	}
	m.buf = trimRightSpace(append(m.buf[:m.done], out...), m.done)
	m.scratch = out[:0]
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
func (m *machine) parseTimestamp(line []byte) (int64, []byte, bool) {
	// Fast path: GitHub's "2024-01-20T10:01:00.1234567Z " in the second of the line before.
	if len(line) >= 29 && line[19] == '.' && line[27] == 'Z' && line[28] == ' ' && m.cacheOK &&
		binary.LittleEndian.Uint64(line) == binary.LittleEndian.Uint64(m.cacheKey[:]) &&
		binary.LittleEndian.Uint64(line[8:]) == binary.LittleEndian.Uint64(m.cacheKey[8:]) &&
		binary.LittleEndian.Uint32(line[15:]) == binary.LittleEndian.Uint32(m.cacheKey[15:]) {
		// Are the 7 bytes from line[20] digits? The eighth byte ('Z') is replaced by a '0'.
		w := binary.LittleEndian.Uint64(line[20:])&0x00FFFFFFFFFFFFFF | 0x3000000000000000
		if ((w-repeat30)|(w+repeat46)|w)&repeat80 == 0 {
			return m.cacheSec, line[29:], true
		}
	}
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
	if m.cacheOK && string(line[:19]) == string(m.cacheKey[:]) {
		return m.cacheSec - offset, text, true
	}
	sec, ok := parseSecond(line[:19])
	if !ok {
		return 0, nil, false
	}
	m.cacheOK, m.cacheSec = true, sec
	copy(m.cacheKey[:], line[:19])
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
// invalid UTF-8 by U+FFFD. It is the hot path: runs of printable ASCII are found 32 or 8 bytes at a
// time and copied whole; the common CSI sequences (colours) are skipped inline.
func appendClean(dst, src []byte) []byte {
	for len(src) > 0 {
		c := src[0]
		if c >= 0x20 && c < 0x80 {
			k := printableLen(src)
			dst = append(dst, src[:k]...)
			src = src[k:]
			continue
		}
		switch {
		case c == esc:
			if len(src) >= 3 && src[1] == '[' { // CSI, inline: colours are everywhere
				i := 2
				for i < len(src) && src[i] >= 0x30 && src[i] <= 0x3f {
					i++
				}
				if i < len(src) && src[i] >= 0x40 && src[i] <= 0x7e {
					src = src[i+1:]
					continue
				}
			}
			src = src[escapeLen(src):]
		case c == 0:
			src = src[1:]
		case c < 0x80: // a control character kept as text (tab)
			dst = append(dst, c)
			src = src[1:]
		default:
			r, size := utf8.DecodeRune(src)
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, "\uFFFD"...)
			} else {
				dst = append(dst, src[:size]...)
			}
			src = src[size:]
		}
	}
	return dst
}

const (
	repeat20 = 0x2020202020202020
	repeat30 = 0x3030303030303030
	repeat46 = 0x4646464646464646
	repeat80 = 0x8080808080808080
)

// printableLen returns the length of the run of printable ASCII (0x20–0x7F) at the start of s.
// In a word w, ((w-repeat20)|w)&repeat80 is non-zero when a byte is below 0x20 (it borrows into
// its high bit) or from 0x80 (its high bit is set); bytes above the first hit may be false hits,
// which the byte loop sorts out.
func printableLen(s []byte) int {
	n := 0
	for len(s) >= 32 {
		w0 := binary.LittleEndian.Uint64(s)
		w1 := binary.LittleEndian.Uint64(s[8:])
		w2 := binary.LittleEndian.Uint64(s[16:])
		w3 := binary.LittleEndian.Uint64(s[24:])
		if ((w0-repeat20)|w0|(w1-repeat20)|w1|(w2-repeat20)|w2|(w3-repeat20)|w3)&repeat80 != 0 {
			break
		}
		s = s[32:]
		n += 32
	}
	for len(s) >= 8 {
		w := binary.LittleEndian.Uint64(s)
		if ((w-repeat20)|w)&repeat80 != 0 {
			break
		}
		s = s[8:]
		n += 8
	}
	for _, c := range s {
		if c < 0x20 || c >= 0x80 {
			break
		}
		n++
	}
	return n
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

// reset clears m for another chunk; it keeps its buffers and its timestamp cache.
func (m *machine) reset() {
	m.buf, m.done = m.buf[:0], 0
	m.q = m.q[:0]
	m.has, m.timed, m.discard = false, false, false
	m.blanks, m.droppedLines = 0, 0
}

// Markers of the errors compilers and build tools print without a GitHub
// ##[error] marker, recognised at the start of an entry's first line.
var (
	toolErrorPrefixes = [][]byte{
		[]byte("error[E"),                  // rustc/cargo: error[E0599]: no method named …
		[]byte("error: could not compile"), // cargo
		[]byte("npm ERR!"),                 // npm
		[]byte("npm error "),               // npm 10+
		[]byte("FAILED:"),                  // ninja, meson
		[]byte("fatal:"),                   // git
	}
	errorWord = []byte("error ")
)

// isToolError reports whether a message (an entry's first line) is an error
// of a compiler or build tool: one of toolErrorPrefixes at its start, or
// "error TS<n>:", "error CS<n>:" or "error MSB<n>:" (tsc, MSBuild and the C#
// compiler, usually after a file position: "src/a.ts(3,5): error TS2322: …")
// at the start or after a space.
func isToolError(msg []byte) bool {
	if len(msg) < 6 {
		return false
	}
	for _, p := range toolErrorPrefixes {
		if bytes.HasPrefix(msg, p) {
			return true
		}
	}
	line := msg
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	for off := 0; ; {
		i := bytes.Index(line[off:], errorWord)
		if i < 0 {
			return false
		}
		at := off + i
		if at == 0 || line[at-1] == ' ' {
			if isCodedError(line[at+len(errorWord):]) {
				return true
			}
		}
		off = at + len(errorWord)
	}
}

// isCodedError reports whether s starts with TS, CS or MSB, digits and ':'.
func isCodedError(s []byte) bool {
	switch {
	case bytes.HasPrefix(s, []byte("TS")), bytes.HasPrefix(s, []byte("CS")):
		s = s[2:]
	case bytes.HasPrefix(s, []byte("MSB")):
		s = s[3:]
	default:
		return false
	}
	n := 0
	for n < len(s) && isDigit(s[n]) {
		n++
	}
	return n > 0 && n < len(s) && s[n] == ':'
}
