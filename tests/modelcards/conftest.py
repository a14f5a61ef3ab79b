"""Model-card fixtures: a complete card's content and cards made through the workflow."""

import copy

import pytest

from endpoints.models import RegisteredModel
from modelcards import workflow
from tests.factories import EnvironmentFactory

FULL = {
    "model_overview": {
        "model_name": "Churn classifier",
        "model_description": "Predicts which **customers** may cancel next month.",
        "model_owner": "Retention team",
        "model_creator": "Data science",
        "problem_type": "Binary Classification",
        "algorithm_type": "Gradient boosting",
        "model_version": 3,
        "model_artifact": ["s3://demo/portal/churn/model.tar.gz"],
        "inference_environment": {"container_image": ["sklearn"]},
    },
    "intended_uses": {
        "purpose_of_model": "Rank customers for retention offers.",
        "intended_uses": "Weekly batch scoring by the retention team.",
        "factors_affecting_model_efficiency": "Seasonality; new products.",
        "risk_rating": "Medium",
        "explanations_for_risk_rating": "A wrong score costs an offer, not a service.",
    },
    "business_details": {
        "business_problem": "Churn costs revenue.",
        "business_stakeholders": "Retention and finance.",
        "line_of_business": "Consumer",
    },
    "training_details": {
        "objective_function": {
            "function": {"function": "Maximize", "facet": "AUC", "condition": "holdout"},
            "notes": "Chosen for ranking.",
        },
        "training_observations": "Trained on 2025 data.",
        "training_job_details": {
            "training_datasets": ["s3://demo/data/churn-2025.csv"],
            "user_provided_training_metrics": [{"name": "loss", "value": 0.21, "notes": "final"}],
            "user_provided_hyper_parameters": [{"name": "max_depth", "value": "6"}],
        },
    },
    "evaluation_details": [
        {
            "name": "Holdout 2026-Q1",
            "evaluation_observation": "Stable across regions.",
            "datasets": ["s3://demo/data/holdout.csv"],
            "metric_groups": [
                {
                    "name": "Scores",
                    "metric_data": [
                        {"name": "AUC", "type": "number", "value": 0.91},
                        {"name": "Recall", "type": "number", "value": 0.8},
                        {"name": "Calibrated", "type": "boolean", "value": True},
                        {
                            "name": "ROC",
                            "type": "linear_graph",
                            "value": [[0, 0], [0.1, 0.6], [1, 1]],
                            "x_axis_name": "False positive rate",
                            "y_axis_name": "True positive rate",
                        },
                        {
                            "name": "Confusion",
                            "type": "matrix",
                            "value": [[50, 5], [7, 38]],
                            "x_axis_name": ["stays", "leaves"],
                            "y_axis_name": ["stays", "leaves"],
                        },
                    ],
                }
            ],
        }
    ],
    "additional_information": {
        "ethical_considerations": "Checked for age bias.",
        "caveats_and_recommendations": "Do not use it to **price** contracts.",
        "custom_details": {"license": "internal"},
    },
}


@pytest.fixture
def full_content() -> dict:
    return copy.deepcopy(FULL)


@pytest.fixture
def writer(user_for):
    return user_for("engineer")


@pytest.fixture
def card(writer):
    return workflow.create_card("churn", copy.deepcopy(FULL), writer)


@pytest.fixture
def registered_model(db) -> RegisteredModel:
    return RegisteredModel.objects.create(
        environment=EnvironmentFactory(), name="churn", containers=[{"Image": "sklearn"}]
    )
