-- The analysts' role: reads the marts views and nothing else.
--
-- Roles belong to the whole server (every database on it), so it is created only when missing:
-- several warehouses on one server, or a DBA who created it beforehand, are fine. No password is
-- set here; in production the DBA sets one (ALTER ROLE aim_analyst PASSWORD ...) or maps it in
-- pg_hba.conf. The views are owned by the migrating user and read core on the analyst's behalf.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'aim_analyst') THEN
        BEGIN
            CREATE ROLE aim_analyst LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created at the same moment by the migration of another database on this server
        END;
    END IF;
END
$$;
COMMENT ON ROLE aim_analyst IS 'AIM analysts: read-only access to the marts views of the AIM warehouse (scorecard, measure_history, values_by_district, measure_definitions); no access to staging, core or ops.';

-- Nothing but marts: other schemas are closed to PUBLIC (and so to the analyst).
REVOKE ALL ON SCHEMA staging, core, ops FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA staging, core, ops FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO aim_analyst', current_database());
END
$$;
GRANT USAGE ON SCHEMA marts TO aim_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA marts TO aim_analyst;
-- Views that later migrations add to marts (created by the same migrating user) are readable too.
ALTER DEFAULT PRIVILEGES IN SCHEMA marts GRANT SELECT ON TABLES TO aim_analyst;
-- The marts views call the status function: the caller needs EXECUTE on it (not USAGE on core).
GRANT EXECUTE ON FUNCTION core.aim_status(numeric, numeric, text, numeric) TO aim_analyst;
