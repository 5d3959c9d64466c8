# The stream worker. Build: docker build -t mot-streams .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY agents ./agents
COPY schemas ./schemas
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 mot
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER mot
WORKDIR /home/mot
ENV MOT_DATA_DIR=/home/mot/data \
    MOT_WEB_BIND=0.0.0.0 \
    MOT_WEB_PORT=6066 \
    PYTHONUNBUFFERED=1
VOLUME ["/home/mot/data"]
EXPOSE 6066
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD python -c "import os,urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('MOT_WEB_PORT','6066'), timeout=2); sys.exit(0)"
ENTRYPOINT ["mot"]
CMD ["worker"]
