package models

import (
	"crypto/rand"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

var (
	idMu      sync.Mutex
	idEntropy = ulid.Monotonic(rand.Reader, 0)
)

// NewID returns prefix + "_" + a lowercase ULID: unique, and sorting by
// creation time (monotonic within a process).
func NewID(prefix string) string {
	idMu.Lock()
	id := ulid.MustNew(ulid.Timestamp(time.Now()), idEntropy)
	idMu.Unlock()
	return prefix + "_" + strings.ToLower(id.String())
}

// IDAt returns the smallest id of prefix created in t's millisecond (a ULID
// with zero entropy): every id created at t or later sorts above it, every
// id created before t below it.
func IDAt(prefix string, t time.Time) string {
	var id ulid.ULID
	if err := id.SetTime(ulid.Timestamp(t)); err != nil {
		return prefix + "_"
	}
	return prefix + "_" + strings.ToLower(id.String())
}

// IsID reports whether s has the shape of an id NewID(prefix) returns:
// prefix, "_" and 26 lowercase base-32 characters. Callers check ids from
// outside with it before they reach the database.
func IsID(prefix, s string) bool {
	rest, ok := strings.CutPrefix(s, prefix+"_")
	if !ok || len(rest) != 26 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; (c < '0' || c > '9') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}
