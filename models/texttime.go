package models

import (
	"fmt"
	"strings"
	"time"
)

// storedTimeLayouts are the layouts the SQLite driver reads timestamps in
// (github.com/glebarez/go-sqlite), the first one being how it writes them.
var storedTimeLayouts = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02T15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseStoredTime parses a timestamp as SQLite stores it. The driver's
// layout (2006-01-02 15:04:05[.fraction][Z|±hh:mm]) is read directly;
// anything else goes through time.Parse with the driver's other layouts
// (a string without a zone is UTC, as for the driver).
func parseStoredTime(s string) (time.Time, error) {
	if t, ok := parseStoredTimeFast(s); ok {
		return t, nil
	}
	if i := strings.Index(s, " m="); i > 0 { // time.Time.String()
		if t, err := time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", strings.TrimSpace(s[:i])); err == nil {
			return t, nil
		}
	}
	if t, err := time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", s); err == nil {
		return t, nil
	}
	trimmed := strings.TrimSuffix(s, "Z")
	for _, layout := range storedTimeLayouts {
		if t, err := time.ParseInLocation(layout, trimmed, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q: unknown format", s)
}

// parseStoredTimeFast reads 2006-01-02 15:04:05[.fraction][Z|±hh:mm].
func parseStoredTimeFast(s string) (time.Time, bool) {
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(from, to int) (int, bool) {
		n := 0
		for i := from; i < to; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 7)
	day, ok3 := num(8, 10)
	hour, ok4 := num(11, 13)
	minute, ok5 := num(14, 16)
	sec, ok6 := num(17, 19)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	rest := s[19:]
	nsec := 0
	if len(rest) > 0 && rest[0] == '.' {
		i := 1
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		digits := i - 1
		if digits < 1 || digits > 9 {
			return time.Time{}, false
		}
		for j := 1; j < i; j++ {
			nsec = nsec*10 + int(rest[j]-'0')
		}
		for range 9 - digits {
			nsec *= 10
		}
		rest = rest[i:]
	}
	loc := time.UTC
	switch {
	case rest == "" || rest == "Z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, okh := num(len(s)-5, len(s)-3)
		om, okm := num(len(s)-2, len(s))
		if !okh || !okm || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		offset := oh*3600 + om*60
		if rest[0] == '-' {
			offset = -offset
		}
		if offset != 0 {
			loc = time.FixedZone("", offset)
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc)
	if t.Day() != day { // February 30th and the like
		return time.Time{}, false
	}
	return t, true
}

// parseStoredTimePtr is parseStoredTime for a nullable timestamp read as
// text, "" for NULL.
func parseStoredTimePtr(s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	t, err := parseStoredTime(s)
	if err != nil {
		return nil, err
	}
	return &t, nil
}
