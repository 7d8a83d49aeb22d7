package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Artifact is an open download of a build's installer.
type Artifact struct {
	// Body is the installer's bytes from Offset on; close it.
	Body io.ReadCloser
	// Offset is where Body starts: the offset asked for when the server
	// honoured the range, else 0.
	Offset int64
	// Size is the installer's whole size, -1 when the server did not say.
	Size int64
	// Name is the file name the server suggests (Content-Disposition), or "".
	Name string
	// SHA256 is the installer's SHA-256 (hex) when the server gave it as
	// the ETag, else "".
	SHA256 string
}

var sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)

// OpenArtifact starts downloading a successful build's installer (GET
// /builds/:id/download, following the redirect to GitHub), from offset on
// when offset > 0 (a Range request; servers that ignore it answer from 0,
// see Artifact.Offset). A build that has not succeeded answers an
// *APIError with status 409 and code not_ready.
func (c *Client) OpenArtifact(ctx context.Context, id string, offset int64) (*Artifact, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/builds/"+url.PathEscape(id)+"/download", nil, nil)
	if err != nil {
		return nil, err
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download build %s: %w", id, err)
	}
	a := &Artifact{Body: resp.Body, Size: -1}
	switch resp.StatusCode {
	case http.StatusOK:
		a.Size = resp.ContentLength
	case http.StatusPartialContent:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != offset {
			resp.Body.Close()
			return nil, fmt.Errorf("download build %s: unexpected Content-Range %q for offset %d", id, resp.Header.Get("Content-Range"), offset)
		}
		a.Offset, a.Size = start, size
	case http.StatusRequestedRangeNotSatisfiable:
		// The offset is at or past the end: the file is complete (or is not
		// this artifact; the caller's size check tells).
		_, size, _ := parseContentRange(resp.Header.Get("Content-Range"))
		resp.Body.Close()
		return &Artifact{Body: io.NopCloser(strings.NewReader("")), Offset: offset, Size: size}, nil
	default:
		defer resp.Body.Close()
		return nil, fmt.Errorf("download build %s: %w", id, c.readAPIError(resp))
	}
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil {
		a.Name = params["filename"]
	}
	if etag := strings.Trim(strings.TrimPrefix(resp.Header.Get("ETag"), "W/"), `"`); sha256Re.MatchString(etag) {
		a.SHA256 = etag
	}
	return a, nil
}

// parseContentRange reads "bytes START-END/SIZE" (or "bytes */SIZE"); size
// is -1 when "*".
func parseContentRange(v string) (start, size int64, ok bool) {
	rest, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, -1, false
	}
	rng, total, found := strings.Cut(rest, "/")
	if !found {
		return 0, -1, false
	}
	size = -1
	if total != "*" {
		n, err := strconv.ParseInt(total, 10, 64)
		if err != nil {
			return 0, -1, false
		}
		size = n
	}
	if rng == "*" {
		return 0, size, true
	}
	first, _, found := strings.Cut(rng, "-")
	n, err := strconv.ParseInt(first, 10, 64)
	if !found || err != nil {
		return 0, -1, false
	}
	return n, size, true
}

// DownloadOptions tune DownloadFile.
type DownloadOptions struct {
	// Progress, when set, is called as bytes arrive with the bytes on disk
	// and the whole size (-1 when unknown).
	Progress func(done, total int64)
	// Retries is how many times an interrupted transfer is resumed
	// (default 5; negative: never).
	Retries int
	// RetryDelay is the pause before the first resume, doubled after each
	// (default 1 s).
	RetryDelay time.Duration
	// OnRetry, when set, is told about each interruption before resuming.
	OnRetry func(done int64, err error)
}

// DownloadResult describes a completed DownloadFile.
type DownloadResult struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`  // hex, computed over the file
	Resumed bool   `json:"resumed"` // the file was completed from a partial download
}

// PartialSuffix is appended to a file's name while it downloads.
const PartialSuffix = ".part"

// DownloadFile downloads a successful build's installer to path. Bytes go to
// path+".part" first, which is renamed to path once complete; a .part file
// left by an interrupted earlier call is resumed with a Range request, and
// a transfer cut midway is resumed up to opts.Retries times. The file's
// size is checked against the server's, and its SHA-256 against the one the
// server gives (when it gives one).
func (c *Client) DownloadFile(ctx context.Context, id, path string, opts DownloadOptions) (*DownloadResult, error) {
	if opts.Retries == 0 {
		opts.Retries = 5
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = time.Second
	}
	part := path + PartialSuffix
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("download build %s: %w", id, err)
	}
	defer f.Close()
	done, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("download build %s: %w", id, err)
	}
	res := &DownloadResult{Path: path, Resumed: done > 0}
	var size int64 = -1
	var wantSHA string
	delay := opts.RetryDelay
	for attempt := 0; ; attempt++ {
		var a *Artifact
		a, err = c.OpenArtifact(ctx, id, done)
		if err == nil {
			if a.Offset != done {
				// The server sent the whole file: start over.
				if err := f.Truncate(0); err != nil {
					a.Body.Close()
					return nil, fmt.Errorf("download build %s: %w", id, err)
				}
				if _, err := f.Seek(0, io.SeekStart); err != nil {
					a.Body.Close()
					return nil, fmt.Errorf("download build %s: %w", id, err)
				}
				done = 0
			}
			size = a.Size
			if a.SHA256 != "" {
				wantSHA = a.SHA256
			}
			if opts.Progress != nil {
				opts.Progress(done, size)
			}
			var n int64
			n, err = io.Copy(f, &progressReader{r: a.Body, done: done, total: size, fn: opts.Progress})
			a.Body.Close()
			done += n
			if err == nil && size >= 0 && done < size {
				err = io.ErrUnexpectedEOF
			}
			if err == nil {
				break
			}
			err = fmt.Errorf("download build %s: transfer interrupted at byte %d: %w", id, done, err)
		}
		if !IsTransient(err) && !errors.Is(err, io.ErrUnexpectedEOF) || attempt >= opts.Retries || opts.Retries < 0 {
			return nil, err
		}
		if opts.OnRetry != nil {
			opts.OnRetry(done, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay *= 2
	}
	if size >= 0 && done != size {
		return nil, fmt.Errorf("download build %s: got %d bytes, the server announced %d; delete %s and try again", id, done, size, part)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("download build %s: %w", id, err)
	}
	sum, err := fileSHA256(f)
	if err != nil {
		return nil, fmt.Errorf("download build %s: %w", id, err)
	}
	if wantSHA != "" && sum != wantSHA {
		return nil, fmt.Errorf("download build %s: SHA-256 of %s is %s, the server's is %s; delete it and try again", id, part, sum, wantSHA)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("download build %s: %w", id, err)
	}
	if err := os.Rename(part, path); err != nil {
		return nil, fmt.Errorf("download build %s: %w", id, err)
	}
	res.Size, res.SHA256 = done, sum
	return res, nil
}

func fileSHA256(f *os.File) (string, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// progressReader reports the bytes read so far.
type progressReader struct {
	r     io.Reader
	done  int64
	total int64
	fn    func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.fn != nil && n > 0 {
		p.fn(p.done, p.total)
	}
	return n, err
}
