-- Course database set-up for the Docker PostgreSQL (05_src/docker-compose.yml).
--
-- The postgres image runs every file in /docker-entrypoint-initdb.d/ in name order, once,
-- when its data volume is empty, with psql connected to POSTGRES_DB as POSTGRES_USER.
-- The file is idempotent and works on PostgreSQL 14 or newer, so it is also safe to run
-- by hand against any server, e.g. a team or cloud one:
--
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f 05_src/sql/init/001_schemas.sql
--
-- The embedded server needs none of this: `uv run mlsd db up` creates the same schemas
-- (the list below is mlsd.db.SCHEMAS; a test keeps the two in step).

-- One schema per layer of the data flow.
CREATE SCHEMA IF NOT EXISTS bronze;
COMMENT ON SCHEMA bronze IS 'Raw landing tables, loaded as they arrive (defects included)';

CREATE SCHEMA IF NOT EXISTS silver;
COMMENT ON SCHEMA silver IS 'Cleaned, typed and deduplicated tables';

CREATE SCHEMA IF NOT EXISTS gold;
COMMENT ON SCHEMA gold IS 'Point-in-time features and labels, ready for training';

CREATE SCHEMA IF NOT EXISTS ml;
COMMENT ON SCHEMA ml IS 'Training sets, model metadata and batch scores';

CREATE SCHEMA IF NOT EXISTS monitoring;
COMMENT ON SCHEMA monitoring IS 'Prediction log, drift statistics and alerts';

-- The MLflow tracking server keeps its runs and model registry in a database of its own.
-- CREATE DATABASE cannot run inside a transaction or a DO block, so psql builds the
-- statement and \gexec runs it only when the database is missing.
-- The name defaults to mlflow; `psql -v mlflow_db=NAME` overrides it (the tests do).
\if :{?mlflow_db}
\else
  \set mlflow_db mlflow
\endif
SELECT format('CREATE DATABASE %I', :'mlflow_db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'mlflow_db')
\gexec
