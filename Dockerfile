# The dashboard, the REST API and the report command in one image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AGENTDASH_LOCAL_PATH=/data/agentdash.db

WORKDIR /app
COPY pyproject.toml README.md ./
COPY app ./app
COPY pipelines ./pipelines
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 1000 agentdash \
    && mkdir -p /data && chown agentdash /data

USER agentdash
VOLUME ["/data"]
EXPOSE 5006
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5006/health', timeout=4)"
ENTRYPOINT ["agentdash"]
CMD ["serve", "--address", "0.0.0.0", "--port", "5006", "--allow-websocket-origin", "*"]
