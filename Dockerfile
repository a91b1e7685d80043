# syntax=docker/dockerfile:1
# The operator image: `docker build -t flink-operator:0.1.0 .`
# The builder is Debian 12 like the runtime, so the binary's glibc matches.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin flink-operator \
    && cp target/release/flink-operator /flink-operator \
    && mkdir -p /rootfs/opt/flink/artifacts /rootfs/opt/flink-operator/conf \
    && printf '# Operator configuration (upstream keys); the Helm chart mounts its own.\n{}\n' \
       > /rootfs/opt/flink-operator/conf/config.yaml

# glibc and libgcc only (TLS is rustls); runs as uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /flink-operator /usr/local/bin/flink-operator
# An empty configuration (defaults) and the session-job jar cache
# (kubernetes.operator.user.artifacts.base.dir), writable by the user.
COPY --from=build --chown=65532:65532 /rootfs/opt/ /opt/
USER 65532:65532
# /metrics, /healthz, /readyz on 8085; the validating webhook on 9443 when enabled.
EXPOSE 8085 9443
ENTRYPOINT ["/usr/local/bin/flink-operator"]
CMD ["run", "--config", "/opt/flink-operator/conf/config.yaml"]
