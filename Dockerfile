# threeport-manager container image.
#
#   docker build -t threeport-manager:0.1.0 .
#
# Stage 1 builds a static (musl) release binary with the locked dependency set; stage 2 builds
# the helm v3 CLI the helm-workload controller runs, from the published helm.sh/helm/v3 module
# at the version upstream/helm/go.mod pins (the one the tests run); stage 3 is `scratch`: no
# shell, no package manager, the two binaries and the CA bundle helm needs for https chart
# repositories and OCI registries. The manager itself trusts only the CA files it is
# configured with; helm writes its per-reconcile workspaces under /tmp (an emptyDir in
# manifests/base).
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
RUN case "$(uname -m)" in \
      x86_64) echo x86_64-unknown-linux-musl > /rust-target ;; \
      aarch64) echo aarch64-unknown-linux-musl > /rust-target ;; \
      *) echo "unsupported architecture $(uname -m)" >&2; exit 1 ;; \
    esac \
 && rustup target add "$(cat /rust-target)"
WORKDIR /src
# The whole workspace is needed to resolve Cargo.lock (the sandbox is a member); only the
# manager binary is built.
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
# Data the binary compiles in (include_str!): what it installs into runtime clusters.
COPY data ./data
COPY sandbox ./sandbox
COPY benches ./benches
COPY tests ./tests
# The commit for --version and threeport_build_info (the build context has no .git):
#   docker build --build-arg GIT_SHA="$(git rev-parse --short=12 HEAD)" .
ARG GIT_SHA=unknown
ENV THREEPORT_MANAGER_GIT_SHA=$GIT_SHA
RUN cargo build --release --locked --target "$(cat /rust-target)" --bin threeport-manager \
 && cp "target/$(cat /rust-target)/release/threeport-manager" /threeport-manager

FROM golang:1.26-bookworm AS helm
WORKDIR /helm
COPY upstream/helm/go.mod upstream/helm/go.sum ./
RUN version="$(go list -m -f '{{.Version}}' helm.sh/helm/v3)" \
 && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$version" \
      -o /helm helm.sh/helm/v3/cmd/helm

FROM scratch
COPY --from=build /threeport-manager /threeport-manager
COPY --from=helm /helm /usr/local/bin/helm
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV PATH=/usr/local/bin
# Threeport's images run as the distroless nonroot user.
USER 65532:65532
# Admin server: /livez, /readyz, /metrics, /configz.
EXPOSE 8081
ENTRYPOINT ["/threeport-manager"]
