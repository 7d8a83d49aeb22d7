package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/deskforge/deskforge/models"
)

// Signed download links.
//
// artifactUrl, the URLs of a release's files and the update server's url
// are links anyone can follow until they expire, like an object store's
// presigned URLs:
//
//	<public URL>/signed/<expires>/<signature>/builds/<id>/artifacts/<name>
//	<public URL>/signed/<expires>/<signature>/releases/<id>/files/<name>
//
// expires is a Unix time in seconds; signature is the unpadded base64url
// HMAC-SHA256, keyed with the signing key, of the path after the signature
// ("/builds/<id>/artifacts/<name>", name path-escaped), a newline and
// expires. The file name stays the last segment, so tools that name the
// download after the URL get the installer's name.
//
// Following a link needs no API key. An expired link answers 403
// link_expired; a link whose signature does not match its path and expiry
// (tampered with, or another file's signature) answers 403 link_invalid.
// The key is Options.SigningKey (DESKFORGE_SIGNING_KEY) or, when unset,
// a random key generated on first use and stored in the database, so that
// every replica signs and verifies alike.

// Error codes of refused signed links.
const (
	codeLinkExpired = "link_expired"
	codeLinkInvalid = "link_invalid"
)

// signingKeySetting is the settings key of the generated signing key.
const signingKeySetting = "downloads.signing_key"

// Lifetime of signed links: at least SignedLinkTTL, rounded up to the next
// signedLinkWindow so that a resource's link is the same for a while (its
// JSON does not change at every request).
const (
	SignedLinkTTL    = time.Hour
	signedLinkWindow = 10 * time.Minute
)

// linkSigner holds the signing key, loaded once.
type linkSigner struct {
	store *models.Store
	key   atomic.Pointer[[]byte]
	mu    sync.Mutex // serializes loading
	now   func() time.Time
}

func newLinkSigner(store *models.Store, configured []byte) *linkSigner {
	l := &linkSigner{store: store, now: time.Now}
	if len(configured) > 0 {
		k := append([]byte(nil), configured...)
		l.key.Store(&k)
	}
	return l
}

// load returns the key, reading (or creating) the stored one on first use.
func (l *linkSigner) load(ctx context.Context) ([]byte, error) {
	if k := l.key.Load(); k != nil {
		return *k, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if k := l.key.Load(); k != nil {
		return *k, nil
	}
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	stored, err := l.store.SettingOrCreate(ctx, signingKeySetting, hex.EncodeToString(fresh), time.Now())
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	k, err := hex.DecodeString(stored)
	if err != nil || len(k) == 0 {
		return nil, fmt.Errorf("signing key: the setting %s is not hex", signingKeySetting)
	}
	l.key.Store(&k)
	return k, nil
}

// loaded returns the key, nil before load.
func (l *linkSigner) loaded() []byte {
	if k := l.key.Load(); k != nil {
		return *k
	}
	return nil
}

func linkMAC(key []byte, path string, expires int64) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(path + "\n" + strconv.FormatInt(expires, 10)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sign returns the signed form of path ("/builds/…"), relative to the
// public URL; path itself when no key is loaded (events' data, rendered
// without one, carry the API-key links).
func (l *linkSigner) sign(path string) string {
	key := l.loaded()
	if key == nil {
		return path
	}
	return l.signUntil(key, path, l.expiry())
}

// expiry is the expiry of the links signed now: it changes once every
// signedLinkWindow.
func (l *linkSigner) expiry() int64 {
	return l.now().Add(SignedLinkTTL).Truncate(signedLinkWindow).Add(signedLinkWindow).Unix()
}

func (l *linkSigner) signUntil(key []byte, path string, exp int64) string {
	return "/signed/" + strconv.FormatInt(exp, 10) + "/" + linkMAC(key, path, exp) + path
}

// verify checks a signed link's expires and signature against path.
func (l *linkSigner) verify(path, expires, signature string) error {
	exp, err := strconv.ParseInt(expires, 10, 64)
	key := l.loaded()
	if err != nil || key == nil || !hmac.Equal([]byte(signature), []byte(linkMAC(key, path, exp))) {
		return &apiError{http.StatusForbidden, codeLinkInvalid,
			"the link's signature does not match it: use the link exactly as DeskForge gave it, or ask the API for a new one", ""}
	}
	if l.now().Unix() >= exp {
		return &apiError{http.StatusForbidden, codeLinkExpired,
			"the link expired at " + time.Unix(exp, 0).UTC().Format(time.RFC3339) + "; ask the API for a new one (GET /builds/:id or GET /releases/:id)", ""}
	}
	return nil
}

// loadSigningKey makes sure the signing key is loaded before the handlers
// that render or check signed links run (outside any transaction).
func (s *Server) loadSigningKey(c *gin.Context) {
	if _, err := s.links.load(c.Request.Context()); err != nil {
		s.renderError(c, err)
		return
	}
	c.Next()
}

// artifactPath is the path of a build's installer, signed or not.
func artifactPath(buildID, name string) string {
	return "/builds/" + buildID + "/artifacts/" + url.PathEscape(name)
}

// releaseFilePath is the path of a release's file (SHA256SUMS, a manifest,
// an updater artifact).
func releaseFilePath(releaseID, name string) string {
	return "/releases/" + releaseID + "/files/" + url.PathEscape(name)
}

// checkSignedLink verifies the link of the request whose unsigned path is
// path, answering 403 when it is refused.
func (s *Server) checkSignedLink(c *gin.Context, path string) bool {
	if err := s.links.verify(path, c.Param("expires"), c.Param("signature")); err != nil {
		s.renderError(c, err)
		return false
	}
	return true
}
