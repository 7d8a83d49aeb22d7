// Package server is DeskForge's HTTP layer: the Gin router, middleware, one
// file per resource, the error translator and the GitHub webhook receiver.
package server

import "github.com/gin-gonic/gin"

// Server holds the HTTP layer's dependencies.
type Server struct {
	router *gin.Engine
}
