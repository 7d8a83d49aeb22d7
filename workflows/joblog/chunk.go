package joblog

import (
	"bytes"
	"io"
	"unicode/utf8"
)

// chunk is a run of complete lines read from the log (the last chunk may end without a LF), or,
// when giant is set, the head of one line longer than the read buffer: data is its first maxLine
// bytes and dropped counts the bytes after them.
type chunk struct {
	data    []byte
	giant   bool
	dropped int
	buf     []byte // the buffer data lives in, recycled after use
}

// chunkReader cuts the log into chunks at line ends. It is used by the parser's goroutine only.
type chunkReader struct {
	r       io.Reader
	size    int // read buffer size, at least 2*maxLine
	maxLine int
	carry   []byte // the start of a line cut by the end of the last read
	err     error  // io.EOF or the read error, once met
	full    bool   // the last read filled its buffer: more input is probably ready
	free    [][]byte
}

// next returns the next chunk, or nil when the input is exhausted (c.err then says why).
func (c *chunkReader) next() *chunk {
	if c.err != nil && len(c.carry) == 0 {
		return nil
	}
	var buf []byte
	if n := len(c.free); n > 0 {
		buf, c.free = c.free[n-1][:0], c.free[:n-1]
	} else if c.full {
		buf = make([]byte, 0, c.size)
	} else {
		// Most logs are small: start with the smallest buffer that can hold a whole long line
		// (see giant), and read in full-size chunks once a read has filled its buffer.
		buf = make([]byte, 0, min(c.size, 2*c.maxLine))
	}
	buf = append(buf, c.carry...)
	c.carry = c.carry[:0]
	zeroReads := 0
	for c.err == nil && len(buf) < cap(buf) {
		n, err := c.r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			c.err = err
			break
		}
		if n == 0 {
			if zeroReads++; zeroReads > 100 {
				c.err = io.ErrNoProgress
			}
			continue
		}
		// A short read that completes a line is enough: a slow stream (a pipe) gets its entries
		// as they come instead of waiting for a full buffer.
		if len(buf) < cap(buf) && bytes.IndexByte(buf[len(buf)-n:], '\n') >= 0 {
			break
		}
	}
	if c.err != nil { // the end: everything left is the last chunk
		if len(buf) == 0 {
			c.free = append(c.free, buf)
			return nil
		}
		return &chunk{data: buf, buf: buf}
	}
	c.full = len(buf) == cap(buf)
	if last := bytes.LastIndexByte(buf, '\n'); last >= 0 {
		c.carry = append(c.carry, buf[last+1:]...)
		return &chunk{data: buf[:last+1], buf: buf}
	}
	return c.giant(buf)
}

// giant handles a full buffer without a LF: a line longer than the buffer. It keeps the first
// maxLine bytes and reads on to the line's end, counting the bytes it drops.
func (c *chunkReader) giant(buf []byte) *chunk {
	rest := buf[c.maxLine:cap(buf)]
	dropped := len(buf) - c.maxLine
	last := buf[len(buf)-1] // the last byte dropped so far, to spot a CR before the LF
	zeroReads := 0
	for c.err == nil {
		n, err := c.r.Read(rest)
		if n == 0 && err == nil {
			if zeroReads++; zeroReads > 100 {
				c.err = io.ErrNoProgress
			}
			continue
		}
		if i := bytes.IndexByte(rest[:n], '\n'); i >= 0 {
			dropped += i
			if i > 0 {
				last = rest[i-1]
			}
			if last == '\r' && dropped > 0 { // the CR of a CRLF is no content
				dropped--
			}
			c.carry = append(c.carry, rest[i+1:n]...)
			break
		}
		dropped += n
		if n > 0 {
			last = rest[n-1]
		}
		if err != nil {
			c.err = err
		}
	}
	return &chunk{data: buf[:c.maxLine], giant: true, dropped: dropped, buf: buf}
}

// recycle gives a chunk's buffer back for reuse; a small first buffer is dropped once the log has
// proved large.
func (c *chunkReader) recycle(ch *chunk) {
	if cap(ch.buf) == c.size || !c.full {
		c.free = append(c.free, ch.buf)
	}
}

// lineIter yields the lines of a chunk without their LF, with the number of bytes dropped from each
// line longer than maxLine.
type lineIter struct {
	data    []byte
	maxLine int
	giant   bool
	dropped int
}

func (ch *chunk) lines(maxLine int) lineIter {
	return lineIter{data: ch.data, maxLine: maxLine, giant: ch.giant, dropped: ch.dropped}
}

// next returns the next line; ok is false at the end of the chunk.
func (it *lineIter) next() (line []byte, dropped int, ok bool) {
	if len(it.data) == 0 {
		return nil, 0, false
	}
	if it.giant {
		line, dropped = it.data, it.dropped
		it.data = nil
		return cutRune(line, dropped)
	}
	i := bytes.IndexByte(it.data, '\n')
	terminated := i >= 0
	if i < 0 {
		i = len(it.data)
	}
	line = it.data[:i]
	if terminated {
		it.data = it.data[i+1:]
	} else {
		it.data = nil
	}
	if len(line) < it.maxLine {
		return line, 0, true
	}
	// A line of maxLine bytes or more keeps its first maxLine bytes (see MaxLineBytes).
	rest := line[it.maxLine:]
	if terminated && len(rest) > 0 && rest[len(rest)-1] == '\r' {
		rest = rest[:len(rest)-1]
	}
	return cutRune(line[:it.maxLine], len(rest))
}

// cutRune cuts the head of a truncated line before a rune that the cut split.
func cutRune(head []byte, dropped int) ([]byte, int, bool) {
	for i := len(head) - 1; i >= 0 && i >= len(head)-utf8.UTFMax; i-- {
		if utf8.RuneStart(head[i]) {
			if !utf8.FullRune(head[i:]) {
				dropped += len(head) - i
				head = head[:i]
			}
			break
		}
	}
	return head, dropped, true
}
