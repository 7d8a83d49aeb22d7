// Package ui is DeskForge's web dashboard: static HTML, CSS and a little
// vanilla JavaScript, embedded with go:embed and served by `deskforge serve`
// at / (server/dashboard.go).
//
// Why static files and plain JavaScript rather than html/template pages or a
// framework: the dashboard signs in with an API key kept in the browser's
// session storage and sent as a bearer header, so the server never sees the
// key on a page load and cannot render a user's data into HTML; every view
// is a fetch of the same JSON API the command line and scripts use, plus the
// build's event stream (EventSource). That needs a few hundred lines of
// JavaScript: no build step, no vendored framework to keep up to date, and
// nothing fetched from outside (the pages' Content-Security-Policy allows
// only this server). Text from the API is always set with textContent,
// never as HTML.
package ui

import (
	"embed"
	"io/fs"
)

//go:embed static
var files embed.FS

// FS returns the dashboard's files: index.html, app.js and app.css.
func FS() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	return sub
}
