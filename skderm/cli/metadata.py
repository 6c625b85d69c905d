"""``predict --metadata``: the age, sex and site of images, read from a CSV by file stem."""

from __future__ import annotations

import os

__all__ = ["with_metadata"]


def _read(csv: str):
    import pandas as pd

    from skderm.exceptions import DatasetError

    try:
        # read as load_ham10000 reads the training CSV: text kept as text (an empty
        # or "unknown" site stays that string)
        table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DatasetError(f"no metadata file at {csv!r}; give the CSV with an image_id "
                           "column, such as HAM10000_metadata.csv") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read metadata file {csv!r} as CSV: {exc}") from None
    table.columns = [str(c).strip() for c in table.columns]
    return table


def with_metadata(files: list[str], csv: str, columns: list[str], path_column: str,
                  optional: list[str] = ()):
    """A frame of ``files`` and their ``columns`` from ``csv``, matched on image_id = file
    stem; the ``optional`` columns too where the CSV has them."""
    from skderm.exceptions import DatasetError

    table = _read(csv)
    absent = [c for c in ["image_id", *columns] if c not in table.columns]
    if absent:
        raise DatasetError(f"metadata file {csv!r} has no column(s) {absent}; it has "
                           f"{list(table.columns)} (the model needs image_id and {columns})")
    columns = [*columns, *(c for c in optional if c in table.columns and c not in columns)]
    for column in ["image_id", *columns]:
        table[column] = table[column].str.strip()
    if "age" in columns:
        from skderm.datasets import parse_age

        table["age"] = parse_age(table["age"], csv)
    repeated = table["image_id"][table["image_id"].duplicated()].unique()
    if len(repeated):
        raise DatasetError(f"metadata file {csv!r} lists image_id {list(repeated[:5])} more "
                           "than once; keep one row per image")
    stems = [os.path.splitext(os.path.basename(f))[0] for f in files]
    rows = table.set_index("image_id")
    unknown = [s for s in stems if s not in rows.index]
    if unknown:
        raise DatasetError(f"metadata file {csv!r} has no row for {len(unknown)} image(s), e.g. "
                           f"{unknown[:5]}; add rows whose image_id is the file name without "
                           "its extension")
    X = rows.loc[stems, columns].reset_index(drop=True)
    X.insert(0, path_column, files)
    return X
