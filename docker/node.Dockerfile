# The MatchEngine node image: matchengine-node and the mectl CLI.
#   docker build -f docker/node.Dockerfile -t matchengine-node:0.1.0 .
# Build stage: the workspace's toolchain; RocksDB's C++ needs clang and cmake
# (bindgen at run time of the build script), protoc comes vendored.
FROM rust:1.95-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends clang libclang-dev cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p matchengine-node -p matchengine-mectl \
    && mkdir -p /out \
    && cp target/release/matchengine-node target/release/mectl /out/

# Runtime: glibc and libstdc++ (RocksDB), no shell, no package manager;
# runs as an unprivileged user whose uid/gid match the StatefulSet's
# securityContext (10001), with the data directory owned by it.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build --chown=10001:10001 /out/matchengine-node /out/mectl /usr/local/bin/
USER 10001:10001
ENV MATCHENGINE_DATA_DIR=/var/lib/matchengine \
    MATCHENGINE_LOG_FORMAT=json
VOLUME ["/var/lib/matchengine"]
# client, raft, admin, metrics
EXPOSE 7000 7001 7002 7003 9100
ENTRYPOINT ["/usr/local/bin/matchengine-node"]
