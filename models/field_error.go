package models

import (
	"fmt"
	"time"
)

// FieldError is an invalid request naming the offending field (in the API's
// JSON spelling, e.g. "platform" or "window.width"). It wraps ErrInvalid.
type FieldError struct {
	Field   string
	Message string
}

// Invalid returns a *FieldError for field with a formatted message that
// should name the allowed values ("platform must be one of mac, windows, linux").
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Error implements error.
func (e *FieldError) Error() string { return e.Message }

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// StateError is a conflict with the current state, with a machine-readable
// code for API clients (e.g. "not_ready", "project_has_active_builds"). It
// wraps ErrConflict.
type StateError struct {
	Code    string
	Message string
}

// Conflict returns a *StateError with code and a formatted message.
func Conflict(code, format string, args ...any) error {
	return &StateError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error implements error.
func (e *StateError) Error() string { return e.Message }

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *StateError) Unwrap() error { return ErrConflict }

// RateLimitedError means the caller sent too many requests; it may try again
// after RetryAfter. The HTTP layer answers 429 with a Retry-After header.
type RateLimitedError struct {
	RetryAfter time.Duration
	Message    string
}

// Error implements error.
func (e *RateLimitedError) Error() string { return e.Message }
