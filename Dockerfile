# One Dockerfile for every Agora image: the build arg BIN picks the binary.
#
#   docker build --build-arg BIN=agora-users -t ghcr.io/agora-social/users:0.1.0 .
#   hack/images.sh --kind agora      # all eight images, loaded into a kind cluster
#
# BIN is one of agora-auth, agora-gateway, agora-users, agora-relations, agora-photos,
# agora-events, agora-operator; the image is ghcr.io/agora-social/<BIN without agora->.
# BIN=agora (the CLI) makes ghcr.io/agora-social/agora, what backup and restore Jobs
# copy their `agora` from.
#
# Stages: `chef` (the Rust toolchain plus cargo-chef), `planner` (the dependency recipe
# of the whole workspace), `builder` (the dependencies, cooked once for the workspace and
# shared by all eight images, then the one binary), and the runtime image.
#
# The runtime image is deliberately minimal, so it can be reproduced without this file:
# `hack/images.sh --offline` (hack/offline-images.sh) assembles the same image without an
# engine or registry. It is exactly:
#   - base:        gcr.io/distroless/cc-debian12:nonroot (Debian 12's glibc and C/C++
#                  runtime libraries, CA certificates, tzdata, /etc/passwd with nonroot =
#                  65532; no shell, no package manager). The release process should pin
#                  it by digest (`...:nonroot@sha256:...`); this file names the tag only,
#                  because the machine it was written on cannot reach a registry to
#                  resolve the digest.
#   - one layer:   /usr/local/bin/app, the release build of BIN (mode 0755, owner 0:0),
#                  nothing else (TLS is rustls, PostgreSQL is tokio-postgres: no OpenSSL,
#                  no libpq);
#   - config:      User "65532:65532"; ExposedPorts 8080/tcp (API, LISTEN_ADDR) and
#                  9090/tcp (/healthz /readyz /metrics, OPS_LISTEN_ADDR) for every binary
#                  (the operator uses 9090 only); Entrypoint ["/usr/local/bin/app"], no Cmd;
#                  working directory and Env as in the base; the OCI labels below.
#
# Offline images vs this file - the one place the differences are written down:
#   - same: the binary path, entry point, user 65532:65532, ports, labels, working dir
#     and Env (PATH, SSL_CERT_FILE), the Debian 12 glibc the binary links against;
#   - base: distroless's is built by Google from Debian 12 packages; the offline base is
#     extracted by mmdebstrap from the same packages (libc6, libgcc-s1, gcc-12-base,
#     ca-certificates, tzdata, netbase, base-files: no libstdc++/libssl/openssl, which
#     no Agora binary links) with the CA bundle, /etc/passwd and /etc/group written as
#     distroless writes them;
#   - compiler: this file's rust:1.94.1 vs the machine's toolchain, in the profile asked
#     for (release by default; hack/e2e.sh in CI uses the test build's dev profile);
#   - layers: uncompressed, file times 0 (reproducible for the same inputs).
# The offline set adds ghcr.io/agora-social/postgres:15 (PostgreSQL 15 from Debian with
# an entry point honouring the official image's POSTGRES_* / PGDATA / initdb.d contract,
# hack/postgres/docker-entrypoint.sh), for clusters that cannot pull postgres:18.
# The pods run it with a read-only root file system; photos write only to their mounted
# volume and everything writes temporary files to the /tmp emptyDir.

# Rust 1.94.1 (the workspace's rust-version is 1.89) on Debian 12, the base's glibc.
FROM rust:1.94.1-bookworm AS chef
# cargo-chef builds the dependencies alone from a recipe of the manifests, so that layer
# stays cached until Cargo.toml or Cargo.lock change, whatever the source edits.
RUN cargo install cargo-chef --locked --version 0.1.77
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# The whole workspace's dependencies, with the same package selection as the build below
# (no -p: every member), so features unify the same way and nothing is rebuilt. BIN is
# declared only after this layer, so the eight image builds share it.
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
ARG BIN
RUN test -n "${BIN}" || { echo "error: pass --build-arg BIN=<binary>, e.g. BIN=agora-users" >&2; exit 1; } \
    && cargo build --release --locked --bin "${BIN}" \
    && install -D -m 0755 "target/release/${BIN}" /out/app

FROM gcr.io/distroless/cc-debian12:nonroot
ARG BIN
ARG VERSION=0.1.0
LABEL org.opencontainers.image.source="https://github.com/agora-social/agora" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.title="${BIN}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.description="Agora social network: ${BIN}"
COPY --from=builder /out/app /usr/local/bin/app
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/app"]
