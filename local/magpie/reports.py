"""`magpie report`: SQL over the local data lake with DuckDB, as Athena runs it on AWS.

The tables are declared once, in `queries/glue/*.json` (the Glue tables the infrastructure
creates, with Hive column types), and the queries once, in `queries/athena/*.sql` (deployed
as Athena named queries). Locally each table becomes a DuckDB view over the lake files, so
the same SQL text runs in both places:

* Athena's JSON SerDe resolves `detail.analysis.images` against the PascalCase keys we
  write; DuckDB resolves struct fields case-insensitively too, so a view that declares the
  PascalCase schema answers the lower-case names unchanged.
* `CROSS JOIN UNNEST(x) AS t(y)` is DuckDB syntax as well (repeating the alias `t` included).
* The few Presto/Trino functions the queries use that DuckDB lacks are DuckDB macros here
  (`ATHENA_MACROS`); the one type DuckDB spells differently, `ARRAY(JSON)`, is the only
  text rewritten (`ATHENA_TYPE_SPELLINGS`).

The lake is written at least once (as Firehose does): each view keeps one record per
envelope id, and leaves out replayed copies (records with `replay-name`), which repeat an
archived original.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.display import escape_controls
from chalicelib.errors import InputError
from chalicelib.lake_routes import RAW_X_PREFIX
from magpie.apps import ROOT
from magpie.lake import TornLines, read_lines

QUERIES = ROOT / "queries"
ATHENA_QUERIES = QUERIES / "athena"
TABLES = QUERIES / "glue"
FORMATS = ("table", "csv", "json")

# Presto/Trino functions our Athena queries use that DuckDB spells differently. Each keeps
# Athena's meaning as closely as DuckDB allows; the difference is stated.
ATHENA_MACROS = {
    # Athena returns timestamp(3) with time zone; here a UTC timestamp without zone, which
    # compares, subtracts and casts to DATE the same way for our 'Z' times.
    "from_iso8601_timestamp": "(s) AS CAST(s AS TIMESTAMP)",
    # Athena's is approximate (t-digest); locally it is exact, returning a member of the set.
    "approx_percentile": "(x, p) AS quantile_disc(x, p)",
    # Athena's returns NULL for an object or an array (only scalars are extracted).
    "json_extract_scalar": (
        "(j, p) AS CASE WHEN json_type(json_extract(j, p)) IN ('OBJECT', 'ARRAY') THEN NULL"
        " ELSE json_extract_string(j, p) END"
    ),
}
# Type names Athena and DuckDB spell differently; no macro can rename a type, so these
# (and only these) are respelt in the query text before DuckDB parses it.
ATHENA_TYPE_SPELLINGS = {"AS ARRAY(JSON))": "AS JSON[])"}

# Columns read beside a table's own to dedupe and drop replayed copies (never exposed
# unless the table declares them).
_ID, _REPLAY = "id", "replay-name"

_HIVE_SCALARS = {
    "string": "VARCHAR",
    "varchar": "VARCHAR",
    "double": "DOUBLE",
    "float": "FLOAT",
    "int": "INTEGER",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "smallint": "SMALLINT",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
}


class ReportError(InputError):
    """A report that cannot run: an unknown name, a bad table definition or bad SQL."""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, Hive type) as Glue declares them
    # The folder under the lake root the table reads ("" for the root, where Magpie's own
    # events are; "x-raw/" for X's raw items: chalicelib/lake_routes.py).
    prefix: str = ""

    @classmethod
    def load(cls, path: Path) -> Table:
        spec = json.loads(path.read_text())
        columns = tuple((c["name"], c["type"]) for c in spec["columns"])
        prefix = spec.get("prefix", "")
        if prefix and not re.fullmatch(r"[a-z0-9-]+/", prefix):
            raise ReportError(f"{path.name}: prefix {prefix!r} is not one folder name and '/'")
        return cls(spec["name"], columns, prefix)


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    # What the reader had to leave out to answer (e.g. torn lake lines); "" when nothing.
    skipped: str = ""


# --- Hive types -> DuckDB types ---------------------------------------------------------


def duckdb_type(hive: str) -> str:
    """`struct<A:string,B:array<double>>` -> `STRUCT("A" VARCHAR, "B" DOUBLE[])`."""
    parsed, rest = _parse_type(hive.replace(" ", ""))
    if rest:
        raise ReportError(f"unexpected {rest!r} after a type in {hive!r}")
    return parsed


def _parse_type(text: str) -> tuple[str, str]:
    lowered = text.lower()
    if lowered.startswith("array<"):
        inner, rest = _parse_type(text[len("array<") :])
        return f"{inner}[]", _expect(rest, ">", text)
    if lowered.startswith("struct<"):
        return _parse_struct(text[len("struct<") :])
    match = re.match(r"[a-z]+", lowered)
    if not match or match.group() not in _HIVE_SCALARS:
        raise ReportError(f"unsupported Hive type at {text[:30]!r}")
    return _HIVE_SCALARS[match.group()], text[match.end() :]


def _parse_struct(text: str) -> tuple[str, str]:
    fields = []
    while True:
        name, sep, text = text.partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ReportError(f"bad struct field name {name!r}")
        field_type, text = _parse_type(text)
        fields.append(f'"{name}" {field_type}')
        if text.startswith(","):
            text = text[1:]
            continue
        return f"STRUCT({', '.join(fields)})", _expect(text, ">", text)


def _expect(rest: str, token: str, where: str) -> str:
    if not rest.startswith(token):
        raise ReportError(f"expected {token!r} in type at {where[:30]!r}")
    return rest[len(token) :]


# --- the DuckDB catalogue over the lake -------------------------------------------------


def tables(folder: Path = TABLES) -> list[Table]:
    return [Table.load(path) for path in sorted(folder.glob("*.json"))]


def lake_files(lake_root: Path) -> list[Path]:
    """The Firehose layout: year=YYYY/month=MM/day=DD/*.json (what LocalLake writes)."""
    return sorted(lake_root.glob("year=*/month=*/day=*/*.json"))


def connect(lake_root: Path, table_folder: Path = TABLES, *, tolerant: bool = False) -> Any:
    """An in-memory DuckDB with one view per Glue table over the lake, and Athena's macros.

    `tolerant` skips lines that are not JSON (a record torn by a crash or a full disk)."""
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    for name, body in ATHENA_MACROS.items():
        con.execute(f"CREATE MACRO {name}{body}")
    for table in tables(table_folder):
        files = [str(path) for path in lake_files(lake_root / table.prefix)]
        con.execute(_view_sql(table, files, tolerant=tolerant))
    return con


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _view_sql(table: Table, files: Sequence[str], *, tolerant: bool = False) -> str:
    declared = dict(table.columns)
    read = {**declared}
    read.setdefault(_ID, "string")
    read.setdefault(_REPLAY, "string")
    exposed = ", ".join(_quote(name) for name, _ in table.columns)
    if not files:
        # read_json needs at least one file: an empty lake is an empty, typed table.
        typed = ", ".join(
            f"CAST(NULL AS {duckdb_type(kind)}) AS {_quote(name)}" for name, kind in table.columns
        )
        return f"CREATE VIEW {_quote(table.name)} AS SELECT {typed} WHERE false"
    columns = ", ".join(f"'{name}': '{duckdb_type(kind)}'" for name, kind in read.items())
    file_list = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    # Records whose keys do not fit the declared types are an error, as in Athena: a typed
    # table reads only Magpie's own envelopes (X's raw items, whose keys a sender chooses,
    # are under x-raw/ with their detail as text), so a mismatch is a bug to see.
    source = (
        f"read_json([{file_list}], format = 'newline_delimited', columns = {{{columns}}},"
        " filename = '__file', maximum_object_size = 16777216"
        + (", ignore_errors = true)" if tolerant else ")")
    )
    # Identifiers are quoted and come from the project's own table files; paths are escaped.
    return (
        f"CREATE VIEW {_quote(table.name)} AS SELECT {exposed} FROM ("  # noqa: S608  # nosec B608
        f" SELECT *, row_number() OVER (PARTITION BY {_quote(_ID)} ORDER BY __file) AS __copy"
        f" FROM {source} WHERE {_quote(_REPLAY)} IS NULL"
        ") WHERE __copy = 1"
    )


# --- running queries --------------------------------------------------------------------


def named_queries(folder: Path = ATHENA_QUERIES) -> dict[str, Path]:
    return {path.stem: path for path in sorted(folder.glob("*.sql"))}


def describe_query(path: Path) -> str:
    """The first line of a query's header comment: what `magpie report --list` shows."""
    for line in path.read_text().splitlines():
        if line.startswith("--"):
            return line.lstrip("- ").strip()
    return ""


def query_text(name: str, folder: Path = ATHENA_QUERIES) -> str:
    queries = named_queries(folder)
    if name not in queries:
        known = ", ".join(queries) or "none"
        raise ReportError(f"no query named {name!r}; known: {known}")
    return queries[name].read_text()


def run(sql: str, lake_root: Path, table_folder: Path = TABLES) -> Result:
    """Run `sql` over the lake. A lake with torn lines (a crash or a full disk cut a record
    short) is read again without them, and the result says which lines it left out; the
    strict read comes first because a healthy lake is the common case and scanning costs."""
    import duckdb

    try:
        return _run(sql, lake_root, table_folder, tolerant=False)
    except duckdb.InvalidInputException as exc:
        torn = _torn_lines(lake_root)
        if not torn:
            raise ReportError(f"{type(exc).__name__}: {exc}") from exc
        result = _run(sql, lake_root, table_folder, tolerant=True)
        return Result(result.columns, result.rows, skipped=torn.describe())


def _run(sql: str, lake_root: Path, table_folder: Path, *, tolerant: bool) -> Result:
    import duckdb

    con = connect(lake_root, table_folder, tolerant=tolerant)
    for athena, duckdb_spelling in ATHENA_TYPE_SPELLINGS.items():
        sql = sql.replace(athena, duckdb_spelling)
    try:
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        return Result(columns, cursor.fetchall())
    except duckdb.InvalidInputException:
        if tolerant:
            raise ReportError("the lake cannot be read even without its torn lines") from None
        raise
    except duckdb.Error as exc:
        raise ReportError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        con.close()


def _torn_lines(lake_root: Path) -> TornLines:
    torn = TornLines()
    for path in lake_files(lake_root) + lake_files(lake_root / RAW_X_PREFIX):
        for _ in read_lines(path, torn):
            pass
    return torn


# --- output -----------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """JSON-ready values: timestamps as ISO-8601 (UTC, 'Z'), decimals as floats."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.strftime("%Y-%m-%dT%H:%M:%S") + (
                f".{value.microsecond:06d}Z" if value.microsecond else "Z"
            )
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _cell(value: Any) -> str:
    plain = _plain(value)
    if plain is None:
        return ""
    if isinstance(plain, dict | list):
        return json.dumps(plain, ensure_ascii=False)
    return str(plain)


# Texts in the lake come from strangers: in a terminal table a newline would forge a row
# (chalicelib/display.py writes every control character as a visible escape).
# A spreadsheet runs a CSV cell starting with one of these as a formula (=HYPERLINK(...)):
# OWASP's advice is to prefix such text with a quote, which makes it plain text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def table_safe(text: str) -> str:
    """`text` with every control character written as an escape (\\n, \\x1b, \\u202e)."""
    return escape_controls(text)


def csv_safe(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text: strings that could start a formula get a
    leading quote; numbers are left as they are (-1.5 stays a number)."""
    cell = _cell(value)
    if isinstance(_plain(value), str) and cell.startswith(_FORMULA_START):
        return "'" + cell
    return cell


def render(result: Result, fmt: str) -> str:
    if fmt == "json":
        rows = [dict(zip(result.columns, map(_plain, row), strict=True)) for row in result.rows]
        return json.dumps(rows, ensure_ascii=False, indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)  # RFC 4180: CRLF rows; a lone \r or \n in a cell is quoted
        writer.writerow([csv_safe(c) for c in result.columns])
        writer.writerows([csv_safe(v) for v in row] for row in result.rows)
        return out.getvalue()
    if fmt == "table":
        return _text_table(result)
    raise ReportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _text_table(result: Result) -> str:
    columns = [table_safe(c) for c in result.columns]
    cells = [[table_safe(_cell(v)) for v in row] for row in result.rows]
    widths = [len(c) for c in columns]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*columns).rstrip(), "  ".join("-" * w for w in widths)]
    out += [line.format(*row).rstrip() for row in cells]
    out.append(f"({len(cells)} row{'s' if len(cells) != 1 else ''})")
    return "\n".join(out) + "\n"
