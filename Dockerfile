# syntax=docker/dockerfile:1
#
# stateguard image: one static binary on a distroless base with no shell,
# running as the unprivileged user 65532 (the chart's runAsUser).
#
#   make image                                  # docker or podman, tag $(IMAGE):$(VERSION)
#   docker build --build-arg VERSION=v0.1.0 -t stateguard/stateguard:v0.1.0 .
#
# Cross-builds (docker buildx build --platform linux/amd64,linux/arm64) compile
# on the build machine's architecture; Go cross-compiles, nothing is emulated.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=devel
WORKDIR /src
# The toolchain is the image's; never download another one.
ENV GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath \
      -ldflags "-s -w -X github.com/stateguard/stateguard/internal/version.Version=${VERSION}" \
      -o /out/stateguard ./cmd/stateguard

FROM gcr.io/distroless/static:nonroot
ARG VERSION=devel
LABEL org.opencontainers.image.title="stateguard" \
      org.opencontainers.image.description="Admission webhook and CLI enforcing stateful-workload policy on StatefulSets" \
      org.opencontainers.image.source="https://github.com/stateguard/stateguard" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/stateguard /stateguard
USER 65532:65532
ENTRYPOINT ["/stateguard"]
CMD ["serve"]
