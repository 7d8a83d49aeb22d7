package github

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deskforge/deskforge/workflows"
)

const (
	assetName   = "app-1.2.0-mac-arm64.dmg"
	assetSHA256 = "6c5ff4f1b0a3e2b4a0d8c1b29a5a1b6a0e7f8b9c1d2e3f4a5b6c7d8e9f0a1b2c"
)

func TestFindReleaseAsset(t *testing.T) {
	t.Parallel()
	wantAsset := workflows.Asset{
		ID: 77, Name: assetName, Label: assetName + " (build_01abc)", Size: 1234, ContentType: "application/x-apple-diskimage", SHA256: assetSHA256,
		BrowserDownloadURL: "https://github.com/o/r/releases/download/v1.2.0/" + assetName,
	}
	assetJSON := `{"id":77,"name":"` + assetName + `","label":"` + assetName + ` (build_01abc)","state":"uploaded","size":1234,
		"content_type":"application/x-apple-diskimage","digest":"sha256:` + assetSHA256 + `",
		"browser_download_url":"https://github.com/o/r/releases/download/v1.2.0/` + assetName + `"}`
	draftAsset := wantAsset
	draftAsset.Draft = true
	starterJSON := `{"id":76,"name":"` + assetName + `","state":"starter","size":0,"content_type":"application/x-apple-diskimage"}`

	tests := []struct {
		name          string
		page1, page2  string // releases pages; page2 "" = single page
		assets        string // answer of releases/100/assets; "" = must not be asked
		want          workflows.Asset
		wantErr       error
		wantErrSubstr string
		wantRequests  int32
	}{
		{
			name:         "draft on the first page with the asset inline",
			page1:        `[{"id":100,"tag_name":"v1.2.0","draft":true,"assets":[` + assetJSON + `]}]`,
			want:         draftAsset,
			wantRequests: 1,
		},
		{
			name:         "release on the second page",
			page1:        `[{"id":101,"tag_name":"v1.3.0","draft":false,"assets":[]}]`,
			page2:        `[{"id":100,"tag_name":"v1.2.0","draft":false,"assets":[` + assetJSON + `]}]`,
			want:         wantAsset,
			wantRequests: 2,
		},
		{
			name:         "asset missing inline is looked up in the release",
			page1:        `[{"id":100,"tag_name":"v1.2.0","draft":true}]`,
			assets:       `[` + assetJSON + `]`,
			want:         draftAsset,
			wantRequests: 2,
		},
		{
			name:         "asset without digest",
			page1:        `[{"id":100,"tag_name":"v1.2.0","assets":[{"id":77,"name":"` + assetName + `","size":5,"state":"uploaded"}]}]`,
			want:         workflows.Asset{ID: 77, Name: assetName, Size: 5},
			wantRequests: 1,
		},
		{
			name:          "unfinished upload does not count",
			page1:         `[{"id":100,"tag_name":"v1.2.0","draft":true,"assets":[` + starterJSON + `]}]`,
			assets:        `[` + starterJSON + `]`,
			wantErr:       workflows.ErrNotFound,
			wantErrSubstr: "no uploaded asset named " + assetName,
			wantRequests:  2,
		},
		{
			name:          "no release with the tag",
			page1:         `[{"id":101,"tag_name":"v1.3.0","assets":[]}]`,
			wantErr:       workflows.ErrNotFound,
			wantErrSubstr: "no release tagged v1.2.0",
			wantRequests:  1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Options{})
			var requests atomic.Int32
			b.mux.HandleFunc("/repos/o/r/releases", func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				testMethod(t, r, http.MethodGet)
				testAuth(t, r)
				switch page := r.URL.Query().Get("page"); page {
				case "":
					testQuery(t, r, map[string]string{"per_page": "100"})
					if tt.page2 != "" {
						w.Header().Set("Link", `<`+b.server.URL+apiPrefix+`/repos/o/r/releases?per_page=100&page=2>; rel="next"`)
					}
					writeJSON(w, http.StatusOK, tt.page1)
				case "2":
					testQuery(t, r, map[string]string{"per_page": "100", "page": "2"})
					writeJSON(w, http.StatusOK, tt.page2)
				default:
					t.Errorf("unexpected page %q", page)
				}
			})
			b.mux.HandleFunc("/repos/o/r/releases/100/assets", func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				if tt.assets == "" {
					t.Errorf("assets listed although the release had the asset inline")
				}
				testQuery(t, r, map[string]string{"per_page": "100"})
				writeJSON(w, http.StatusOK, tt.assets)
			})

			got, err := b.client.FindReleaseAsset(context.Background(), "o/r", "v1.2.0", assetName)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.ErrorContains(t, err, tt.wantErrSubstr)
			} else {
				require.NoError(t, err)
				require.Equal(t, tt.want, got)
			}
			require.Equal(t, tt.wantRequests, requests.Load())
		})
	}
}

func TestSHA256FromDigest(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"sha256:" + assetSHA256: assetSHA256,
		"SHA256:" + "6C5FF4F1B0A3E2B4A0D8C1B29A5A1B6A0E7F8B9C1D2E3F4A5B6C7D8E9F0A1B2C": assetSHA256,
		"sha512:" + assetSHA256:            "",
		"sha256:abc":                       "",
		"sha256:" + assetSHA256[:63] + "z": "",
		"":                                 "",
	}
	for digest, want := range tests {
		require.Equal(t, want, sha256FromDigest(digest), digest)
	}
}

func TestAssetDownloadURL(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	const signed = "https://objects.githubusercontent.com/github-production-release-asset/77?X-Amz-Signature=abc"
	b.mux.HandleFunc("/repos/o/r/releases/assets/77", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodGet)
		testAuth(t, r)
		if got := r.Header.Get("Accept"); got != "application/octet-stream" {
			t.Errorf("Accept = %q", got)
		}
		http.Redirect(w, r, signed, http.StatusFound)
	})
	b.mux.HandleFunc("/repos/o/r/releases/assets/78", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, `{"message":"Not Found"}`)
	})
	b.mux.HandleFunc("/repos/o/r/releases/assets/79", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write([]byte("bytes"))
	})

	got, err := b.client.AssetDownloadURL(context.Background(), "o/r", 77)
	require.NoError(t, err)
	require.Equal(t, signed, got)

	_, err = b.client.AssetDownloadURL(context.Background(), "o/r", 78)
	require.ErrorIs(t, err, workflows.ErrNotFound)

	_, err = b.client.AssetDownloadURL(context.Background(), "o/r", 79)
	require.ErrorIs(t, err, ErrNoSignedURL)
}

func TestRepositoryPrivate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		want       bool
	}{
		{"public", `{"full_name":"o/r","private":false,"visibility":"public"}`, false},
		{"private", `{"full_name":"o/r","private":true,"visibility":"private"}`, true},
		{"internal", `{"full_name":"o/r","private":false,"visibility":"internal"}`, true},
		{"no visibility field", `{"full_name":"o/r","private":false}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Options{})
			b.mux.HandleFunc("/repos/o/r", func(w http.ResponseWriter, r *http.Request) {
				testMethod(t, r, http.MethodGet)
				testAuth(t, r)
				writeJSON(w, http.StatusOK, tt.body)
			})
			got, err := b.client.RepositoryPrivate(context.Background(), "o/r")
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}

	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{})
		b.mux.HandleFunc("/repos/o/r", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusNotFound, `{"message":"Not Found"}`)
		})
		_, err := b.client.RepositoryPrivate(context.Background(), "o/r")
		require.ErrorIs(t, err, workflows.ErrNotFound)
	})
}
