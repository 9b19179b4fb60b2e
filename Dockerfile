# The Mailmoat gateway: SMTP on 2525, HTTP (API, /metrics, /docs) on 8025.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml setup.py README.md ./
COPY filters ./filters
COPY store ./store
COPY service ./service
COPY simulator ./simulator
COPY quarantine ./quarantine
COPY slamonitor ./slamonitor
COPY loadtest ./loadtest
COPY examples ./examples
# gcc builds the compiled token scan (filters/tokenscan.pyx) and is removed again.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install . \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* \
    && mailmoat generate --out /app/sample --count 400 --seed 7 \
    && mailmoat train --corpus /app/sample --out /app/data/model.npz --seed 1 \
    && useradd --system --home-dir /app mailmoat \
    && mkdir -p /app/data && chown -R mailmoat /app/data

USER mailmoat
EXPOSE 2525 8025
VOLUME ["/app/data"]
HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8025/readyz').status != 200)"
CMD ["mailmoat", "serve", "--config", "/app/examples/gateway.toml"]
