"""Reading data into Arrow tables: CSV (plain or compressed) and Parquet, files, globs and folders.

    from keel.data import read_table
    table = read_table("examples/flights/data/nycflights13_flights.csv.gz")

Every problem with the input is a `DataError` whose one-line message names the file and the rule.
"""

from keel.data.read import Format, ReadResult, read_data, read_table, resolve_source
from keel.errors import DataError

__all__ = ["DataError", "Format", "ReadResult", "read_data", "read_table", "resolve_source"]
