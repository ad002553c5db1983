# The agentdash image plus Chromium, for `agentdash report --format pdf|png`
# (HTML reports need nothing more than the base image).
#   docker build -t agentdash . && docker build -t agentdash-report -f deploy/report.Dockerfile .
ARG BASE=agentdash:latest
FROM ${BASE}
USER 0
# Debian's security updates replace the package versions: pinning them would break the build.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
USER 1000
