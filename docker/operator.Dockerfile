# The MatchEngine operator image.
#   docker build -f docker/operator.Dockerfile -t matchengine-operator:0.1.0 .
# The operator has no C/C++ dependencies (rustls, no OpenSSL, no RocksDB).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p matchengine-operator --bin matchengine-operator \
    && mkdir -p /out \
    && cp target/release/matchengine-operator /out/

# Runtime: distroless with glibc, no shell; the nonroot user (65532) that
# the chart's podSecurityContext expects.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /out/matchengine-operator /usr/local/bin/matchengine-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/matchengine-operator"]
