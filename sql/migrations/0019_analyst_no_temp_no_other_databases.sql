-- The analysts' role creates nothing, temporary objects included, and stays in the warehouse.
--
-- Temporary objects: PostgreSQL grants TEMPORARY on every database to PUBLIC, so aim_analyst could
-- create temp tables (and fill the disk through them). This database stops granting it to PUBLIC.
-- The migrating user keeps it, as the database's owner (or a superuser), and is granted it by name
-- too: the pipeline that runs as this user builds temp tables (aim.measures).
--
-- Other databases: PostgreSQL grants CONNECT to PUBLIC on every database it creates, so aim_analyst
-- (a role of the whole server) may log in to any of them that keeps that default. A migration of
-- this database must not rewrite the grants of the other databases of a shared server; the DBA
-- keeps the role out of them in pg_hba.conf (docs/analyst-guide.md, "For the DBA"). The embedded
-- demo server does that itself (aim_demo/embedded_pg.py).

DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM aim_analyst', current_database());
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO %I', current_database(), current_user);
END
$$;
