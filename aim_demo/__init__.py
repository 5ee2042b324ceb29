"""Demo departmental source systems and local infrastructure (embedded PostgreSQL, S3 server).

Nothing here is production code: it stands in for the city's systems so that `make demo` and
the tests run on real servers with realistic data.
"""
