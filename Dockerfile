# BoardLens as a container (a Hugging Face Docker Space, or any host that runs images).
# CPU only: torch comes from PyTorch's CPU wheel index, pinned to requirements.txt's version.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    STREAMLIT_SERVER_PORT=7860 \
    STREAMLIT_SERVER_ADDRESS=0.0.0.0 \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

RUN useradd --create-home boardlens
WORKDIR /home/boardlens/app

# The package indexes are build arguments so that a build without internet access can name a local
# index (README, Deploy); the defaults are the public ones.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_INDEX_URL=https://pypi.org/simple
COPY requirements.txt .
RUN pip install torch==2.13.0 --index-url "$TORCH_INDEX_URL" && pip install --index-url "$PIP_INDEX_URL" -r requirements.txt

COPY --chown=boardlens . .
USER boardlens

# Published models baked into the image, for a host with network at build time (a Docker Space):
#   docker build --build-arg HUB_MODELS="othello-gpt-synthetic chess-gpt-karvonen" -t boardlens .
# fills the hub cache below and verifies every file (the build fails on a missing or damaged one);
# the app then lists them as available and needs no network at run time.
ARG HUB_MODELS=""
ENV HF_HOME=/home/boardlens/.cache/huggingface
RUN if [ -n "$HUB_MODELS" ]; then python -m core.models.fetch $HUB_MODELS; fi

EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/_stcore/health', timeout=4)"

# README.md's `streamlit run app.py`, warmed first (imports, the default model) so that the health
# check answers when a first page is quick; port and address come from the STREAMLIT_* variables above.
CMD ["python", "-m", "ui.serve"]
