// Package github is the Forge implementation on go-github v62: the only
// package of DeskForge that imports go-github. No go-github type crosses its
// boundary; errors are translated into the workflows package's error types.
package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v62/github"
	"golang.org/x/oauth2"
)

// Options configure a Client. Either Token or the three App fields are
// required.
type Options struct {
	// BaseURL is the REST API root: "" for api.github.com, GHES
	// "https://host/api/v3/", or the simulator's URL.
	BaseURL string
	// Token is a personal access token or installation token.
	Token string
	// AppID, AppPrivateKey (PEM) and InstallationID authenticate as a
	// GitHub App installation instead of Token.
	AppID          int64
	AppPrivateKey  []byte
	InstallationID int64
	// HTTPClient is the base transport's client (tests); nil = default.
	HTTPClient *http.Client
}

// Client talks to one GitHub (or GHES, or simulator) server. It is safe for
// concurrent use.
type Client struct {
	gh      *gh.Client
	baseURL string
}

// New returns a Client for opts.
func New(ctx context.Context, opts Options) (*Client, error) {
	base := http.DefaultTransport
	if opts.HTTPClient != nil && opts.HTTPClient.Transport != nil {
		base = opts.HTTPClient.Transport
	}
	var httpClient *http.Client
	switch {
	case opts.Token != "":
		ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: base})
		httpClient = oauth2.NewClient(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: opts.Token}))
	case opts.AppID != 0 && len(opts.AppPrivateKey) > 0 && opts.InstallationID != 0:
		tr, err := ghinstallation.New(base, opts.AppID, opts.InstallationID, opts.AppPrivateKey)
		if err != nil {
			return nil, fmt.Errorf("github app auth: %w", err)
		}
		if opts.BaseURL != "" {
			tr.BaseURL = strings.TrimSuffix(opts.BaseURL, "/")
		}
		httpClient = &http.Client{Transport: tr}
	default:
		return nil, errors.New("github: set a token, or an app id, private key and installation id")
	}
	client := gh.NewClient(httpClient)
	if opts.BaseURL != "" {
		// Used as given (GHES: "https://host/api/v3/"), unlike
		// WithEnterpriseURLs, which would append /api/v3/ to the simulator's URL.
		u, err := url.Parse(strings.TrimSuffix(opts.BaseURL, "/") + "/")
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("github base url %q: must be an http(s) URL", opts.BaseURL)
		}
		client.BaseURL = u
		client.UploadURL = u
	}
	return &Client{gh: client, baseURL: client.BaseURL.String()}, nil
}
