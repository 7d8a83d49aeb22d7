package server

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/deskforge/deskforge/models"
)

// GET /builds/:id and the pages of GET /projects/:id/builds write their JSON
// with appendBuild, which appends the bytes encoding/json would produce for
// buildJSON's struct (TestAppendBuildMatchesEncodingJSON holds them equal),
// without reflection or the intermediate strings: encoding a page of 50
// builds that way took a fifth of the CPU of the request (BENCHMARKS.md,
// "Builds API"). Other answers showing a build use buildJSON.

// jsonBuffers recycles the answers' buffers.
var jsonBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 32<<10); return &b }}

// writeJSON answers status with the JSON that fill appends.
func writeJSON(c *gin.Context, status int, fill func([]byte) []byte) {
	bp := jsonBuffers.Get().(*[]byte)
	buf := fill((*bp)[:0])
	c.Data(status, "application/json; charset=utf-8", buf)
	if cap(buf) <= 1<<20 {
		*bp = buf
		jsonBuffers.Put(bp)
	}
}

// appendBuild appends b in the Get Build shape (see buildJSON).
func (s *Server) appendBuild(dst []byte, b *models.Build) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, b.ID)
	dst = append(dst, `,"projectId":`...)
	dst = appendJSONString(dst, b.ProjectID)
	dst = append(dst, `,"version":`...)
	dst = appendJSONString(dst, b.Version)
	dst = append(dst, `,"platform":`...)
	dst = appendJSONString(dst, b.Platform)
	dst = append(dst, `,"arch":`...)
	dst = appendJSONString(dst, b.Arch)
	dst = append(dst, `,"status":`...)
	dst = appendJSONString(dst, b.Status)
	dst = append(dst, `,"createdAt":`...)
	dst = appendJSONTime(dst, &b.CreatedAt)
	dst = append(dst, `,"startedAt":`...)
	dst = appendJSONTime(dst, b.StartedAt)
	dst = append(dst, `,"completedAt":`...)
	dst = appendJSONTime(dst, b.CompletedAt)
	dst = append(dst, `,"duration":`...)
	if b.StartedAt != nil && b.CompletedAt != nil {
		dst = strconv.AppendInt(dst, int64(b.CompletedAt.Truncate(time.Second).Sub(b.StartedAt.Truncate(time.Second))/time.Second), 10)
	} else {
		dst = append(dst, "null"...)
	}
	if b.Status == models.StatusSuccess && b.ArtifactName != "" {
		dst = append(dst, `,"artifactUrl":`...)
		dst = appendJSONString(dst, s.publicURL+s.links.sign(artifactPath(b.ID, b.ArtifactName)))
		dst = append(dst, `,"artifactSize":`...)
		if b.ArtifactSize != nil {
			dst = strconv.AppendInt(dst, *b.ArtifactSize, 10)
		} else {
			dst = append(dst, "null"...)
		}
	} else {
		dst = append(dst, `,"artifactUrl":null,"artifactSize":null`...)
	}
	dst = append(dst, `,"buildLog":`...)
	dst = appendJSONStrings(dst, s.publicURL, "/builds/", b.ID, "/logs")
	if b.RetryOf != nil {
		dst = append(dst, `,"retryOf":`...)
		dst = appendJSONString(dst, *b.RetryOf)
	}
	dst = append(dst, `,"progress":`...)
	if b.ProgressSteps > 0 {
		dst = append(dst, `{"step":`...)
		dst = strconv.AppendInt(dst, int64(b.ProgressStep), 10)
		dst = append(dst, `,"steps":`...)
		dst = strconv.AppendInt(dst, int64(b.ProgressSteps), 10)
		dst = append(dst, `,"name":`...)
		dst = appendJSONString(dst, b.ProgressName)
		dst = append(dst, '}')
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"error":`...)
	if b.Status == models.StatusFailed {
		e := failureOf(b)
		dst = append(dst, `{"code":`...)
		dst = appendJSONString(dst, e.Code)
		dst = append(dst, `,"message":`...)
		dst = appendJSONString(dst, e.Message)
		dst = append(dst, `,"step":`...)
		if e.Step != nil {
			dst = appendJSONString(dst, *e.Step)
		} else {
			dst = append(dst, "null"...)
		}
		dst = append(dst, '}')
	} else {
		dst = append(dst, "null"...)
	}
	return append(dst, '}')
}

// appendBuildList appends a List Builds page (see buildListResponse).
func (s *Server) appendBuildList(dst []byte, builds []models.Build, total int64, next string) []byte {
	dst = append(dst, `{"builds":[`...)
	for i := range builds {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = s.appendBuild(dst, &builds[i])
	}
	dst = append(dst, `],"total":`...)
	dst = strconv.AppendInt(dst, total, 10)
	dst = append(dst, `,"nextCursor":`...)
	if next == "" {
		dst = append(dst, "null"...)
	} else {
		dst = appendJSONString(dst, next)
	}
	return append(dst, '}')
}

// appendJSONTime appends t as timeFormat in UTC, or null. Years 0-9999
// are written digit by digit (time.Time.AppendFormat interprets its layout
// on every call: a tenth of the encoding of a page).
func appendJSONTime(dst []byte, t *time.Time) []byte {
	if t == nil {
		return append(dst, "null"...)
	}
	u := t.UTC()
	year, month, day := u.Date()
	if year < 0 || year > 9999 {
		dst = append(dst, '"')
		dst = u.AppendFormat(dst, timeFormat)
		return append(dst, '"')
	}
	hour, minute, second := u.Clock()
	const digits = "0123456789"
	return append(dst, '"',
		digits[year/1000], digits[year/100%10], digits[year/10%10], digits[year%10], '-',
		digits[month/10], digits[month%10], '-', digits[day/10], digits[day%10], 'T',
		digits[hour/10], digits[hour%10], ':', digits[minute/10], digits[minute%10], ':',
		digits[second/10], digits[second%10], 'Z', '"')
}

// appendJSONString appends s as encoding/json encodes a string: as it is
// when it holds only printable ASCII that needs no escape, otherwise
// through encoding/json itself (HTML characters, control characters,
// non-ASCII text and invalid UTF-8 included).
func appendJSONString(dst []byte, s string) []byte {
	if needsJSONEscape(s) {
		b, _ := json.Marshal(s) // a string always encodes
		return append(dst, b...)
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// needsJSONEscape reports whether s holds a byte that encoding/json would
// not write as it is (control characters, non-ASCII, quotes, backslashes,
// HTML characters).
func needsJSONEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return true
		}
	}
	return false
}

// appendJSONStrings appends the concatenation of parts as encoding/json
// encodes a string, without building the concatenation when no part needs
// an escape.
func appendJSONStrings(dst []byte, parts ...string) []byte {
	for _, p := range parts {
		if needsJSONEscape(p) {
			return appendJSONString(dst, strings.Join(parts, ""))
		}
	}
	dst = append(dst, '"')
	for _, p := range parts {
		dst = append(dst, p...)
	}
	return append(dst, '"')
}

// renderBuild answers a build in the Get Build shape.
func (s *Server) renderBuild(c *gin.Context, status int, b *models.Build) {
	writeJSON(c, status, func(dst []byte) []byte { return s.appendBuild(dst, b) })
}
