# One image for web, worker and beat (see docker-compose.yml).
FROM node:20-bookworm-slim AS assets
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TORII_ENV=production
WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY torii ./torii
COPY accounts ./accounts
COPY integrations ./integrations
COPY jumpcloud ./jumpcloud
COPY dashboard ./dashboard
COPY api ./api
RUN pip install --no-cache-dir -c requirements.lock .
# The rest of the source. .dockerignore keeps .env, var/ (development keys), .git, .venv and local
# build output out of the build context, so no secret can land in a layer.
COPY . .
COPY --from=assets /app/node_modules ./node_modules
# collectstatic needs settings but no secrets of production: use throwaway values for this step only
# (it connects to no database).
RUN SECRET_KEY=build-only DATABASE_URL=postgres://build@localhost/build \
    FIELD_ENCRYPTION_KEYS="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
    python manage.py collectstatic --noinput
RUN useradd --create-home torii && mkdir -p var && chown -R torii var staticfiles
USER torii
EXPOSE 8000
CMD ["gunicorn", "torii.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
