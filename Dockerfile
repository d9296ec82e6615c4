# berth for Docker users: the same minimal image `deno task image` builds without Docker.
# The final image holds only the Deno runtime, the bundle, the shared libraries the runtime
# loads, and the default config: no distribution base, no shell.
#
#   docker build -t berth .
#   docker run -d -p 5000:5000 -v berth-data:/var/lib/registry berth
# The Deno release berth ships with (DENO_VERSION in src/version.ts; docs/chunked_uploads.md).
ARG DENO_VERSION=2.8.2

FROM denoland/deno:debian-${DENO_VERSION} AS build
WORKDIR /src
COPY deno.json deno.lock main.ts ./
COPY src ./src
RUN deno bundle --minify --output /out/app/berth.js main.ts
COPY deploy/config.yml /out/etc/docker/registry/config.yml
RUN set -eu; \
    deno="$(readlink -f "$(command -v deno)")"; \
    install -D -m 0755 "$deno" /out/usr/bin/deno; \
    for lib in $(ldd "$deno" | grep -o '/[^ ]*'); do \
      install -D -m 0755 "$(readlink -f "$lib")" "/out$lib"; \
    done; \
    mkdir -p /out/var/lib/registry /out/root /out/tmp; \
    chmod 1777 /out/tmp; \
    echo 'root:x:0:0:root:/root:/sbin/nologin' > /out/etc/passwd; \
    echo 'root:x:0:' > /out/etc/group

FROM scratch
COPY --from=build /out/ /
ENV PATH=/usr/bin DENO_DIR=/tmp/deno DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 HOME=/root
LABEL org.opencontainers.image.title="berth" \
      org.opencontainers.image.description="An OCI distribution registry in TypeScript for Deno"
EXPOSE 5000
VOLUME /var/lib/registry
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s CMD ["/usr/bin/deno", "run", "--allow-net", "--allow-env", "--allow-read", "/app/berth.js", "health", "--config", "/etc/docker/registry/config.yml"]
ENTRYPOINT ["/usr/bin/deno", "run", "--allow-net", "--allow-read", "--allow-write", "--allow-env", "/app/berth.js"]
CMD ["serve", "/etc/docker/registry/config.yml"]
