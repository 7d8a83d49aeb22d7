# DeskForge server image: a static binary on a distroless base, run as a
# non-root user. Build: docker build -t deskforge --build-arg VERSION=1.0.0 .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/deskforge ./cmd/deskforge \
	&& mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/deskforge /deskforge
COPY --from=build --chown=65532:65532 /out/data /data
# The embedded SQLite database lives in the /data volume; set
# DESKFORGE_DATABASE_URL=postgres://… to use PostgreSQL instead.
ENV DESKFORGE_LISTEN=:8080 \
	DESKFORGE_DATABASE_URL=sqlite:///data/deskforge.db \
	DESKFORGE_LOG_FORMAT=json
VOLUME /data
USER 65532:65532
EXPOSE 8080
# The image has no curl: the binary checks GET /healthz on DESKFORGE_LISTEN itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 CMD ["/deskforge", "version", "--healthcheck"]
ENTRYPOINT ["/deskforge"]
CMD ["serve"]
