"""The demo workspace: a local environment with real, small models registered, and one click to
deploy one endpoint of each kind. Models are trained here from data scikit-learn ships, so
nothing is downloaded."""

import io
import tarfile
import textwrap

from django.db import transaction

from endpoints import deploy
from endpoints.models import Deployment, Endpoint, RegisteredModel
from environments.models import Environment

SENTIMENT = """
import json

POSITIVE = {"good", "great", "love", "excellent", "happy", "fast", "nice"}
NEGATIVE = {"bad", "awful", "hate", "slow", "broken", "sad", "poor"}

def model_fn(model_dir):
    return POSITIVE, NEGATIVE

def transform_fn(model, data, content_type, accept):
    positive, negative = model
    words = json.loads(data)["text"].lower().split()
    score = sum(w in positive for w in words) - sum(w in negative for w in words)
    label = "positive" if score > 0 else "negative" if score < 0 else "neutral"
    return json.dumps({"label": label, "score": score}), "application/json"
"""

STATISTICS = """
import json

def model_fn(model_dir):
    return None

def transform_fn(model, data, content_type, accept):
    text = json.loads(data)["text"]
    words = text.split()
    return json.dumps({"characters": len(text), "words": len(words),
                       "longest_word": max(words, key=len) if words else ""}), "application/json"
"""


def tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def joblib_archive(model: object) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return tarball({"model.joblib": buffer.getvalue()})


def iris_classifier() -> bytes:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    return joblib_archive(LogisticRegression(max_iter=500).fit(features, labels))


def diabetes_models() -> dict[str, bytes]:
    """Three regressors on scikit-learn's diabetes data: the multi-model set."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Lasso, LinearRegression, Ridge

    features, target = load_diabetes(return_X_y=True)
    return {
        f"{name}.tar.gz": joblib_archive(estimator.fit(features, target))
        for name, estimator in (
            ("linear", LinearRegression()),
            ("ridge", Ridge(alpha=0.5)),
            ("lasso", Lasso(alpha=0.1)),
        )
    }


def llm_available() -> bool:
    try:
        from runtime.images import image_class

        image_class("llm")
    except (ValueError, ImportError):
        return False
    return True


def load(environment: Environment | None = None) -> Environment:
    """Create (or keep) the local environment, its demo artifacts and registered models."""
    with transaction.atomic():
        environment, _ = Environment.objects.get_or_create(
            name="local",
            defaults={
                "kind": Environment.Kind.LOCAL,
                "description": "The local runtime on this machine: free, instant, no AWS.",
                "bucket": "portal-demo",
                "prefix": "portal/",
            },
        )
    storage = environment.backend
    root = f"{environment.storage_uri}demo"
    iris_uri = f"{root}/iris/model.tar.gz"
    if not storage.list_objects(iris_uri):
        storage.upload_object(iris_uri, iris_classifier())
        for name, archive in diabetes_models().items():
            storage.upload_object(f"{root}/diabetes/{name}", archive)
        storage.upload_object(
            f"{root}/sentiment/model.tar.gz",
            tarball({"code/inference.py": textwrap.dedent(SENTIMENT).encode()}),
        )
        storage.upload_object(
            f"{root}/statistics/model.tar.gz",
            tarball({"code/inference.py": textwrap.dedent(STATISTICS).encode()}),
        )
    models = [
        (
            "iris-classifier",
            "Predicts the iris species from 4 flower measurements (CSV).",
            RegisteredModel.Kind.SINGLE,
            [{"Image": "sklearn", "ModelDataUrl": iris_uri}],
            "",
        ),
        (
            "diabetes-regressors",
            "Three regressors of disease progression; pick one by TargetModel.",
            RegisteredModel.Kind.MULTI_MODEL,
            [{"Image": "sklearn", "ModelDataUrl": f"{root}/diabetes/", "Mode": "MultiModel"}],
            "",
        ),
        (
            "text-tools",
            "Two containers: sentiment and text statistics; pick one by hostname.",
            RegisteredModel.Kind.MULTI_CONTAINER,
            [
                {
                    "Image": "python",
                    "ModelDataUrl": f"{root}/sentiment/model.tar.gz",
                    "ContainerHostname": "sentiment",
                },
                {
                    "Image": "python",
                    "ModelDataUrl": f"{root}/statistics/model.tar.gz",
                    "ContainerHostname": "statistics",
                },
            ],
            RegisteredModel.Mode.DIRECT,
        ),
    ]
    if llm_available():
        models.append(
            (
                "smollm2-chat",
                "SmolLM2-135M-Instruct, a small chat model (GGUF).",
                RegisteredModel.Kind.SINGLE,
                [{"Image": "llm", "Environment": {"LLM_MODEL": "smollm2"}}],
                "",
            )
        )
    for name, description, kind, containers, mode in models:
        RegisteredModel.objects.get_or_create(
            environment=environment,
            name=name,
            deleted_at=None,
            defaults={
                "description": description,
                "kind": kind,
                "containers": containers,
                "inference_mode": mode,
            },
        )
    iris_card(RegisteredModel.objects.get(environment=environment, name="iris-classifier"))
    return environment


def iris_card(model: RegisteredModel) -> None:
    """A draft model card for the iris classifier, so the cards, their reader's page and its
    charts have something real to show. Its metrics are measured here, on a held-out quarter
    of the data, with the same estimator the demo serves."""
    from django.contrib.auth.models import AnonymousUser
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
    from sklearn.model_selection import train_test_split

    from modelcards.models import ModelCard
    from modelcards.workflow import create_card

    if ModelCard.objects.filter(name="iris-classifier").exists():
        return
    data = load_iris()
    train_x, test_x, train_y, test_y = train_test_split(
        data.data, data.target, test_size=0.25, random_state=0, stratify=data.target
    )
    predicted = LogisticRegression(max_iter=500).fit(train_x, train_y).predict(test_x)
    species = [str(name) for name in data.target_names]
    per_class = f1_score(test_y, predicted, average=None)
    content = {
        "model_overview": {
            "model_name": "Iris species classifier",
            "model_description": (
                "Tells the species of an iris flower (setosa, versicolor or virginica) from "
                "four measurements in centimetres: sepal length, sepal width, petal length and "
                "petal width, sent as one CSV row."
            ),
            "model_owner": "Demo team",
            "model_creator": "Endpoint Portal demo",
            "problem_type": "Multiclass classification",
            "algorithm_type": "Logistic regression (scikit-learn)",
            "model_artifact": [model.containers[0]["ModelDataUrl"]],
            "inference_environment": {"container_image": ["sklearn"]},
        },
        "intended_uses": {
            "purpose_of_model": "A small, real model for trying the portal end to end.",
            "intended_uses": (
                "Demonstrations and tests of deployment, the playground and insights.\n\n"
                "**Not for** botanical decisions: it knows three species only and was "
                "trained on 150 flowers measured in 1935."
            ),
            "risk_rating": "Low",
            "explanations_for_risk_rating": "No person is affected by its answers.",
        },
        "training_details": {
            "training_observations": (
                f"Trained on {len(train_y)} of the 150 flowers of Fisher's iris data set "
                "(shipped with scikit-learn); the other quarter is held out for evaluation."
            ),
            "objective_function": {
                "function": {"function": "Minimize", "facet": "Loss"},
                "notes": "Multinomial log loss.",
            },
        },
        "evaluation_details": [
            {
                "name": "Held-out quarter",
                "evaluation_observation": (
                    f"{len(test_y)} flowers the model never saw, stratified by species."
                ),
                "datasets": ["scikit-learn load_iris(), 25% held out (random_state=0)"],
                "metric_groups": [
                    {
                        "name": "Overall",
                        "metric_data": [
                            {
                                "name": "accuracy",
                                "type": "number",
                                "value": round(float(accuracy_score(test_y, predicted)), 4),
                            }
                        ],
                    },
                    {
                        "name": "Per species",
                        "metric_data": [
                            {
                                "name": "F1 score per species",
                                "type": "bar_chart",
                                "value": [round(float(score), 4) for score in per_class],
                                "x_axis_name": species,
                                "y_axis_name": "F1",
                            },
                            {
                                "name": "Confusion matrix",
                                "type": "matrix",
                                "value": confusion_matrix(test_y, predicted).tolist(),
                                "x_axis_name": species,
                                "y_axis_name": species,
                            },
                        ],
                    },
                ],
            }
        ],
        "additional_information": {
            "caveats_and_recommendations": (
                "Measurements outside the ranges of the training data get confident but "
                "meaningless answers."
            )
        },
    }
    create_card("iris-classifier", content, AnonymousUser(), models=[model], note="Demo card.")


DEMO_ENDPOINTS = [
    # name, model, kind, extra spec
    ("iris", "iris-classifier", Endpoint.Kind.REAL_TIME, {}),
    ("iris-serverless", "iris-classifier", Endpoint.Kind.SERVERLESS, {}),
    ("iris-async", "iris-classifier", Endpoint.Kind.ASYNC, {}),
    ("diabetes", "diabetes-regressors", Endpoint.Kind.REAL_TIME, {}),
    ("text-tools", "text-tools", Endpoint.Kind.REAL_TIME, {}),
    ("chat", "smollm2-chat", Endpoint.Kind.REAL_TIME, {}),
]


def demo_environment() -> Environment | None:
    """The local environment `load_demo` made, if it is still there."""
    return Environment.objects.filter(name="local", kind=Environment.Kind.LOCAL).first()


def _deployable(environment: Environment) -> list[tuple[str, RegisteredModel, str, dict]]:
    """The demo endpoints that one click would deploy now: each whose model is registered
    there and whose name no live endpoint holds."""
    names = {model_name for _, model_name, _, _ in DEMO_ENDPOINTS}
    models: dict[str, RegisteredModel] = {}
    for model in RegisteredModel.objects.filter(
        environment=environment, name__in=names, deleted_at__isnull=True
    ).order_by("-pk"):
        models[model.name] = model  # the oldest of a name wins, as it always did
    live = set(environment.endpoints.live().values_list("name", flat=True))
    return [
        (name, models[model_name], kind, extra)
        for name, model_name, kind, extra in DEMO_ENDPOINTS
        if model_name in models and name not in live
    ]


def undeployed(environment: Environment) -> list[str]:
    """The names of the demo endpoints that `deploy_demo` would create now."""
    return [name for name, *_ in _deployable(environment)]


def deploy_demo(environment: Environment, user: object = None) -> list[Endpoint]:
    """One endpoint of each kind from the demo models; ones that already exist are kept."""
    created = []
    for name, model, kind, extra in _deployable(environment):
        variant = {"name": "AllTraffic", "model_id": model.pk}
        spec: dict = {"variants": [variant], **extra}
        if kind == Endpoint.Kind.SERVERLESS:
            variant["serverless"] = {"memory": 2048, "max_concurrency": 5}
        else:
            variant |= {"instance_type": "ml.m5.large", "instance_count": 1, "weight": 1.0}
        if kind == Endpoint.Kind.ASYNC:
            spec["async"] = {
                "output_path": f"{environment.storage_uri}async/{name}/output",
                "failure_path": f"{environment.storage_uri}async/{name}/failures",
                "max_concurrent": 2,
            }
        if name == "iris":
            spec["capture"] = {
                "enabled": True,
                "sampling": 100,
                "input": True,
                "output": True,
                "destination": f"{environment.storage_uri}capture",
                "csv_types": ["text/csv"],
                "json_types": ["application/json"],
            }
        with transaction.atomic():
            endpoint = Endpoint.objects.create(
                environment=environment, name=name, kind=kind, spec=spec, created_by=user
            )
            deploy.start(endpoint, Deployment.Action.CREATE, user)
        created.append(endpoint)
    return created
