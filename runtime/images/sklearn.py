"""The `sklearn` image: a joblib-saved scikit-learn estimator, answering CSV or JSON rows."""

from collections.abc import Mapping
from pathlib import Path

import joblib
import numpy as np

from runtime.images import codecs
from runtime.images.base import Image, ModelError


class SklearnImage(Image):
    """Loads `model.joblib` (or the only *.joblib / *.pkl file) and calls its predict().

    Set `SKLEARN_PREDICT=predict_proba` in the container's Environment to answer probabilities.
    """

    inline_when_quick = True  # a small predict takes about 0.1 ms

    @classmethod
    def preload(cls) -> None:
        # Unpickling an estimator imports scikit-learn and SciPy: about a second, paid here.
        import sklearn.base
        import sklearn.ensemble
        import sklearn.linear_model  # noqa: F401

    def __init__(self, model_dir: Path, environment: Mapping[str, str]):
        super().__init__(model_dir, environment)
        path = model_dir / "model.joblib"
        if not path.exists():
            found = sorted([*model_dir.rglob("*.joblib"), *model_dir.rglob("*.pkl")])
            if len(found) != 1:
                raise RuntimeError(
                    "The sklearn image needs model.joblib at the top of model.tar.gz "
                    f"(found {len(found)} .joblib/.pkl files)."
                )
            path = found[0]
        try:
            self.model = joblib.load(path)
        except Exception as error:  # a damaged or foreign file fails in many ways
            raise RuntimeError(
                f"{path.name} could not be loaded with joblib: {error!r}. Save the model with "
                "joblib.dump using the scikit-learn version this image serves."
            ) from error
        self.method = environment.get("SKLEARN_PREDICT", "predict")
        if not callable(getattr(self.model, self.method, None)):
            raise RuntimeError(f"The model in {path.name} has no {self.method}() method.")

    def invoke(
        self, body: bytes, content_type: str, accept: str, custom_attributes: str = ""
    ) -> tuple[bytes, str]:
        rows = codecs.decode(body, content_type)
        try:
            features = np.asarray(rows, dtype=float)
        except (TypeError, ValueError) as error:
            raise ModelError(400, f"The rows must be numbers: {error}") from error
        if features.ndim == 1:
            features = features.reshape(1, -1)
        try:
            prediction = getattr(self.model, self.method)(features)
        except ValueError as error:  # scikit-learn's way of saying the input has the wrong shape
            raise ModelError(400, str(error)) from error
        return codecs.encode(prediction, accept)
