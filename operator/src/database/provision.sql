-- One role and one database per service, idempotently: run it again (a new service, a
-- restarted Job) and nothing already there changes but the role's password, which
-- follows the service's Secret. psql variables: :role and :db; the password comes from
-- the DB_PASSWORD environment variable (never the command line, which `ps` shows).
\getenv password DB_PASSWORD
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
-- Only its own service may connect to a database.
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT ALL ON DATABASE :"db" TO :"role";
