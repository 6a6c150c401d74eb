"""The shared PostgreSQL fixture gives each test its own empty database on a real server."""

import psycopg


def test_each_test_gets_a_fresh_database_with_no_tables(postgres_database: str) -> None:
    with psycopg.connect(postgres_database) as connection:
        tables = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        connection.execute("CREATE TABLE marker (id int)")
    assert tables == (0,)


def test_a_second_test_does_not_see_the_first_tests_table(postgres_database: str) -> None:
    with psycopg.connect(postgres_database) as connection:
        found = connection.execute("SELECT to_regclass('public.marker')").fetchone()
    assert found == (None,)
