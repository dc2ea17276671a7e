"""The item catalogue: import from a file (or a MovieLens directory), export."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cli import render
from cli.options import StoreOpt, load_settings

app = typer.Typer(help="The item catalogue: availability, categories, attributes (docs/rules.md).")


@app.command("import")
def import_items(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet item table, or a MovieLens directory (titles and "
                                              "genres)")],
    store: StoreOpt = None,
) -> None:
    """Create or replace the file's items in one catalogue write (all or none; applies on the next request)."""
    from recsys.catalogue import put_items, read_item_file
    from recsys.store import store_from_settings

    if not file.exists():
        render.error(f"{file} does not exist")
        raise typer.Exit(code=2)
    records = read_item_file(file)
    snapshot = put_items(store_from_settings(load_settings(store)), records, max_items=None)
    render.print_json({"imported": len(records), "catalogue_version": snapshot.version,
                       "catalogue_items": len(snapshot.live())})


@app.command("export")
def export_items(
    out: Annotated[Path | None, typer.Option("--out", help="Write here (.csv or .parquet); default: CSV on "
                                                            "stdout")] = None,
    store: StoreOpt = None,
) -> None:
    """Every item of the catalogue (deleted ones left out), in the format `recsys items import` reads."""
    import polars as pl

    from recsys.catalogue import frame_from_records
    from recsys.store import store_from_settings

    frame = frame_from_records(store_from_settings(load_settings(store)).catalogue.snapshot().items.values())
    if out is not None and out.suffix.lower() == ".parquet":
        frame.write_parquet(out)
        return
    if out is not None and out.suffix.lower() != ".csv":
        render.error(f"unsupported output type {out.suffix!r}: use .csv or .parquet")
        raise typer.Exit(code=2)
    text = frame.with_columns(pl.col("categories").list.join("|")).write_csv()
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)
