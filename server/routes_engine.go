package server

import "github.com/gin-gonic/gin"

// registerEngineRoutes adds the build engine's endpoints: the GitHub webhook
// receiver on root (no API key; signed by GitHub; its own 25 MB body limit
// instead of the API's 1 MiB) and the build actions on api (authenticated).
func (s *Server) registerEngineRoutes(root *gin.Engine, api *gin.RouterGroup) {
	root.POST("/webhooks/github", s.receiveWebhook)

	api.POST("/builds/:id/cancel", s.cancelBuild)
	api.POST("/builds/:id/retry", s.retryBuild)
	api.GET("/builds/:id/download", s.downloadBuild)
	api.HEAD("/builds/:id/download", s.downloadBuild)
	api.GET("/builds/:id/artifacts/:name", s.downloadArtifact)
	api.HEAD("/builds/:id/artifacts/:name", s.downloadArtifact)
	getAndHead(root, "/signed/:expires/:signature/builds/:id/artifacts/:name",
		s.rateLimitByAddress, s.loadSigningKey, s.downloadSignedArtifact)
}
