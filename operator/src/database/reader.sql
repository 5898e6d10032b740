-- The backup Job's role: reads every table of every database (pg_read_all_data) and
-- writes nothing; provision.sh grants it CONNECT on each service's database. psql
-- variable :role; the password comes from DB_PASSWORD, as in provision.sql.
\getenv password DB_PASSWORD
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
GRANT pg_read_all_data TO :"role";
