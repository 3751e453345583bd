{{ header("--") }}
--
-- Creates the roles and database a phase needs, idempotently. Run with psql
-- as the superuser; names and passwords arrive as psql variables (-v), so
-- no secret is ever written into this file:
--   database, app_user, app_password, replication_user, replication_password
-- and, to set a rotated superuser password, superuser and superuser_password.
\set ON_ERROR_STOP on

\if :{?superuser_password}
SELECT format('ALTER ROLE %I PASSWORD %L', :'superuser', :'superuser_password') \gexec
\endif

SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'app_user', :'app_password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'app_user', :'app_password') \gexec

SELECT format('CREATE ROLE %I REPLICATION LOGIN PASSWORD %L', :'replication_user', :'replication_password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'replication_user') \gexec
SELECT format('ALTER ROLE %I REPLICATION LOGIN PASSWORD %L', :'replication_user', :'replication_password') \gexec

SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'app_user')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'database', :'app_user') \gexec

\connect :database
SELECT format('GRANT ALL ON SCHEMA public TO %I', :'app_user') \gexec
