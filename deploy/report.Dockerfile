# The agentdash image plus Chromium, for `agentdash report --format pdf|png`
# (HTML reports need nothing more than the base image).
#   docker build -t agentdash . && docker build -t agentdash-report -f deploy/report.Dockerfile .
ARG BASE=agentdash:latest
FROM ${BASE}
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
USER agentdash
