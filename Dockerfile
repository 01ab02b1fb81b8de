# syntax=docker/dockerfile:1
#
# ingestion-runner image: a static-ish Rust binary on distroless (glibc + CA certificates, no
# shell, no package manager), running as the non-root user 65532 with nothing to write outside
# /tmp, so it runs with readOnlyRootFilesystem (mount an emptyDir on /tmp).
#
#   docker build -t ingestion-runner:dev .
#   docker run --rm ingestion-runner:dev version
#
# Requires BuildKit (the default builder since Docker 23) for the cache mounts.

# ---------------------------------------------------------------------------- build
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# The cache mounts keep the registry and target/ between builds; the binary is copied out of
# target/ in the same step because a cache mount is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release -p runner-bin --locked \
    && install -D -m 0755 target/release/ingestion-runner /out/ingestion-runner

# ---------------------------------------------------------------------------- runtime
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/ingestion-runner /usr/local/bin/ingestion-runner
# Numeric, so that Kubernetes can check runAsNonRoot without a runAsUser in the pod spec.
USER 65532:65532
WORKDIR /tmp
ENV TMPDIR=/tmp
# 8585: /healthz, /readyz, /status (HEALTH_BIND); 8989: /metrics (METRICS_BIND).
EXPOSE 8585 8989
ENTRYPOINT ["ingestion-runner"]
CMD ["run"]
