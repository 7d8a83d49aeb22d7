package main

import "errors"

// errUsage means the usage was already printed; exit with status 2.
var errUsage = errors.New("usage")

// Exit statuses of the client commands (deskforge build …); other commands
// exit 1 on any error.
const (
	exitFailed      = 1   // the build failed or was cancelled
	exitUsage       = 2   // bad flags or arguments
	exitServer      = 3   // the server refused the request, failed, or could not be reached
	exitInterrupted = 130 // Ctrl-C while following a build (which goes on)
)

// exitError is an error that ends deskforge with a given status. An empty
// message prints nothing (what was to say is already said).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }
