package server

import "github.com/gin-gonic/gin"

// registerEngineRoutes adds the build engine's endpoints: the GitHub webhook
// receiver on root (no API key) and build actions on api (authenticated).
func (s *Server) registerEngineRoutes(root *gin.Engine, api *gin.RouterGroup) {}
