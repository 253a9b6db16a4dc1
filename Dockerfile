# Wayback in a container: `docker build -t wayback .` then see compose.yaml. (Not built by the tests: the
# machine they run on has no container runtime.) One composite ReadyToRun build of every command: what ./wayback
# publishes where no clang is installed. A container runs the server; ./wayback's native client build is for the
# CLI on a workstation (docs/restore.md, "The CLI's start-up").
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY Directory.Build.props Directory.Packages.props Wayback.slnx ./
COPY src/ src/
RUN dotnet publish -c Release src/Wayback.Cli -o /out --use-current-runtime --self-contained true \
    -p:PublishReadyToRun=true -p:PublishReadyToRunComposite=true

# Self-contained (the runtime is in /opt/wayback, compiled ahead with the code), so only the runtime's own dependencies.
FROM mcr.microsoft.com/dotnet/runtime-deps:10.0
# liblz4 for LTX compression; sqlite3 only for looking inside a restored database by hand.
RUN apt-get update && apt-get install -y --no-install-recommends liblz4-1 sqlite3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/wayback wayback \
    && mkdir -p /var/lib/wayback && chown wayback /var/lib/wayback
COPY --from=build /out /opt/wayback
USER wayback
ENV WAYBACK_DATA=/var/lib/wayback \
    WAYBACK_LISTEN=0.0.0.0:20202
VOLUME /var/lib/wayback
EXPOSE 20202
ENTRYPOINT ["/opt/wayback/wayback"]
CMD ["serve"]
