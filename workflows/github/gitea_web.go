package github

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"

	"github.com/deskforge/deskforge/workflows"
)

// giteaWeb cancels runs through Gitea's web interface, the only route that
// does: POST /{owner}/{repo}/actions/runs/{run}/cancel with a signed-in
// session (the REST API has none; tokens are not accepted on that route).
// Gitea 1.27 checks no CSRF token for a request without Origin or
// Sec-Fetch-Site headers (Go's CrossOriginProtection), which is what a
// non-browser client sends. The session is kept and renewed when Gitea
// sends the client back to the sign-in page.
type giteaWeb struct {
	root     *url.URL // web root, e.g. http://127.0.0.1:3000/
	user     string
	password string
	client   *http.Client

	mu       sync.Mutex
	signedIn bool
}

// newGiteaWeb returns the web client of the Gitea whose API root is apiURL
// ("…/api/v1/").
func newGiteaWeb(apiURL, user, password string, transport http.RoundTripper) (*giteaWeb, error) {
	u, err := url.Parse(apiURL)
	if err != nil {
		return nil, fmt.Errorf("gitea web root of %q: %w", apiURL, err)
	}
	path := strings.TrimSuffix(u.Path, "/")
	path = strings.TrimSuffix(path, "/api/v1")
	u.Path = path + "/"
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	return &giteaWeb{root: u, user: user, password: password, client: &http.Client{
		Transport: transport,
		Jar:       jar,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}, nil
}

// signIn posts the sign-in form; Gitea answers 303 with a session cookie
// on success and 200 (the form again, with an error) on a wrong password.
func (w *giteaWeb) signIn(ctx context.Context, op string) error {
	form := url.Values{"user_name": {w.user}, "password": {w.password}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.root.JoinPath("user", "login").String(), strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := w.client.Do(req)
	if err != nil {
		return translateError(ctx, op+": sign in", nil, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // drained for reuse; the status says the rest
	switch {
	case resp.StatusCode == http.StatusSeeOther || resp.StatusCode == http.StatusFound:
		if strings.Contains(resp.Header.Get("Location"), "/user/login") {
			break
		}
		w.signedIn = true
		return nil
	case resp.StatusCode >= 500:
		return fmt.Errorf("%s: sign in: %w", op, &workflows.TransientError{Status: resp.StatusCode, Err: errors.New(resp.Status)})
	}
	return fmt.Errorf("%s: %w", op, &workflows.InvalidError{Status: http.StatusUnauthorized,
		Message: fmt.Sprintf("Gitea refused the web sign-in of %s (answer %s): check DESKFORGE_GITEA_USERNAME and DESKFORGE_GITEA_PASSWORD (a user without two-factor authentication)", w.user, resp.Status)})
}

// cancel posts the cancel route, signing in first. Gitea answers a
// request whose session expired like an anonymous one: 404 (the route needs
// write access) or a redirect to the sign-in page; the session is then
// renewed once, and a 404 after a fresh sign-in means no such run.
func (w *giteaWeb) cancel(ctx context.Context, op, owner, repo string, runID int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for attempt := 0; attempt < 2; attempt++ {
		fresh := !w.signedIn
		if fresh {
			if err := w.signIn(ctx, op); err != nil {
				return err
			}
		}
		target := w.root.JoinPath(owner, repo, "actions", "runs", fmt.Sprint(runID), "cancel").String()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		resp, err := w.client.Do(req)
		if err != nil {
			return translateError(ctx, op, nil, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		status := resp.StatusCode
		switch {
		case status == http.StatusOK:
			return nil
		case status == http.StatusNotFound && fresh:
			return fmt.Errorf("%s: %w", op, workflows.ErrNotFound)
		case status == http.StatusNotFound || status == http.StatusSeeOther || status == http.StatusFound ||
			status == http.StatusUnauthorized:
			w.signedIn = false // the session expired: sign in again
			continue
		case status >= 500:
			return fmt.Errorf("%s: %w", op, &workflows.TransientError{Status: status, Err: errors.New(strings.TrimSpace(string(body)))})
		default:
			return fmt.Errorf("%s: %w", op, &workflows.InvalidError{Status: status,
				Message: fmt.Sprintf("Gitea's web cancel route answered %s: %s", resp.Status, strings.TrimSpace(string(body)))})
		}
	}
	return fmt.Errorf("%s: %w", op, &workflows.InvalidError{Status: http.StatusForbidden,
		Message: fmt.Sprintf("Gitea's web cancel route refused %s after a fresh sign-in: the user needs write access to the repository's Actions", w.user)})
}
