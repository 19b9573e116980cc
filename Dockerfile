# threeport-manager container image.
#
#   docker build -t threeport-manager:0.1.0 .
#
# Stage 1 builds a static (musl) release binary with the locked dependency set; stage 2 is
# `scratch`: no shell, no package manager, nothing but the binary. The manager needs no CA
# bundle (it trusts only the CA files it is configured with) and no writable filesystem.
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

FROM scratch
COPY --from=build /threeport-manager /threeport-manager
# Threeport's images run as the distroless nonroot user.
USER 65532:65532
# Admin server: /livez, /readyz, /metrics, /configz.
EXPOSE 8081
ENTRYPOINT ["/threeport-manager"]
