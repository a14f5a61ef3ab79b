"""Real model archives, built the way a user would build model.tar.gz."""

import io
import textwrap
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression

from endpoints.demo import tarball


def joblib_bytes(model: object) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def iris_like_classifier() -> bytes:
    """A logistic regression that says 1 when the first feature is large, else 0."""
    features = np.array([[0.0, 1.0], [1.0, 1.0], [9.0, 1.0], [10.0, 1.0]])
    return tarball({"model.joblib": joblib_bytes(LogisticRegression().fit(features, [0, 0, 1, 1]))})


def linear_model(slope: float) -> bytes:
    """y = slope * x: each multi-model target answers with its own slope."""
    features = np.array([[0.0], [1.0], [2.0]])
    return tarball(
        {"model.joblib": joblib_bytes(LinearRegression().fit(features, features[:, 0] * slope))}
    )


def python_model(body: str) -> bytes:
    """A user's own inference.py in code/, with a small data file beside it."""
    return tarball(
        {
            "code/inference.py": textwrap.dedent(body).encode(),
            "greeting.txt": b"hello",
        }
    )


UPPERCASE = """
import json
from pathlib import Path

def model_fn(model_dir):
    return Path(model_dir, "greeting.txt").read_text()

def input_fn(data, content_type):
    return json.loads(data)["text"]

def predict_fn(text, greeting):
    return f"{greeting} {text.upper()}"

def output_fn(prediction, accept):
    return json.dumps({"answer": prediction}), "application/json"
"""

APPEND = """
import json

def model_fn(model_dir):
    return None

def transform_fn(model, data, content_type, accept):
    payload = json.loads(data)
    payload["trail"] = payload.get("trail", []) + ["{name}"]
    return json.dumps(payload), "application/json"
"""

BROKEN_LOAD = """
def model_fn(model_dir):
    raise FileNotFoundError("weights.bin is missing from the archive")
"""


def write(root: Path, uri: str, data: bytes) -> None:
    """Put an object into the runtime's local S3 folder."""
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    path = root / bucket / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
