package server

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"
	"gopkg.in/yaml.v3"
)

// openAPIYAML is the hand-written OpenAPI 3.1 document of the public API.
// The server package's tests send every request of the API suite through a
// validator built from it, so it cannot drift from the handlers.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// openAPIJSON converts the embedded document to JSON once.
var openAPIJSON = sync.OnceValues(func() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(openAPIYAML, &doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml to JSON: %w", err)
	}
	return data, nil
})

// OpenAPIDocument returns the OpenAPI 3.1 document served at GET
// /openapi.json, as JSON.
func OpenAPIDocument() ([]byte, error) { return openAPIJSON() }

// serveOpenAPI is GET /openapi.json (no key needed).
func (s *Server) serveOpenAPI(c *gin.Context) {
	data, err := openAPIJSON()
	if err != nil {
		s.renderError(c, err)
		return
	}
	c.Header("Cache-Control", "public, max-age=300")
	c.Data(http.StatusOK, "application/json; charset=utf-8", data)
}
