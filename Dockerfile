# The dashboard, the REST API and the report command in one image.
#   docker build -t agentdash .
# It serves nothing to the network without sign-in: set AGENTDASH_AUTH (basic, oauth or jwt)
# and AGENTDASH_COOKIE_SECRET (see .env.example), or start it with --allow-anonymous.

# Build: the package and its dependencies into a virtual environment.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY pipelines ./pipelines
RUN python -m venv /opt/agentdash \
    && /opt/agentdash/bin/pip install --no-cache-dir .

# Run: the environment alone, as an unprivileged user.
FROM python:3.11-slim
ENV PATH=/opt/agentdash/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AGENTDASH_LOCAL_PATH=/data/agentdash.db
RUN useradd --create-home --uid 1000 agentdash \
    && mkdir -p /data \
    && chown agentdash /data
COPY --from=build /opt/agentdash /opt/agentdash
USER 1000
WORKDIR /home/agentdash
VOLUME ["/data"]
EXPOSE 5006
# The process answers: /health/live reads nothing, so a slow source never fails it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5006/health/live', timeout=4)"]
ENTRYPOINT ["agentdash"]
CMD ["serve", "--address", "0.0.0.0", "--port", "5006"]
