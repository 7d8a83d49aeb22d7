package server

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/deskforge/deskforge/models"
)

// Log paging: entries are read from the database in chunks of logChunkSize,
// each query finished before its entries are written, so a slow client never
// holds a database connection (SQLite has only one) and a long log is never
// held in memory. ?limit= caps the entries of one answer (default: no cap,
// the whole log as in the seed).
const (
	logChunkSize   = 1000
	maxLogLimit    = 100000
	headerNextSeq  = "X-Next-After"
	logFormatJSON  = "json"
	logFormatText  = "text"
	logMinLevelAll = "debug"
)

// logLevelRank orders log levels for ?level=: debug < info = success <
// warning < error. success ranks with info: it reports no problem, so
// ?level=warning keeps only warnings and errors.
var logLevelRank = map[string]int{
	models.LevelDebug:   0,
	models.LevelInfo:    1,
	models.LevelSuccess: 1,
	models.LevelWarning: 2,
	models.LevelError:   3,
}

// levelsAtLeast lists the levels ranked at or above min; nil means all.
func levelsAtLeast(min string) []string {
	if min == "" || min == logMinLevelAll {
		return nil
	}
	var levels []string
	for _, l := range []string{models.LevelDebug, models.LevelInfo, models.LevelSuccess, models.LevelWarning, models.LevelError} {
		if logLevelRank[l] >= logLevelRank[min] {
			levels = append(levels, l)
		}
	}
	return levels
}

// logEntryResponse is one entry of the Build Logs answer.
type logEntryResponse struct {
	Timestamp string `json:"timestamp"`
	Level     string `json:"level"`
	Message   string `json:"message"`
}

// logQuery is the parsed query of GET /builds/:id/logs.
type logQuery struct {
	after  int64
	limit  int // 0 = no cap
	levels []string
	format string
}

func parseLogQuery(c *gin.Context) (logQuery, error) {
	q := logQuery{format: logFormatJSON}
	if raw, ok := c.GetQuery("after"); ok {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 0 {
			return q, invalid("after", "after must be a log sequence number (an integer ≥ 0), e.g. the nextAfter of a previous answer")
		}
		q.after = n
	}
	if raw, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxLogLimit {
			return q, invalid("limit", "limit must be an integer from 1 to %d", maxLogLimit)
		}
		q.limit = n
	}
	if level, ok := c.GetQuery("level"); ok {
		if _, known := logLevelRank[level]; !known {
			return q, invalid("level", "level must be one of debug, info, success, warning, error")
		}
		q.levels = levelsAtLeast(level)
	}
	if format, ok := c.GetQuery("format"); ok {
		if format != logFormatJSON && format != logFormatText {
			return q, invalid("format", "format must be json or text")
		}
		q.format = format
	}
	return q, nil
}

// getBuildLogs streams a build's log: {"buildId", "logs": [...], "nextAfter"}
// or, with ?format=text, lines "2024-01-20T10:01:00Z [info] message".
// nextAfter (and the X-Next-After trailer) is the sequence number to pass as
// ?after= to continue: the last entry sent, or the request's after when none
// was sent. An empty logs array means the client has caught up.
func (s *Server) getBuildLogs(c *gin.Context) {
	b, err := s.buildForCaller(c, c.Param("id"))
	if err != nil {
		s.renderError(c, err)
		return
	}
	q, err := parseLogQuery(c)
	if err != nil {
		s.renderError(c, err)
		return
	}
	ctx := c.Request.Context()
	read := func(after int64, remaining int) ([]models.BuildLogEntry, int, error) {
		n := logChunkSize
		if q.limit > 0 && remaining < n {
			n = remaining
		}
		entries, err := s.store.ReadLog(ctx, models.LogQuery{BuildID: b.ID, After: after, Levels: q.levels, Limit: n})
		return entries, n, err
	}
	// The first chunk is read before anything is written, so a failure can
	// still be answered in the error envelope.
	remaining := q.limit
	entries, asked, err := read(q.after, remaining)
	if err != nil {
		s.renderError(c, err)
		return
	}

	c.Header("Trailer", headerNextSeq)
	if q.format == logFormatText {
		c.Header("Content-Type", "text/plain; charset=utf-8")
	} else {
		c.Header("Content-Type", "application/json; charset=utf-8")
	}
	c.Status(http.StatusOK)
	w := bufio.NewWriterSize(c.Writer, 32<<10)
	if q.format == logFormatJSON {
		prefix, _ := json.Marshal(b.ID)
		w.WriteString(`{"buildId":`)
		w.Write(prefix)
		w.WriteString(`,"logs":[`)
	}
	last, first := q.after, true
	for {
		for _, e := range entries {
			if q.format == logFormatText {
				w.WriteString(formatTime(e.Timestamp))
				w.WriteString(" [")
				w.WriteString(e.Level)
				w.WriteString("] ")
				w.WriteString(e.Message)
				w.WriteByte('\n')
			} else {
				if !first {
					w.WriteByte(',')
				}
				line, err := json.Marshal(logEntryResponse{Timestamp: formatTime(e.Timestamp), Level: e.Level, Message: e.Message})
				if err != nil {
					s.renderError(c, err)
					return
				}
				w.Write(line)
			}
			first = false
			last = e.Seq
		}
		if err := w.Flush(); err != nil {
			// The client went away.
			return
		}
		c.Writer.Flush()
		if q.limit > 0 {
			remaining -= len(entries)
		}
		if len(entries) < asked || (q.limit > 0 && remaining == 0) {
			break
		}
		entries, asked, err = read(last, remaining)
		if err != nil {
			s.renderError(c, err) // cuts the connection: the answer has started
			return
		}
	}
	if q.format == logFormatJSON {
		w.WriteString(`],"nextAfter":`)
		w.WriteString(strconv.FormatInt(last, 10))
		w.WriteString("}\n")
	}
	w.Flush()
	c.Writer.Header().Set(headerNextSeq, strconv.FormatInt(last, 10))
}
