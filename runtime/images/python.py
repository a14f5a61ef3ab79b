"""The `python` image: any model a user brings, served by their own `code/inference.py`.

It follows the SageMaker inference toolkit's convention: the module named by SAGEMAKER_PROGRAM
(default inference.py) in `code/` may define `model_fn`, `input_fn`, `predict_fn` and
`output_fn` (each may take a trailing `context` argument), or `transform_fn` instead of the last
three. Missing functions fall back to the defaults below.
"""

import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from runtime.images import codecs
from runtime.images.base import Image, ModelError


def default_model_fn(model_dir: str) -> object:
    raise RuntimeError(
        "code/inference.py must define model_fn(model_dir) that loads and returns the model."
    )


def default_input_fn(input_data: bytes | str, content_type: str) -> object:
    data = input_data.encode() if isinstance(input_data, str) else input_data
    return codecs.decode(data, content_type)


def default_predict_fn(data: object, model: object) -> object:
    if hasattr(model, "predict"):
        return model.predict(data)
    if callable(model):
        return model(data)
    raise ModelError(500, "The model has no predict() and is not callable; define predict_fn.")


def default_output_fn(prediction: object, accept: str) -> tuple[bytes, str]:
    return codecs.encode(prediction, accept)


def call(function: Callable, *args: object, context: object = None) -> object:
    """Call a handler with the trailing `context` argument only if it declares one (as the
    toolkit does, by arity)."""
    parameters = inspect.signature(function).parameters
    if len(parameters) > len(args):
        return function(*args, context)
    return function(*args)


class PythonImage(Image):
    def __init__(self, model_dir: Path, environment: Mapping[str, str]):
        super().__init__(model_dir, environment)
        program = environment.get("SAGEMAKER_PROGRAM", "inference.py")
        code_dir = model_dir / "code"
        path = code_dir / program
        if not path.is_file():
            raise RuntimeError(
                f"The python image needs code/{program} in model.tar.gz; it is missing."
            )
        sys.path.insert(0, str(code_dir))  # so inference.py can import its neighbours
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            raise RuntimeError(f"code/{program} failed to import: {error!r}") from error
        self.transform_fn = getattr(module, "transform_fn", None)
        handlers = ("input_fn", "predict_fn", "output_fn")
        if self.transform_fn and any(hasattr(module, name) for name in handlers):
            raise RuntimeError(
                "code/inference.py defines transform_fn and also input_fn, predict_fn or "
                "output_fn; define either transform_fn alone or the other three."
            )
        self.input_fn = getattr(module, "input_fn", default_input_fn)
        self.predict_fn = getattr(module, "predict_fn", default_predict_fn)
        self.output_fn = getattr(module, "output_fn", default_output_fn)
        model_fn = getattr(module, "model_fn", default_model_fn)
        try:
            self.model = call(model_fn, str(model_dir))
        except Exception as error:
            raise RuntimeError(f"model_fn failed: {error!r}") from error

    def invoke(
        self, body: bytes, content_type: str, accept: str, custom_attributes: str = ""
    ) -> tuple[bytes, str]:
        accept = (
            accept
            if accept and accept != "*/*"
            else self.environment.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", codecs.JSON)
        )
        data: bytes | str = body
        if codecs.media_type(content_type) in {codecs.JSON, codecs.CSV, "text/plain"}:
            try:
                data = body.decode("utf-8")  # the toolkit hands UTF-8 types over as str
            except UnicodeDecodeError as error:
                raise ModelError(400, f"The body is not UTF-8 text: {error}") from error
        try:
            if self.transform_fn:
                result = call(self.transform_fn, self.model, data, content_type, accept)
            else:
                features = call(self.input_fn, data, content_type)
                prediction = call(self.predict_fn, features, self.model)
                result = call(self.output_fn, prediction, accept)
        except ModelError:
            raise
        except Exception as error:  # the user's code: any failure is the model's error
            raise ModelError(500, f"{type(error).__name__}: {error}") from error
        if isinstance(result, tuple):
            answer, answer_type = result
        else:
            answer, answer_type = result, accept
        if isinstance(answer, str):
            answer = answer.encode()
        return bytes(answer), answer_type
