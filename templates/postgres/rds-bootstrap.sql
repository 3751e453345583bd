{{ header("--") }}
--
-- Creates the application role on an RDS writer, idempotently. Run with
-- psql as RDS's master user, which is no superuser: it holds CREATEROLE
-- and owns the database RDS created, but may not create a REPLICATION role
-- (RDS replicas need none: RDS streams to them itself). Names and the
-- password arrive as psql variables (-v), so no secret is ever written
-- into this file: database, app_user, app_password.
\set ON_ERROR_STOP on

SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'app_user', :'app_password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'app_user', :'app_password') \gexec

SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', :'database', :'app_user') \gexec

-- Since PostgreSQL 15 only the database's owner may create in schema
-- public; the app's migrations create their tables there.
\connect :database
SELECT format('GRANT USAGE, CREATE ON SCHEMA public TO %I', :'app_user') \gexec
