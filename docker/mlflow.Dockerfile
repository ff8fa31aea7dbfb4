# The MLflow tracking server of the compose stack: full mlflow (the API image has only the client),
# a Postgres backend store, artifacts proxied by the server (--serve-artifacts).
FROM python:3.11.14-slim-bookworm

RUN pip install --no-cache-dir "mlflow==3.17.2" "psycopg[binary]==3.3.9" \
 && groupadd --system --gid 10001 mlflow \
 && useradd --system --uid 10001 --gid mlflow --create-home mlflow \
 && mkdir -p /mlflow/artifacts && chown -R mlflow:mlflow /mlflow

USER 10001:10001
WORKDIR /home/mlflow
EXPOSE 5000
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]
