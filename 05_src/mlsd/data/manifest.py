"""Where landing data lives, and how to read it back: the manifest and the files it lists.

The manifest (``manifest.json`` next to the table folders) is the record of a run: seed, scale,
scenarios, defect counts, the ground truth and every file written. Readers go through it rather
than globbing folders, so a half-written or foreign folder is an error with a next step, not a
silent partial read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlsd.data._schema import arrow_schema
from mlsd.errors import MLSDError

if TYPE_CHECKING:
    import pandas as pd

    from mlsd.config import Settings

__all__ = ["MANIFEST_NAME", "landing_dir", "read_landing", "read_manifest"]

MANIFEST_NAME = "manifest.json"


def landing_dir(
    settings: Settings | None = None, *, scale: str | None = None, seed: int = 42, rows: int | None = None
) -> Path:
    """The default landing folder: ``{data_dir}/landing/{scale}_seed{seed}``.

    Parameters
    ----------
    settings : Settings, optional
        Resolved course settings; read from the environment when omitted.
    scale : str, optional
        ``tiny``, ``small``, ``full`` or a row count; defaults to ``settings.scale``.
    seed : int
        The generator seed.
    rows : int, optional
        A row count; wins over ``scale`` (the folder is then ``rows{N}_seed{seed}``).

    Returns
    -------
    pathlib.Path
        The folder (not created).
    """
    from mlsd.config import get_settings

    settings = settings or get_settings()
    if rows is not None:
        name = f"rows{int(rows)}"
    else:
        name = str(scale or settings.scale)
        name = f"rows{name}" if name.isdigit() else name
    return settings.data_dir / "landing" / f"{name}_seed{int(seed)}"


def _manifest_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path if path.suffix == ".json" else path / MANIFEST_NAME


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """Read the manifest of a generated dataset.

    Parameters
    ----------
    path : path
        The output folder of :func:`mlsd.data.generate`, or the ``manifest.json`` itself.

    Returns
    -------
    dict
        The manifest (see ``CONTRACT.md``).

    Raises
    ------
    MLSDError
        When there is no manifest: the data has not been generated there (or the run was
        interrupted before it finished).
    """
    file = _manifest_path(path)
    if not file.is_file():
        raise MLSDError(
            f"No {MANIFEST_NAME} in {file.parent}: generate the data first with "
            "`mlsd data generate` or `mlsd.data.generate(out_dir)` (an interrupted run leaves none)."
        )
    return json.loads(file.read_text(encoding="utf-8"))


def read_landing(path: str | os.PathLike, table: str, months: list[str] | None = None) -> pd.DataFrame:
    """Read one landing table into pandas, with its ``month`` column, in file order.

    Parameters
    ----------
    path : path
        The output folder of :func:`mlsd.data.generate`.
    table : str
        One of :data:`mlsd.data.TABLES`.
    months : list of str, optional
        Landing months to read (``YYYY-MM``); all by default.

    Returns
    -------
    pandas.DataFrame
        The landing rows as written (defects included), typed as in the Parquet schema for both
        formats.
    """
    import pandas as pd
    import pyarrow as pa

    root = Path(path)
    manifest = read_manifest(root)
    if table not in manifest["files"]:
        raise MLSDError(f"No table {table!r} in {root}: choose from {', '.join(manifest['files'])}.")
    schema = arrow_schema(table)
    frames = []
    for rel in manifest["files"][table]:
        month = rel.split("month=")[1][:7] if "month=" in rel else rel[-11:-4]
        if months is not None and month not in months:
            continue
        if manifest["format"] == "parquet":
            import pyarrow.parquet as pq

            arrow_table = pq.read_table(root / rel, schema=schema)
        else:
            import pyarrow.csv as pacsv

            options = pacsv.ConvertOptions(
                column_types={**{f.name: f.type for f in schema}, "month": pa.string()},
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            )
            arrow_table = pacsv.read_csv(root / rel, convert_options=options).drop_columns(["month"])
        frame = arrow_table.to_pandas()
        frame["month"] = month
        frames.append(frame)
    if not frames:
        return arrow_schema(table).empty_table().to_pandas().assign(month=pd.Series(dtype="str"))
    return pd.concat(frames, ignore_index=True)
