"""Turning request bodies into arrays and predictions into response bodies, the way SageMaker's
framework containers do for text/csv, application/json and application/x-npy."""

import csv
import io
import json

import numpy as np

from runtime.images.base import ModelError

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"


def media_type(content_type: str) -> str:
    """`text/csv; charset=utf-8` → `text/csv`."""
    return content_type.split(";", 1)[0].strip().lower()


def decode(body: bytes, content_type: str) -> object:
    """The request body as Python data: CSV as a 2-D float array, JSON as parsed, NPY as an array.

    JSON may be a list of rows, or an object with "instances" or "inputs" holding them.
    """
    kind = media_type(content_type or JSON)
    if kind == CSV:
        try:
            rows = [row for row in csv.reader(io.StringIO(body.decode("utf-8"))) if row]
            return np.array(rows, dtype=float)
        except (UnicodeDecodeError, ValueError) as error:
            raise ModelError(400, f"Could not read the CSV body as numbers: {error}") from error
    if kind == JSON:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as error:
            raise ModelError(400, f"The body is not valid JSON: {error}") from error
        if isinstance(data, dict):
            for key in ("instances", "inputs", "features"):
                if key in data:
                    return data[key]
        return data
    if kind == NPY:
        try:
            return np.load(io.BytesIO(body), allow_pickle=False)
        except (ValueError, OSError) as error:
            raise ModelError(400, f"Could not read the .npy body: {error}") from error
    raise ModelError(415, f"Content type {content_type!r} is not supported; send {CSV} or {JSON}.")


def jsonable(prediction: object) -> object:
    if isinstance(prediction, np.ndarray):
        return prediction.tolist()
    if isinstance(prediction, np.generic):
        return prediction.item()
    return prediction


def encode(prediction: object, accept: str) -> tuple[bytes, str]:
    """The prediction as a response body in the type the caller accepts (JSON by default)."""
    kind = media_type(accept or JSON)
    if kind in {"*/*", ""}:
        kind = JSON
    if kind == JSON:
        return json.dumps({"predictions": jsonable(prediction)}).encode(), JSON
    if kind == CSV:
        rows = jsonable(prediction)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for row in rows if isinstance(rows, list) else [rows]:
            writer.writerow(row if isinstance(row, list) else [row])
        return buffer.getvalue().encode(), CSV
    raise ModelError(406, f"Cannot answer in {accept!r}; accept {JSON} or {CSV}.")
