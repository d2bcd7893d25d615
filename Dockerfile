# syntax=docker/dockerfile:1
# Multi-stage build: a static gateway binary in a distroless image, run as a
# non-root user. Time zones are compiled into the binary (time/tzdata), CA
# certificates come from the base image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/northwind-it/ticketgw/app.Version=${VERSION}" \
      -o /out/gateway ./cmd/gateway

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gateway /usr/local/bin/gateway
USER nonroot:nonroot
WORKDIR /etc/ticketgw
# /etc/ticketgw/gateway.yaml is mounted; secrets via environment or *_file.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s \
  CMD ["/usr/local/bin/gateway", "healthcheck", "-c", "/etc/ticketgw/gateway.yaml"]
ENTRYPOINT ["/usr/local/bin/gateway"]
CMD ["run", "-c", "/etc/ticketgw/gateway.yaml", "--log-format", "json"]
