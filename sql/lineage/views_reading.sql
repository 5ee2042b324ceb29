-- The marts views that read a relation, directly or through other views (aim.lineage: the
-- OpenLineage outputs of the measures' recompute). Parameters: the relation's schema and name.
WITH RECURSIVE reader(schema_name, name) AS (
    SELECT %(schema)s::information_schema.sql_identifier, %(name)s::information_schema.sql_identifier
    UNION
    SELECT u.view_schema, u.view_name
      FROM information_schema.view_table_usage u
      JOIN reader r ON u.table_schema = r.schema_name AND u.table_name = r.name
)
SELECT schema_name, name FROM reader WHERE schema_name = 'marts' ORDER BY 1, 2;
