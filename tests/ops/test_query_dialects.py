"""The named queries are Athena's (Presto/Trino) as much as DuckDB's.

DuckDB executes every file in test_reports.py. Here each file is parsed as Presto and as
Trino with sqlglot, and every function it calls must be one Athena has: DuckDB-only
spellings (quantile_cont, epoch_ms, strftime, list_*) would run locally and fail on AWS.
Where DuckDB lacks an Athena function, reports.ATHENA_MACROS defines it, and each such
file says so in its header.
"""

from __future__ import annotations

import json

import pytest
import sqlglot
from magpie import reports
from sqlglot import exp
from sqlglot.tokens import TokenType

QUERIES = sorted(reports.named_queries().items())

# Functions of Athena engine version 3 (Trino) that the queries may use.
ATHENA_FUNCTIONS = {
    "approx_percentile",
    "avg",
    "cast",
    "coalesce",
    "count",
    "count_if",
    "date_diff",
    "date_trunc",
    "from_iso8601_timestamp",
    "json_extract",
    "json_extract_scalar",
    "lower",
    "max",
    "min",
    "nullif",  # Trino's conditional expression; DuckDB's means the same
    "round",
    "split_part",  # Trino's and DuckDB's both count fields from 1
    "sum",
    "try_cast",
    "unnest",
    "upper",
}


def called_functions(sql: str, dialect: str) -> set[str]:
    """Names written directly before '(' (aliases such as `AS t(images)` excluded)."""
    tokens = sqlglot.Dialect.get_or_raise(dialect).tokenize(sql)
    names = set()
    for before, token, after in zip(tokens, tokens[1:], tokens[2:], strict=False):
        if after.token_type != TokenType.L_PAREN or before.token_type == TokenType.ALIAS:
            continue
        if token.token_type in (TokenType.VAR, TokenType.UNNEST) or token.text.lower() in (
            ATHENA_FUNCTIONS
        ):
            names.add(token.text.lower())
    return names


@pytest.mark.parametrize("dialect", ["presto", "trino"])
@pytest.mark.parametrize(("name", "path"), QUERIES)
def test_query_parses_as_athena_sql(name, path, dialect):
    sql = path.read_text()
    tree = sqlglot.parse_one(sql, read=dialect)
    assert isinstance(tree, exp.Query), name
    unknown = [f.name for f in tree.find_all(exp.Anonymous)]
    assert unknown == [], f"{name}: functions {dialect} does not know: {unknown}"


@pytest.mark.parametrize(("name", "path"), QUERIES)
def test_query_calls_only_athena_functions(name, path):
    used = called_functions(path.read_text(), "trino")
    assert used <= ATHENA_FUNCTIONS, f"{name} calls {sorted(used - ATHENA_FUNCTIONS)}"


@pytest.mark.parametrize(("name", "path"), QUERIES)
def test_query_header_names_its_table_and_the_local_macros_it_needs(name, path):
    sql = path.read_text()
    header = "\n".join(line for line in sql.splitlines() if line.startswith("--"))
    assert "Dialect: Athena" in header, name
    tables = {t.name for t in sqlglot.parse_one(sql, read="trino").find_all(exp.Table)}
    tables -= {cte.alias for cte in sqlglot.parse_one(sql, read="trino").find_all(exp.CTE)}
    declared = {t.name for t in reports.tables()}
    assert tables and tables <= declared, f"{name} reads {tables}, Glue has {declared}"
    body = "\n".join(line for line in sql.splitlines() if not line.startswith("--"))
    for macro in reports.ATHENA_MACROS:
        if macro + "(" in body:
            assert macro in header, f"{name} uses {macro} but its header does not say so"


def test_the_function_finder_sees_duckdb_only_spellings():
    sql = "SELECT quantile_cont(x, 0.5), epoch_ms(t) FROM t CROSS JOIN UNNEST(a) AS t(y)"
    assert called_functions(sql, "trino") == {"quantile_cont", "epoch_ms", "unnest"}


def test_glue_tables_are_well_formed():
    for path in sorted(reports.TABLES.glob("*.json")):
        spec = json.loads(path.read_text())
        assert spec["serde"] == "org.openx.data.jsonserde.JsonSerDe"
        names = [c["name"] for c in spec["columns"]]
        assert len(names) == len(set(names)), path.name
        for column in spec["columns"]:
            reports.duckdb_type(column["type"])  # raises on a malformed Hive type
